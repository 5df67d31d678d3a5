package policy_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var computeDefaults = append([]policy.Rule{
	{Name: "os_compute_api:servers:create", Check: policy.ProjectMemberOrAdmin},
	{Name: "os_compute_api:servers:show", Check: policy.ProjectReaderOrAdmin},
}, policy.Base...)

func TestFileOverrides(t *testing.T) {
	tests := []struct {
		name, file, content string
	}{
		{"yaml", "policy.yaml", `
# Only admins create servers; readers may also show other projects'.
"os_compute_api:servers:create": "rule:admin_api"
"os_compute_api:servers:show": "role:reader"
"my_extra_rule": "@"
`},
		{"json", "policy.json", `{
  "os_compute_api:servers:create": "rule:admin_api",
  "os_compute_api:servers:show": "role:reader",
  "my_extra_rule": "@"
}`},
		{"json list form", "policy.json", `{
  "os_compute_api:servers:create": [["is_admin:True"]],
  "os_compute_api:servers:show": [["role:reader"]],
  "my_extra_rule": []
}`},
		{"yaml list form", "policy.yaml", `
os_compute_api:servers:create:
  - [is_admin:True]
os_compute_api:servers:show: [role:reader]
my_extra_rule: []
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := policy.New(computeDefaults, writeFile(t, tt.file, tt.content))
			if err != nil {
				t.Fatal(err)
			}
			checks := []struct {
				action string
				creds  policy.Credentials
				target policy.Target
				want   bool
			}{
				{"os_compute_api:servers:create", member, projA, false},
				{"os_compute_api:servers:create", admin, projA, true},
				{"os_compute_api:servers:show", reader, projB, true},
				{"os_compute_api:servers:show", nobody, projA, false},
				{"my_extra_rule", nobody, nil, true},
				{"project_member_or_admin", member, projA, true},
			}
			for _, c := range checks {
				if got := e.Allowed(c.action, c.creds, c.target); got != c.want {
					t.Errorf("%s for %s: got %v, want %v", c.action, c.creds.UserID, got, c.want)
				}
			}
			rules := map[string]policy.Rule{}
			for _, r := range e.Rules() {
				rules[r.Name] = r
			}
			if r := rules["my_extra_rule"]; r.Check != "" && r.Check != "@" {
				t.Errorf("my_extra_rule listed as %q", r.Check)
			}
			if r := rules["os_compute_api:servers:show"]; r.Check != "role:reader" {
				t.Errorf("override listed as %q", r.Check)
			}
		})
	}
}

func TestListForm(t *testing.T) {
	path := writeFile(t, "policy.json", `{
  "either": [["role:admin"], ["role:member", "project_id:%(project_id)s"]],
  "bare strings": ["role:admin", "role:reader"],
  "only empty": [[]]
}`)
	e, err := policy.New(nil, path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rule   string
		creds  policy.Credentials
		target policy.Target
		want   bool
	}{
		{"either", admin, projB, true},
		{"either", member, projA, true},
		{"either", member, projB, false},
		{"bare strings", reader, nil, true},
		{"bare strings", nobody, nil, false},
		{"only empty", admin, nil, false},
	}
	for _, tt := range tests {
		if got := e.Allowed(tt.rule, tt.creds, tt.target); got != tt.want {
			t.Errorf("%s for %s: got %v, want %v", tt.rule, tt.creds.UserID, got, tt.want)
		}
	}
	want := map[string]string{
		"either":       "role:admin or (role:member and project_id:%(project_id)s)",
		"bare strings": "role:admin or role:reader",
		"only empty":   "!",
	}
	for _, r := range e.Rules() {
		if r.Check != want[r.Name] {
			t.Errorf("%s listed as %q, want %q", r.Name, r.Check, want[r.Name])
		}
	}
}

func TestEmptyFile(t *testing.T) {
	for _, content := range []string{"", "# nothing\n", "{}", "null\n"} {
		if _, err := policy.New(policy.Base, writeFile(t, "policy.yaml", content)); err != nil {
			t.Errorf("%q: %v", content, err)
		}
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		is      error
		rule    string // the rule the error names, if any
		text    string // more the message must say
	}{
		{"a list", "- role:admin\n", policy.ErrFileFormat, "", "top level is a list"},
		{"a string", "role:admin\n", policy.ErrFileFormat, "", "top level is a string"},
		{"not yaml", "{\"a\": \n", policy.ErrFileFormat, "", ""},
		{"map value", "a: {b: c}\n", policy.ErrFileFormat, "a", "map"},
		{"number value", "a: 3\n", policy.ErrFileFormat, "a", "number"},
		{"null value", "a:\n", policy.ErrFileFormat, "a", "null"},
		{"boolean value", "a: true\n", policy.ErrFileFormat, "a", "boolean"},
		{"list of maps", "a: [{b: c}]\n", policy.ErrFileFormat, "a", "map"},
		{"list of lists of numbers", "a: [[1]]\n", policy.ErrFileFormat, "a", "number"},
		{"number key", "1: role:admin\n", policy.ErrFileFormat, "", "line 1"},
		{"duplicate", "a: '@'\na: '!'\n", policy.ErrDuplicate, "a", "line 2"},
		{"unparseable", "a: 'role:admin and'\n", policy.ErrSyntax, "a", ""},
		{"unparseable list item", "a: [[role]]\n", policy.ErrSyntax, "a", ""},
		{"undefined", "a: 'rule:nope'\n", policy.ErrUndefinedRule, "a", "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "policy.yaml", tt.content)
			_, err := policy.New(policy.Base, path)
			if !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want %v", err, tt.is)
			}
			var le *policy.LoadError
			if !errors.As(err, &le) || le.File != path || le.Rule != tt.rule {
				t.Errorf("error %#v does not name file %s and rule %q", err, path, tt.rule)
			}
			for _, s := range []string{path, tt.rule, tt.text} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := policy.New(policy.Base, path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("error %v, want one naming %s that is fs.ErrNotExist", err, path)
	}
}
