// Package policy is the API cell's authorization engine for its
// OpenStack-style APIs (Compute, Image, Networking). It reads the rule
// language of oslo.policy, so an operator's policy.yaml works unchanged, and
// it ships Nova's "new defaults" (secure RBAC) as data in [Base].
//
// # Rules
//
// An [Enforcer] holds named rules. An action such as
// "os_compute_api:servers:create" is checked by evaluating the rule of the
// same name against the caller's [Credentials] and the [Target] it acts on.
// An action with no rule falls back to the rule named "default" when one is
// defined, and is denied otherwise. Defaults come from a []Rule; a policy
// file, or a map given to [NewFromRules], overrides them rule by rule, and may
// add rules of its own.
//
// # Language
//
// A check string is one of:
//
//	""                   always allow (an empty rule)
//	@                    always allow
//	!                    always deny
//	role:NAME            NAME is one of the caller's roles (case-insensitive)
//	rule:NAME            the rule NAME allows
//	KEY:%(attr)s         the caller's KEY equals the target's attr
//	KEY:literal          the caller's KEY equals literal ('quoted' or bare)
//	is_admin:True        the caller is an admin (also is_admin:False)
//	'literal':%(attr)s   literal equals the target's attr
//
// KEY is one of project_id, user_id, domain_id or is_admin. A match may mix
// text and %(attr)s references, as in Python's % formatting ("%%" is a
// percent sign); a reference to an attribute the target lacks is false.
// Checks combine with "not", "and", "or" and parentheses; not binds tighter
// than and, which binds tighter than or, and the keywords are
// case-insensitive. A policy file may also give a rule in oslo.policy's legacy
// list form, [["role:admin"], ["project_id:%(project_id)s"]]: the outer list
// is or, each inner list is and, and an empty list allows.
//
// is_admin:True holds when Credentials.IsAdmin is set or when the caller
// passes the rule "context_is_admin", evaluated as Nova does with the
// caller's own attributes as its target. That is how Nova's legacy
// "admin_api" (is_admin:True) still means "has the admin role".
//
// # Where this is stricter than oslo.policy
//
// oslo.policy logs a rule it cannot understand and treats it as "deny"; here
// it is a load-time error naming the rule, and so are a reference to an
// undefined rule, a cycle of rule references, a credential KEY this package
// does not know (such as system_scope) and the http: check, which is not
// supported. An empty credential attribute never matches, so a caller with
// no project never passes project_id:%(project_id)s, even against a target
// whose project_id is empty.
//
// Rules are parsed once, when the Enforcer is built; evaluation does not
// allocate.
package policy
