package wire

import "testing"

// TestTailConsole: Nova's _tail_log, log.split("\n")[-n:] joined with
// "\n": a final newline is a piece of its own.
func TestTailConsole(t *testing.T) {
	const log = "a\nb\nc\n"
	for _, c := range []struct {
		n    int
		want string
	}{
		{1, ""},
		{2, "c\n"},
		{3, "b\nc\n"},
		{4, log},
		{100, log},
		{0, ""},
		{-1, "b\nc\n"},
		{-3, ""},
		{-100, ""},
	} {
		if got := TailConsole(log, c.n); got != c.want {
			t.Errorf("TailConsole(%q, %d) = %q, want %q", log, c.n, got, c.want)
		}
	}
	if got := TailConsole("one", 5); got != "one" {
		t.Errorf("TailConsole of one line = %q", got)
	}
	if got := TailConsole("", 2); got != "" {
		t.Errorf("TailConsole of nothing = %q", got)
	}
}
