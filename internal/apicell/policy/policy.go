package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Credentials describe the caller (from a validated token).
type Credentials struct {
	UserID, ProjectID, DomainID string
	// Roles are the caller's role names, already including implied roles
	// (admin => member => reader), lower-case.
	Roles []string
	// IsAdmin is an optional legacy flag: when set, is_admin:True holds
	// whatever the caller's roles.
	IsAdmin bool
}

// Target is the object acted on: keys like "project_id", "user_id".
type Target map[string]string

// Rule is one named rule: a default, or one of Enforcer.Rules.
type Rule struct {
	Name, Check, Description string
}

// Error is the error of a denied action.
type Error struct {
	Action string
}

// Error returns Nova's PolicyNotAuthorized text.
func (e *Error) Error() string {
	return fmt.Sprintf("Policy doesn't allow %s to be performed.", e.Action)
}

// The problems New and NewFromRules report, each inside a *LoadError.
var (
	ErrSyntax        = errors.New("syntax error")
	ErrUndefinedRule = errors.New("reference to undefined rule")
	ErrCycle         = errors.New("rule reference cycle")
	ErrDuplicate     = errors.New("rule defined twice")
	ErrFileFormat    = errors.New("not a map of rule name to rule")
)

// LoadError is a problem with a rule or a policy file.
type LoadError struct {
	File string // the policy file, or "" for defaults and NewFromRules' overrides
	Rule string // the rule, or "" for a problem with the whole file
	Err  error
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString("policy: ")
	if e.File != "" {
		fmt.Fprintf(&b, "file %q: ", e.File)
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *LoadError) Unwrap() error { return e.Err }

// Enforcer holds parsed rules. It is safe for concurrent use.
type Enforcer struct {
	rules    map[string]*rule
	fallback *node // the "default" rule, or nil
	ctxAdmin *node // the "context_is_admin" rule, or nil
}

// rule is one effective rule.
type rule struct {
	Rule
	root *node
	refs []string // names of the rules it refers to
}

// source is an override: a check string or the legacy list form.
type source struct {
	text   string
	list   [][]string
	isList bool
}

// New builds an enforcer from defaults, then overrides them from the policy
// file at path ("" means none), YAML or JSON.
func New(defaults []Rule, path string) (*Enforcer, error) {
	var overrides map[string]source
	if path != "" {
		var err error
		if overrides, err = readFile(path); err != nil {
			return nil, err
		}
	}
	return build(defaults, overrides, path)
}

// NewFromRules builds an enforcer from defaults, then overrides (rule name
// to check string).
func NewFromRules(defaults []Rule, overrides map[string]string) (*Enforcer, error) {
	srcs := make(map[string]source, len(overrides))
	for name, check := range overrides {
		srcs[name] = source{text: check}
	}
	return build(defaults, srcs, "")
}

// build parses defaults and overrides, links rule references and rejects
// undefined references and cycles. It reports every problem it finds.
func build(defaults []Rule, overrides map[string]source, file string) (*Enforcer, error) {
	e := &Enforcer{rules: make(map[string]*rule, len(defaults)+len(overrides))}
	var errs []error
	for _, d := range defaults {
		if d.Name == "" {
			errs = append(errs, &LoadError{Err: fmt.Errorf("%w: a default rule has no name", ErrSyntax)})
			continue
		}
		if _, dup := e.rules[d.Name]; dup {
			errs = append(errs, &LoadError{Rule: d.Name, Err: fmt.Errorf("%w in the defaults", ErrDuplicate)})
			continue
		}
		root, refs, err := parseText(d.Check)
		if err != nil {
			errs = append(errs, &LoadError{Rule: d.Name, Err: err})
			continue
		}
		e.rules[d.Name] = &rule{Rule: d, root: root, refs: refs}
	}
	for _, name := range sortedKeys(overrides) {
		src := overrides[name]
		var (
			root  *node
			refs  []string
			err   error
			check = src.text
		)
		if src.isList {
			root, refs, err = parseList(src.list)
			check = listText(src.list)
		} else {
			root, refs, err = parseText(src.text)
		}
		if name == "" {
			err = fmt.Errorf("%w: a rule has no name", ErrSyntax)
		}
		if err != nil {
			errs = append(errs, &LoadError{File: file, Rule: name, Err: err})
			continue
		}
		r := &rule{Rule: Rule{Name: name, Check: check}, root: root, refs: refs}
		if d, ok := e.rules[name]; ok {
			r.Description = d.Description
		}
		e.rules[name] = r
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	names := sortedKeys(e.rules)
	for _, name := range names {
		r := e.rules[name]
		for _, ref := range r.refs {
			if _, ok := e.rules[ref]; !ok {
				errs = append(errs, &LoadError{File: fileOf(name, overrides, file), Rule: name,
					Err: fmt.Errorf("%w %q", ErrUndefinedRule, ref)})
			}
		}
		link(r.root, e.rules)
	}
	errs = append(errs, e.cycles(names, overrides, file)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if r, ok := e.rules["default"]; ok {
		e.fallback = r.root
	}
	if r, ok := e.rules["context_is_admin"]; ok {
		e.ctxAdmin = r.root
	}
	return e, nil
}

// fileOf is the file a rule came from, for errors.
func fileOf(name string, overrides map[string]source, file string) string {
	if _, ok := overrides[name]; ok {
		return file
	}
	return ""
}

// link points each rule reference under n at the root of its rule.
func link(n *node, rules map[string]*rule) {
	switch n.op {
	case opRule:
		if r, ok := rules[n.name]; ok {
			n.ref = r.root
		}
	case opAnd, opOr, opNot:
		for _, k := range n.kids {
			link(k, rules)
		}
	}
}

// cycles reports each cycle of rule references once.
func (e *Enforcer) cycles(names []string, overrides map[string]source, file string) []error {
	const (
		unseen = iota
		onPath
		done
	)
	state := make(map[string]int, len(e.rules))
	var (
		path []string
		errs []error
	)
	var visit func(name string)
	visit = func(name string) {
		state[name] = onPath
		path = append(path, name)
		for _, ref := range e.rules[name].refs {
			if _, ok := e.rules[ref]; !ok {
				continue
			}
			switch state[ref] {
			case onPath:
				i := slices.Index(path, ref)
				cycle := strings.Join(append(slices.Clone(path[i:]), ref), " -> ")
				errs = append(errs, &LoadError{File: fileOf(ref, overrides, file), Rule: ref,
					Err: fmt.Errorf("%w: %s", ErrCycle, cycle)})
			case unseen:
				visit(ref)
			}
		}
		path = path[:len(path)-1]
		state[name] = done
	}
	for _, name := range names {
		if state[name] == unseen {
			visit(name)
		}
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Allowed reports whether creds may do the named action on target. An
// action with no rule falls back to the "default" rule if there is one, and
// is denied otherwise.
func (e *Enforcer) Allowed(action string, creds Credentials, target Target) bool {
	if e == nil {
		return false
	}
	root := e.fallback
	if r, ok := e.rules[action]; ok {
		root = r.root
	}
	if root == nil {
		return false
	}
	s := evalState{ctxAdmin: e.ctxAdmin, creds: &creds, target: target}
	return s.eval(root)
}

// Check returns nil if creds may do the named action on target, and an
// *Error if not.
func (e *Enforcer) Check(action string, creds Credentials, target Target) error {
	if e.Allowed(action, creds, target) {
		return nil
	}
	return &Error{Action: action}
}

// Rules lists the effective rules, sorted by name.
func (e *Enforcer) Rules() []Rule {
	out := make([]Rule, 0, len(e.rules))
	for _, name := range sortedKeys(e.rules) {
		out = append(out, e.rules[name].Rule)
	}
	return out
}
