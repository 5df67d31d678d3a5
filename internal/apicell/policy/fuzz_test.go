package policy_test

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

// FuzzParse: no check string makes parsing, or evaluating what parsed,
// panic or loop.
func FuzzParse(f *testing.F) {
	for _, r := range policy.Base {
		f.Add(r.Check)
	}
	for _, s := range []string{
		"", "@", "!", "not (@ and !) or role:x", "((role:a) or (role:b))", "'A':%(project_id)s",
		"project_id:p-%(n)s%%", "is_admin:false", "rule:r", "rule:default", ")(", "%(", "role:%(x",
		"not not not", "(((", "and or not", "True:%(x)s", `"a":"b"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		defaults := append([]policy.Rule{{Name: "default", Check: "@"}}, policy.Base...)
		e, err := policy.NewFromRules(defaults, map[string]string{"r": s})
		if err != nil {
			if e != nil {
				t.Fatal("an Enforcer with an error")
			}
			return
		}
		target := policy.Target{"project_id": "A", "x": "y", "n": "1"}
		for _, c := range []policy.Credentials{admin, member, nobody, {IsAdmin: true}} {
			e.Allowed("r", c, target)
			e.Allowed("r", c, nil)
		}
	})
}
