package policy_test

import (
	"errors"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

var (
	projA  = policy.Target{"project_id": "A", "user_id": "u1"}
	projB  = policy.Target{"project_id": "B", "user_id": "u2"}
	admin  = policy.Credentials{UserID: "root", ProjectID: "X", Roles: []string{"admin", "member", "reader"}}
	member = policy.Credentials{UserID: "u1", ProjectID: "A", DomainID: "D", Roles: []string{"member", "reader"}}
	reader = policy.Credentials{UserID: "u3", ProjectID: "A", Roles: []string{"reader"}}
	nobody = policy.Credentials{}
)

// check evaluates one check string, as rule "r", with a few helper rules.
func check(t *testing.T, s string, creds policy.Credentials, target policy.Target) bool {
	t.Helper()
	e, err := policy.NewFromRules([]policy.Rule{
		{Name: "yes", Check: "@"},
		{Name: "no", Check: "!"},
		{Name: "is_member", Check: "role:member"},
		{Name: "r", Check: s},
	}, nil)
	if err != nil {
		t.Fatalf("NewFromRules(%q): %v", s, err)
	}
	return e.Allowed("r", creds, target)
}

func TestLanguage(t *testing.T) {
	tests := []struct {
		name   string
		check  string
		creds  policy.Credentials
		target policy.Target
		want   bool
	}{
		{"always", "@", nobody, nil, true},
		{"never", "!", admin, projA, false},
		{"empty allows", "", nobody, nil, true},

		{"role held", "role:member", member, nil, true},
		{"role not held", "role:admin", member, nil, false},
		{"role case-insensitive", "role:MEMBER", member, nil, true},
		{"role case-insensitive creds", "role:member", policy.Credentials{Roles: []string{"Member"}}, nil, true},
		{"role no roles", "role:reader", nobody, nil, false},
		{"role from target", "role:%(role)s", member, policy.Target{"role": "member"}, true},
		{"role from missing target attr", "role:%(role)s", member, nil, false},

		{"rule allows", "rule:yes", nobody, nil, true},
		{"rule denies", "rule:no", admin, nil, false},
		{"rule chain", "rule:is_member", member, nil, true},
		{"rule chain denies", "rule:is_member", reader, nil, false},

		{"project matches target", "project_id:%(project_id)s", member, projA, true},
		{"project differs", "project_id:%(project_id)s", member, projB, false},
		{"target attr missing", "project_id:%(project_id)s", member, policy.Target{}, false},
		{"nil target", "project_id:%(project_id)s", member, nil, false},
		{"user matches target", "user_id:%(user_id)s", member, projA, true},
		{"user differs", "user_id:%(user_id)s", member, projB, false},
		{"domain matches target", "domain_id:%(domain_id)s", member, policy.Target{"domain_id": "D"}, true},
		{"empty creds never match", "project_id:%(project_id)s", nobody, policy.Target{"project_id": ""}, false},
		{"other target attribute", "project_id:%(owner)s", member, policy.Target{"owner": "A"}, true},
		{"mixed template", "project_id:p-%(n)s", policy.Credentials{ProjectID: "p-7"}, policy.Target{"n": "7"}, true},
		{"mixed template differs", "project_id:p-%(n)s", policy.Credentials{ProjectID: "p-8"}, policy.Target{"n": "7"}, false},
		{"percent escape", "project_id:50%%", policy.Credentials{ProjectID: "50%"}, nil, true},

		{"literal bare", "project_id:A", member, nil, true},
		{"literal bare differs", "project_id:B", member, nil, false},
		{"literal quoted", "project_id:'A'", member, nil, true},
		{"literal double quoted", `user_id:"u1"`, member, nil, true},
		{"literal quoted is not a template", "project_id:'%(x)s'", policy.Credentials{ProjectID: "%(x)s"}, nil, true},
		{"literal on the left", "'A':%(project_id)s", nobody, projA, true},
		{"literal on the left differs", "'A':%(project_id)s", nobody, projB, false},
		{"True on the left", "True:%(enabled)s", nobody, policy.Target{"enabled": "True"}, true},

		{"is_admin flag", "is_admin:True", policy.Credentials{IsAdmin: true}, nil, true},
		{"is_admin flag unset", "is_admin:True", member, nil, false},
		{"is_admin false", "is_admin:False", member, nil, true},
		{"is_admin false for admin", "is_admin:False", policy.Credentials{IsAdmin: true}, nil, false},
		{"is_admin any case", "is_admin:true", policy.Credentials{IsAdmin: true}, nil, true},
		{"is_admin quoted", "is_admin:'True'", policy.Credentials{IsAdmin: true}, nil, true},
		{"is_admin from target", "is_admin:%(a)s", policy.Credentials{IsAdmin: true}, policy.Target{"a": "True"}, true},

		{"and both", "role:member and project_id:%(project_id)s", member, projA, true},
		{"and one", "role:member and project_id:%(project_id)s", member, projB, false},
		{"or one", "role:admin or project_id:%(project_id)s", member, projA, true},
		{"or none", "role:admin or project_id:%(project_id)s", member, projB, false},
		{"not", "not role:admin", member, nil, true},
		{"not not", "not not role:admin", member, nil, false},
		{"and binds tighter than or", "@ or ! and !", nobody, nil, true},
		{"and binds tighter than or, left", "! and ! or @", nobody, nil, true},
		{"parens override", "(@ or !) and !", nobody, nil, false},
		{"not binds tighter than and", "not ! and !", nobody, nil, false},
		{"not binds tighter than or", "not @ or @", nobody, nil, true},
		{"not of parens", "not (@ and !)", nobody, nil, true},
		{"nested parens", "((role:member)) and ((project_id:%(project_id)s))", member, projA, true},
		{"parens without spaces", "(role:admin or (role:member))", member, nil, true},
		{"long or", "! or ! or ! or @", nobody, nil, true},
		{"long and", "@ and @ and @ and !", nobody, nil, false},
		{"keywords any case", "role:admin OR NOT role:reader Or role:member AND @", member, nil, true},
		{"keywords any case deny", "role:admin Or Not role:member", member, nil, false},
		{"extra white space", "  role:member \t and\n@  ", member, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := check(t, tt.check, tt.creds, tt.target); got != tt.want {
				t.Errorf("%q: got %v, want %v", tt.check, got, tt.want)
			}
		})
	}
}

// TestIsAdminFromContextIsAdmin: is_admin:True holds for whoever passes
// context_is_admin, as in Nova, and that rule sees the caller as target.
func TestIsAdminFromContextIsAdmin(t *testing.T) {
	tests := []struct {
		name     string
		ctxAdmin string
		creds    policy.Credentials
		want     bool
	}{
		{"admin role", "role:admin", admin, true},
		{"member", "role:admin", member, false},
		{"flag alone", "role:admin", policy.Credentials{IsAdmin: true}, true},
		{"self-referring rule does not loop", "is_admin:True", member, false},
		{"caller as target", "project_id:%(project_id)s and user_id:root", admin, true},
		{"caller as target, other user", "project_id:%(project_id)s and user_id:root", member, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := policy.NewFromRules([]policy.Rule{
				{Name: "context_is_admin", Check: tt.ctxAdmin},
				{Name: "a", Check: "is_admin:True"},
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Allowed("a", tt.creds, projB); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDefaultRule(t *testing.T) {
	tests := []struct {
		name  string
		rules []policy.Rule
		want  bool
	}{
		{"no default denies", []policy.Rule{{Name: "x", Check: "@"}}, false},
		{"default allows", []policy.Rule{{Name: "default", Check: "@"}}, true},
		{"default denies", []policy.Rule{{Name: "default", Check: "role:admin"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := policy.NewFromRules(tt.rules, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Allowed("unknown:action", member, projA); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckError(t *testing.T) {
	e, err := policy.NewFromRules([]policy.Rule{{Name: "os_compute_api:servers:create", Check: "role:member"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Check("os_compute_api:servers:create", member, projA); err != nil {
		t.Errorf("member: %v", err)
	}
	err = e.Check("os_compute_api:servers:create", reader, projA)
	if err == nil {
		t.Fatal("reader allowed")
	}
	const want = "Policy doesn't allow os_compute_api:servers:create to be performed."
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	var pe *policy.Error
	if !errors.As(err, &pe) || pe.Action != "os_compute_api:servers:create" {
		t.Errorf("error %#v is not a *policy.Error for the action", err)
	}
	var nilEnforcer *policy.Enforcer
	if nilEnforcer.Allowed("x", admin, nil) {
		t.Error("a nil Enforcer allowed")
	}
}

func TestAllowedDoesNotAllocate(t *testing.T) {
	e, err := policy.New(policy.Base, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"project_member_or_admin", "admin_or_owner", "admin_api"} {
		for _, c := range []policy.Credentials{admin, member, reader} {
			if n := testing.AllocsPerRun(100, func() { e.Allowed(action, c, projA) }); n != 0 {
				t.Errorf("Allowed(%s) allocates %v times", action, n)
			}
		}
	}
}

func BenchmarkAllowed(b *testing.B) {
	e, err := policy.New(policy.Base, "")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		creds policy.Credentials
	}{{"member", member}, {"admin", admin}, {"reader-denied", reader}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.Allowed("project_member_or_admin", bc.creds, projA)
			}
		})
	}
}
