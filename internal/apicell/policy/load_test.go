package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name      string
		defaults  []policy.Rule
		overrides map[string]string
		is        error
		rule      string   // the rule the first error names
		text      []string // what the message must say
	}{
		{"dangling and", nil, map[string]string{"r": "role:admin and"}, policy.ErrSyntax, "r", []string{"ends"}},
		{"dangling or", nil, map[string]string{"r": "or role:admin"}, policy.ErrSyntax, "r", []string{`"or"`}},
		{"unclosed paren", nil, map[string]string{"r": "(role:admin"}, policy.ErrSyntax, "r", []string{`")"`}},
		{"extra paren", nil, map[string]string{"r": "role:admin)"}, policy.ErrSyntax, "r", []string{`")"`}},
		{"no kind", nil, map[string]string{"r": "admin"}, policy.ErrSyntax, "r", []string{`"admin"`}},
		{"no space before paren", nil, map[string]string{"r": "@ or(role:x)"}, policy.ErrSyntax, "r", []string{`"or(role"`}},
		{"two checks", nil, map[string]string{"r": "role:a role:b"}, policy.ErrSyntax, "r", []string{`"role:b"`}},
		{"quoted string", nil, map[string]string{"r": "'role:admin'"}, policy.ErrSyntax, "r", []string{"quoted"}},
		{"white space only", nil, map[string]string{"r": "  "}, policy.ErrSyntax, "r", nil},
		{"empty role", nil, map[string]string{"r": "role:"}, policy.ErrSyntax, "r", nil},
		{"empty rule name", nil, map[string]string{"r": "rule:"}, policy.ErrSyntax, "r", nil},
		{"unknown attribute", nil, map[string]string{"r": "system_scope:all"}, policy.ErrSyntax, "r", []string{"system_scope"}},
		{"http check", nil, map[string]string{"r": "http://example.com/check"}, policy.ErrSyntax, "r", []string{"http"}},
		{"bad is_admin", nil, map[string]string{"r": "is_admin:yes"}, policy.ErrSyntax, "r", []string{"is_admin"}},
		{"bad format", nil, map[string]string{"r": "project_id:%(project_id)d"}, policy.ErrSyntax, "r", []string{"%(attr)s"}},
		{"lone percent", nil, map[string]string{"r": "project_id:50%"}, policy.ErrSyntax, "r", []string{"%%"}},
		{"too deep", nil, map[string]string{"r": strings.Repeat("not ", 200) + "@"}, policy.ErrSyntax, "r", []string{"deep"}},
		{"bad default", []policy.Rule{{Name: "d", Check: "role:admin or or"}}, nil, policy.ErrSyntax, "d", nil},
		{"duplicate default", []policy.Rule{{Name: "d", Check: "@"}, {Name: "d", Check: "!"}}, nil, policy.ErrDuplicate, "d", nil},

		{"undefined", nil, map[string]string{"r": "role:admin or rule:missing"}, policy.ErrUndefinedRule, "r", []string{`"missing"`}},
		{"undefined in default", []policy.Rule{{Name: "d", Check: "rule:missing"}}, nil, policy.ErrUndefinedRule, "d", []string{`"missing"`}},
		{"self cycle", nil, map[string]string{"a": "rule:a"}, policy.ErrCycle, "a", []string{"a -> a"}},
		{"cycle", []policy.Rule{{Name: "a", Check: "rule:b"}, {Name: "b", Check: "@"}},
			map[string]string{"b": "role:x or rule:c", "c": "not rule:a"}, policy.ErrCycle, "a", []string{"a -> b -> c -> a"}},
		{"override makes a default cycle", policy.Base, map[string]string{"context_is_admin": "rule:project_member_or_admin"},
			policy.ErrCycle, "context_is_admin", []string{"context_is_admin -> project_member_or_admin -> context_is_admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := policy.NewFromRules(tt.defaults, tt.overrides)
			if !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want %v", err, tt.is)
			}
			if e != nil {
				t.Error("an Enforcer with an error")
			}
			var le *policy.LoadError
			if !errors.As(err, &le) || le.Rule != tt.rule {
				t.Errorf("error %v does not name rule %q", err, tt.rule)
			}
			for _, s := range append(tt.text, `rule "`+tt.rule+`"`) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not say %s", err, s)
				}
			}
		})
	}
}

// TestLoadReportsEveryProblem: an operator sees all bad rules at once.
func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := policy.NewFromRules(nil, map[string]string{"a": "and", "b": "or", "c": "@"})
	for _, s := range []string{`rule "a"`, `rule "b"`} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not say %s", err, s)
		}
	}
}

func TestOverrideKeepsDescription(t *testing.T) {
	e, err := policy.NewFromRules(policy.Base, map[string]string{"context_is_admin": "role:cloud_admin"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range e.Rules() {
		if r.Name == "context_is_admin" && (r.Check != "role:cloud_admin" || r.Description == "") {
			t.Errorf("override listed as %+v", r)
		}
	}
	if e.Allowed("project_member_or_admin", admin, projB) {
		t.Error("the admin role still passes an overridden context_is_admin")
	}
	cloudAdmin := policy.Credentials{Roles: []string{"cloud_admin"}}
	if !e.Allowed("admin_api", cloudAdmin, projB) {
		t.Error("is_admin:True does not follow an overridden context_is_admin")
	}
}
