package notfound_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/notfound"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func TestNew(t *testing.T) {
	a, b := notfound.New("a not found"), notfound.New("b not found")
	wrapped := fmt.Errorf("reading: %w", a)
	if !errors.Is(wrapped, a) || !errors.Is(wrapped, notfound.Err) {
		t.Error("a wrapped sentinel must match itself and Err")
	}
	if errors.Is(wrapped, b) || errors.Is(b, a) {
		t.Error("two sentinels must stay distinct")
	}
	if a.Error() != "a not found" {
		t.Errorf("text %q", a.Error())
	}
	if errors.Is(errors.New("not found"), notfound.Err) {
		t.Error("an unrelated error matched Err")
	}
}

// TestEveryNotFound is the convention: every not-found sentinel matches
// Err, keeps its text, and stays distinct from the others.
func TestEveryNotFound(t *testing.T) {
	all := []struct {
		err  error
		text string
	}{
		{apidb.ErrNotFound, "not found"},
		{celldb.ErrNotFound, "instance not found in this cell"},
		{imagedb.ErrNotFound, "image not found"},
		{netdb.ErrNotFound, "not found"},
		{&identity.NotFoundError{Kind: "project", ID: "p"}, "Could not find project: p."},
		{wire.Errorf(wire.CodeNotFound, "Compute host h could not be found."), "not_found: Compute host h could not be found."},
		{wire.ErrNotFound, "not_found"},
	}
	for i, c := range all {
		if !errors.Is(fmt.Errorf("x: %w", c.err), notfound.Err) {
			t.Errorf("%v does not match notfound.Err", c.err)
		}
		if c.err.Error() != c.text {
			t.Errorf("text %q, want %q", c.err.Error(), c.text)
		}
		for j, o := range all[:4] {
			if i != j && errors.Is(c.err, o.err) {
				t.Errorf("%v matches %v", c.err, o.err)
			}
		}
	}
	for _, err := range []error{wire.ErrConflict, wire.Errorf(wire.CodeInternal, "not found"), identity.ErrTokenNotFound} {
		if errors.Is(err, notfound.Err) {
			t.Errorf("%v matches notfound.Err", err)
		}
	}
	// A not-found sentinel is no wire error: a cell still reports it as
	// internal unless it says otherwise.
	if we := wire.AsError(celldb.ErrNotFound); we.Code != wire.CodeInternal {
		t.Errorf("wire code of celldb.ErrNotFound: %s", we.Code)
	}
}
