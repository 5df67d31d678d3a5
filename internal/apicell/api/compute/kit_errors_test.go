package compute

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
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

// TestServeHTTPKit checks what the kit gives the Compute API: both
// request-id headers, a panic answered with the 500 in the Compute fault
// shape, and the router's own 404 in that shape.
func TestServeHTTPKit(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		pol, err := policy.NewFromRules(slices.Concat(policy.Base, Rules), nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(Config{Cell: "api", DB: d, Sender: noSender{}, Caller: noCaller{}, Auth: authn.NoAuth{}, Policy: pol,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		a.mux.HandleFunc("GET /v2.1/os-volumes/test-panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
		for _, c := range []struct {
			path, body string
			status     int
		}{
			{"/v2.1/os-volumes/test-panic", `{"computeFault":{"code":500,"message":"` + internalError + `"}}` + "\n", 500},
			{"/v2/servers", `{"itemNotFound":{"code":404,"message":"The resource could not be found."}}` + "\n", 404},
		} {
			w := httptest.NewRecorder()
			a.ServeHTTP(w, httptest.NewRequest("GET", c.path, nil))
			if w.Code != c.status || w.Body.String() != c.body {
				t.Errorf("%s: %d %s, want %d %s", c.path, w.Code, w.Body, c.status, c.body)
			}
			rid := w.Header().Get("X-Openstack-Request-Id")
			if !strings.HasPrefix(rid, "req-") || w.Header().Get("X-Compute-Request-Id") != rid {
				t.Errorf("%s: request ids %q and %q", c.path, rid, w.Header().Get("X-Compute-Request-Id"))
			}
		}
	})
}
