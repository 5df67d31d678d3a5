package compute_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestConsoleOutputLength: os-getConsoleOutput's length as Nova's schema
// takes it and its compute manager cuts the log: the last N pieces of the
// log split on "\n", joined with "\n" (so N pieces when the client splits
// the answer again), 0 nothing, null or none the whole log, a string of
// digits as its number, and Nova's 400s for the rest.
func TestConsoleOutputLength(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	sc := tr.Compute(demo)
	id := create(t, tr, demo, map[string]any{"name": "console", "flavorRef": "1", "imageRef": imageID})
	waitIdle(t, tr, id, "ACTIVE")
	path := "/v2.1/servers/" + id + "/action"
	output := func(body string) string {
		t.Helper()
		r := tr.Do(t, http.MethodPost, path, demo, body)
		if r.Status != http.StatusOK {
			t.Fatalf("%s: %s", body, r)
		}
		var out struct {
			Output *string `json:"output"`
		}
		r.JSON(t, &out)
		if out.Output == nil {
			t.Fatalf("%s: no output: %s", body, r.Body)
		}
		return *out.Output
	}
	whole := output(`{"os-getConsoleOutput": {}}`)
	pieces := strings.Split(whole, "\n")
	if len(pieces) < 3 || !strings.HasSuffix(whole, "\n") {
		t.Fatalf("the fake driver's log should be lines ending in a newline: %q", whole)
	}
	last := func(n int) string { return strings.Join(pieces[max(len(pieces)-n, 0):], "\n") }
	for _, c := range []struct {
		body string
		want string
	}{
		{`{"os-getConsoleOutput": {"length": null}}`, whole},
		{`{"os-getConsoleOutput": {"length": 1}}`, ""},
		{`{"os-getConsoleOutput": {"length": 2}}`, last(2)},
		{`{"os-getConsoleOutput": {"length": 3}}`, last(3)},
		{`{"os-getConsoleOutput": {"length": "3"}}`, last(3)},
		{`{"os-getConsoleOutput": {"length": 100000}}`, whole},
		{`{"os-getConsoleOutput": {"length": 99999999999999999999999}}`, whole},
		{`{"os-getConsoleOutput": {"length": 0}}`, ""},
		// Nova's -1 is Python's [1:]: all but the first line.
		{`{"os-getConsoleOutput": {"length": -1}}`, strings.Join(pieces[1:], "\n")},
		// The schema's minimum is for numbers only; a string may go lower.
		{`{"os-getConsoleOutput": {"length": "-2"}}`, strings.Join(pieces[2:], "\n")},
	} {
		if got := output(c.body); got != c.want {
			t.Errorf("%s: %q, want %q", c.body, got, c.want)
		}
	}
	// A client that asks for N lines and counts the pieces gets N.
	out, err := servers.ShowConsoleOutput(context.Background(), sc, id, servers.ShowConsoleOutputOpts{Length: 2}).Extract()
	if err != nil || len(strings.Split(out, "\n")) != 2 {
		t.Errorf("gophercloud length 2: %q (%d pieces), %v", out, len(strings.Split(out, "\n")), err)
	}

	for _, c := range []struct{ body, want string }{
		{`{"os-getConsoleOutput": {"length": -2}}`, "Invalid input for field/attribute length. Value: -2. -2 is less than the minimum of -1"},
		{`{"os-getConsoleOutput": {"length": "x"}}`, "Invalid input for field/attribute length. Value: x. 'x' does not match '^-?[0-9]+$'"},
		{`{"os-getConsoleOutput": {"length": "1.5"}}`, "'1.5' does not match '^-?[0-9]+$'"},
		{`{"os-getConsoleOutput": {"length": 1.5}}`, "Invalid input for field/attribute length. Value: 1.5. 1.5 is not of type 'integer', 'string', 'null'"},
		{`{"os-getConsoleOutput": {"length": true}}`, "Value: True. True is not of type 'integer', 'string', 'null'"},
		{`{"os-getConsoleOutput": {"length": 1, "x": 1}}`, "Invalid input for field/attribute os-getConsoleOutput. Value: {'length': 1, 'x': 1}. Additional properties are not allowed ('x' was unexpected)"},
		{`{"os-getConsoleOutput": null}`, "Invalid input for field/attribute os-getConsoleOutput. Value: None. None is not of type 'object'"},
	} {
		faultHas(t, tr.Do(t, http.MethodPost, path, demo, c.body), http.StatusBadRequest, c.want)
	}

	// A shelved-offloaded server has no host: Nova's 409.
	if r := tr.Do(t, http.MethodPost, path, demo, `{"shelve": null}`); r.Status != http.StatusAccepted {
		t.Fatalf("shelve: %s", r)
	}
	waitIdle(t, tr, id, "SHELVED_OFFLOADED")
	faultHas(t, tr.Do(t, http.MethodPost, path, demo, `{"os-getConsoleOutput": {}}`), http.StatusConflict, "Instance "+id+" is not ready")
}
