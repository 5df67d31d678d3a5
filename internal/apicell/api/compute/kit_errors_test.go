package compute

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestErrorTable checks the Compute API's table: a cell's answer maps by
// its code only when it is one (a call's), a cell that did not answer is
// a 503 in the words of its call path, and the other rows.
func TestErrorTable(t *testing.T) {
	named := func(*wire.Error) string { return "Cell api!c1 did not answer; try again later." }
	ofInstance := func(we *wire.Error) string { return "The cell of this instance did not answer: " + we.Message }
	for _, c := range []struct {
		name   string
		err    error
		status int // 0: no row
		msg    string
	}{
		{"not found", fromCell(wire.Errorf(wire.CodeNotFound, "no such host"), named), 404, "no such host"},
		{"wrapped", fmt.Errorf("x: %w", fromCell(fmt.Errorf("rpc: %w", wire.Errorf(wire.CodeConflict, "busy")), named)), 409, "busy"},
		{"invalid", fromCell(wire.Errorf(wire.CodeInvalid, "bad host"), named), 400, "bad host"},
		{"timeout named", fromCell(wire.Errorf(wire.CodeTimeout, "late"), named), 503, "Cell api!c1 did not answer; try again later."},
		{"no route of instance", fromCell(wire.Errorf(wire.CodeNoRoute, "gone"), ofInstance), 503, "The cell of this instance did not answer: gone"},
		{"other code", fromCell(wire.Errorf(wire.CodeBadMessage, "junk"), named), 0, ""},
		{"not a call's", wire.Errorf(wire.CodeNotFound, "from the outbox"), 0, ""},
		{"not a call's 503", wire.Errorf(wire.CodeNoRoute, "from the outbox"), 0, ""},
		{"quota", fmt.Errorf("boot: %w", quota.ErrKeyPairs), 403, "Quota exceeded, too many key pairs."},
		{"quota exceeded", &quota.ExceededError{Overs: []string{"cores"}, Requested: []string{"4"}, Used: []int64{19}, Allowed: []int64{20}}, 403,
			"Quota exceeded for cores: Requested 4, but already used 19 of 20 cores"},
		{"unauthorized", authn.ErrUnauthorized, 401, "The request you have made requires authentication."},
		{"identity", fmt.Errorf("%w: %w", httpkit.ErrIdentityUnavailable, errors.New("down")), 503, "The identity service could not validate the token; try again later."},
	} {
		f, ok := errorTable.Lookup(c.err)
		switch {
		case c.status == 0 && ok:
			t.Errorf("%s: %d %q, want no row", c.name, f.Status, f.Message)
		case c.status != 0 && !ok:
			t.Errorf("%s: no row, want %d", c.name, c.status)
		case ok && (f.Status != c.status || f.Message != c.msg):
			t.Errorf("%s: %d %q, want %d %q", c.name, f.Status, f.Message, c.status, c.msg)
		}
	}
	if err := fromCell(wire.Errorf(wire.CodeNotFound, "x"), named); !errors.Is(err, wire.ErrNotFound) {
		t.Errorf("a cell's answer %v does not match wire.ErrNotFound", err)
	}
}
