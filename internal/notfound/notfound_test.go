package notfound_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cellcloud/cellcloud/internal/notfound"
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
