package identity

import "github.com/cellcloud/cellcloud/internal/apicell/policy"

// Rules are the Identity API's policy defaults: administrators manage
// projects, users, roles and assignments; a user may look at their own
// user, their projects and their own tokens.
var Rules = []policy.Rule{
	{Name: "identity:admin_required", Check: "role:admin"},
	{Name: "identity:owner_or_admin", Check: "rule:identity:admin_required or user_id:%(user_id)s"},
	{Name: "identity:validate_token", Check: "rule:identity:owner_or_admin"},
	{Name: "identity:check_token", Check: "rule:identity:owner_or_admin"},
	{Name: "identity:revoke_token", Check: "rule:identity:owner_or_admin"},
	{Name: "identity:list_domains", Check: "rule:identity:admin_required"},
	{Name: "identity:get_domain", Check: "rule:identity:admin_required or role:reader"},
	{Name: "identity:list_projects", Check: "rule:identity:admin_required"},
	{Name: "identity:get_project", Check: "rule:identity:admin_required or project_id:%(project_id)s"},
	{Name: "identity:create_project", Check: "rule:identity:admin_required"},
	{Name: "identity:update_project", Check: "rule:identity:admin_required"},
	{Name: "identity:delete_project", Check: "rule:identity:admin_required"},
	{Name: "identity:list_users", Check: "rule:identity:admin_required"},
	{Name: "identity:get_user", Check: "rule:identity:owner_or_admin"},
	{Name: "identity:create_user", Check: "rule:identity:admin_required"},
	{Name: "identity:update_user", Check: "rule:identity:admin_required"},
	{Name: "identity:delete_user", Check: "rule:identity:admin_required"},
	{Name: "identity:list_user_projects", Check: "rule:identity:owner_or_admin"},
	{Name: "identity:list_roles", Check: "rule:identity:admin_required"},
	{Name: "identity:get_role", Check: "rule:identity:admin_required"},
	{Name: "identity:create_role", Check: "rule:identity:admin_required"},
	{Name: "identity:delete_role", Check: "rule:identity:admin_required"},
	{Name: "identity:list_grants", Check: "rule:identity:admin_required"},
	{Name: "identity:check_grant", Check: "rule:identity:admin_required"},
	{Name: "identity:create_grant", Check: "rule:identity:admin_required"},
	{Name: "identity:revoke_grant", Check: "rule:identity:admin_required"},
	{Name: "identity:list_role_assignments", Check: "rule:identity:admin_required"},
	{Name: "identity:list_services", Check: "rule:identity:admin_required"},
	{Name: "identity:list_endpoints", Check: "rule:identity:admin_required"},
	{Name: "identity:list_regions", Check: "rule:identity:admin_required or role:reader"},
}
