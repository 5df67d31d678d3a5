package compute

import (
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestEventDetails: an event's details (2.84) are a failed event's
// message (the text the cell records as its traceback), cut to 255 bytes
// on a character boundary as oslo's safe_truncate; null for an event that
// succeeded, is still running, or failed with no message.
func TestEventDetails(t *testing.T) {
	long := strings.Repeat("x", 254) + "é" // 256 bytes: é is cut whole
	for _, c := range []struct {
		name string
		e    wire.EventRecord
		want any
	}{
		{"failed", wire.EventRecord{Result: "Error", Traceback: "No valid host was found."}, "No valid host was found."},
		{"failed, long", wire.EventRecord{Result: "Error", Traceback: long}, strings.Repeat("x", 254)},
		{"failed, 255 bytes", wire.EventRecord{Result: "Error", Traceback: strings.Repeat("y", 255)}, strings.Repeat("y", 255)},
		{"failed, no message", wire.EventRecord{Result: "Error"}, nil},
		{"succeeded", wire.EventRecord{Result: "Success"}, nil},
		{"running", wire.EventRecord{}, nil},
	} {
		if got := eventDetails(c.e); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
