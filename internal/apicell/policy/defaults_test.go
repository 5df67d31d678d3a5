package policy_test

import (
	"slices"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

func TestBase(t *testing.T) {
	e, err := policy.New(policy.Base, "")
	if err != nil {
		t.Fatal(err)
	}
	manager := policy.Credentials{UserID: "m", ProjectID: "A", Roles: []string{"manager", "member", "reader"}}
	service := policy.Credentials{UserID: "nova", ProjectID: "service", Roles: []string{"service"}}
	tests := []struct {
		rule   string
		creds  policy.Credentials
		target policy.Target
		want   bool
	}{
		{"context_is_admin", admin, projA, true},
		{"context_is_admin", member, projA, false},
		{"admin_api", admin, projA, true},
		{"admin_api", member, projA, false},
		{"admin_or_owner", admin, projB, true},
		{"admin_or_owner", member, projA, true},
		{"admin_or_owner", reader, projA, true},
		{"admin_or_owner", member, projB, false},

		{"project_member_or_admin", admin, projA, true},
		{"project_member_or_admin", admin, projB, true},
		{"project_member_or_admin", member, projA, true},
		{"project_member_or_admin", member, projB, false},
		{"project_member_or_admin", reader, projA, false},
		{"project_member_api", admin, projB, false},
		{"project_member_api", member, projA, true},

		{"project_reader_or_admin", admin, projB, true},
		{"project_reader_or_admin", member, projA, true},
		{"project_reader_or_admin", member, projB, false},
		{"project_reader_or_admin", reader, projA, true},
		{"project_reader_or_admin", reader, projB, false},
		{"project_reader_api", reader, projA, true},

		{"project_manager_or_admin", manager, projA, true},
		{"project_manager_or_admin", manager, projB, false},
		{"project_manager_or_admin", member, projA, false},
		{"project_manager_or_admin", admin, projB, true},

		{"service_or_admin", service, projA, true},
		{"service_or_admin", admin, projA, true},
		{"service_or_admin", member, projA, false},

		{"no_such_action", admin, projA, false},
	}
	for _, tt := range tests {
		if got := e.Allowed(tt.rule, tt.creds, tt.target); got != tt.want {
			t.Errorf("%s for %s on project %s: got %v, want %v", tt.rule, tt.creds.UserID, tt.target["project_id"], got, tt.want)
		}
	}
}

func TestBaseMatchesNova(t *testing.T) {
	// nova/policies/base.py, 2026.1.
	nova := map[string]string{
		"context_is_admin":         "role:admin",
		"admin_or_owner":           "is_admin:True or project_id:%(project_id)s",
		"admin_api":                "is_admin:True",
		"project_manager_api":      "role:manager and project_id:%(project_id)s",
		"project_member_api":       "role:member and project_id:%(project_id)s",
		"project_reader_api":       "role:reader and project_id:%(project_id)s",
		"service_api":              "role:service",
		"project_manager_or_admin": "rule:project_manager_api or rule:context_is_admin",
		"project_member_or_admin":  "rule:project_member_api or rule:context_is_admin",
		"project_reader_or_admin":  "rule:project_reader_api or rule:context_is_admin",
		"service_or_admin":         "rule:service_api or rule:context_is_admin",
	}
	e, err := policy.New(policy.Base, "")
	if err != nil {
		t.Fatal(err)
	}
	got := e.Rules()
	if !slices.IsSortedFunc(got, func(a, b policy.Rule) int { return compare(a.Name, b.Name) }) {
		t.Errorf("Rules not sorted: %v", got)
	}
	if len(got) != len(nova) {
		t.Errorf("%d rules, want %d", len(got), len(nova))
	}
	for _, r := range got {
		if nova[r.Name] != r.Check {
			t.Errorf("%s = %q, Nova has %q", r.Name, r.Check, nova[r.Name])
		}
		if r.Description == "" {
			t.Errorf("%s has no description", r.Name)
		}
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
