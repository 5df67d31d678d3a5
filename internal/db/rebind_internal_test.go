package db

import (
	"fmt"
	"testing"
)

func TestRebinderKeepsWhatItReboundUpToItsBound(t *testing.T) {
	r := &rebinder{}
	for i := range maxRebound + 10 {
		q := fmt.Sprintf("SELECT %d WHERE a = ? AND b = ?", i)
		want := fmt.Sprintf("SELECT %d WHERE a = $1 AND b = $2", i)
		for range 2 { // rebound, then kept (or, past the bound, rebound again)
			if got := r.of(Postgres, q); got != want {
				t.Fatalf("of(%q) = %q, want %q", q, got, want)
			}
		}
	}
	kept := 0
	r.m.Range(func(_, _ any) bool { kept++; return true })
	if kept != maxRebound || r.n.Load() != maxRebound {
		t.Errorf("kept %d texts (counted %d), want the bound, %d", kept, r.n.Load(), maxRebound)
	}
	if got := r.of(SQLite, "SELECT ?"); got != "SELECT ?" {
		t.Errorf("SQLite's text rebound: %q", got)
	}
	var none *rebinder
	if got := none.of(Postgres, "SELECT ?"); got != "SELECT $1" {
		t.Errorf("a nil rebinder: %q, want SELECT $1", got)
	}
}
