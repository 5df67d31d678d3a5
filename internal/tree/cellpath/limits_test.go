package cellpath

import (
	"errors"
	"strings"
	"testing"
)

func TestLimits(t *testing.T) {
	if err := ValidateName(strings.Repeat("a", 63)); err != nil {
		t.Errorf("a 63-character name: %v", err)
	}
	if err := ValidateName(strings.Repeat("a", 64)); !errors.Is(err, ErrInvalid) {
		t.Errorf("a 64-character name: %v", err)
	}
	deep := "api" + strings.Repeat("!c", MaxDepth-1)
	if Depth(deep) != MaxDepth {
		t.Fatalf("Depth = %d", Depth(deep))
	}
	if err := Validate(deep); err != nil {
		t.Errorf("a path %d deep: %v", MaxDepth, err)
	}
	if err := Validate(Child(deep, "c")); !errors.Is(err, ErrInvalid) {
		t.Errorf("a path %d deep: %v", MaxDepth+1, err)
	}
	if Depth("") != 0 || Child("api", "x") != "api!x" {
		t.Error("Depth/Child are wrong")
	}
}

func TestHops(t *testing.T) {
	cases := []struct {
		from, to string
		want     int
	}{
		{"api", "api", 0},
		{"api", "api!cell1", 1},
		{"api", "api!cell1!a", 2},
		{"api!cell1!a", "api", 2},
		{"api!cell1!a", "api!cell1!b", 2},
		{"api!cell1!a", "api!cell2!b", 4},
		{"api!cell1", "api!cell10", 2},
		{"api!x", "other!x", -1},
	}
	for _, c := range cases {
		if got := Hops(c.from, c.to); got != c.want {
			t.Errorf("Hops(%q, %q) = %d, want %d", c.from, c.to, got, c.want)
		}
		if c.want >= 0 {
			if back := Hops(c.to, c.from); back != c.want {
				t.Errorf("Hops(%q, %q) = %d, not the same both ways", c.to, c.from, back)
			}
		}
	}
}
