package compute

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestLockReasonSchema checks the lock action's value at 2.73 against Nova's
// lock_v273 schema.
func TestLockReasonSchema(t *testing.T) {
	for _, c := range []struct {
		arg, want, err string
	}{
		{`null`, "", ""},
		{`{}`, "", ""},
		{`{"locked_reason": "disk check"}`, "disk check", ""},
		{`{"locked_reason": "` + strings.Repeat("é", 255) + `"}`, strings.Repeat("é", 255), ""},
		{`{"locked_reason": "` + strings.Repeat("r", 256) + `"}`, "", "is too long"},
		{`{"locked_reason": ""}`, "", "Invalid input for field/attribute locked_reason. Value: . '' should be non-empty"},
		{`{"locked_reason": 1.5}`, "", "Value: 1.5. 1.5 is not of type 'string'"},
		{`{"locked_reason": ["a"]}`, "", "is not of type 'string'"},
		{`"soon"`, "", "Invalid input for field/attribute lock. Value: soon. 'soon' is not of type 'object', 'null'"},
		{`true`, "", "True is not of type 'object', 'null'"},
		{`{"locked_reason": "x", "by": "me"}`, "", "Additional properties are not allowed ('by' was unexpected)"},
		// A property's error comes before an unexpected property's.
		{`{"locked_reason": 2, "by": "me"}`, "", "2 is not of type 'string'"},
	} {
		got, err := lockReason(json.RawMessage(c.arg))
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("lockReason(%s) = %q, %v; want %q", c.arg, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("lockReason(%s) = %q, %v; want an error with %q", c.arg, got, err, c.err)
		}
	}
}
