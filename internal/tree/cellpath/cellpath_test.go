package cellpath

import (
	"errors"
	"testing"
)

func TestValidate(t *testing.T) {
	good := []string{"api", "api!cell1", "api!cell1!a", "API-2!x"}
	for _, p := range good {
		if err := Validate(p); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", p, err)
		}
	}
	bad := []string{"", "!", "api!", "!api", "api!!c", "api!cell 1", "api.cell", "api!cell_1"}
	for _, p := range bad {
		if err := Validate(p); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%q) = %v, want ErrInvalid", p, err)
		}
	}
}

func TestNextHop(t *testing.T) {
	cases := []struct{ from, to, want string }{
		{"api", "api!cell1!a", "api!cell1"},
		{"api!cell1", "api!cell1!a", "api!cell1!a"},
		{"api!cell1!a", "api", "api!cell1"},
		{"api!cell1!a", "api!cell2", "api!cell1"},
		{"api!cell1", "api!cell2", "api"},
		{"api", "api", ""},
		{"api", "other!x", ""},
		{"api!cell", "api!cell1", "api"},
	}
	for _, c := range cases {
		if got := NextHop(c.from, c.to); got != c.want {
			t.Errorf("NextHop(%q, %q) = %q, want %q", c.from, c.to, got, c.want)
		}
	}
}

func TestHopsAndAncestry(t *testing.T) {
	if h := Hops("api!cell1!a", "api!cell2"); h != 3 {
		t.Errorf("Hops = %d, want 3", h)
	}
	if h := Hops("api", "other"); h != -1 {
		t.Errorf("Hops to another tree = %d, want -1", h)
	}
	if IsAncestor("api!cell", "api!cell1") {
		t.Error("api!cell must not be an ancestor of api!cell1")
	}
	if !Contains("api!cell1", "api!cell1!a") || !Contains("api", "api") {
		t.Error("Contains is wrong")
	}
	if Parent("api") != "" || Parent("api!c!d") != "api!c" || Root("api!c") != "api" || Depth("api!c!d") != 3 {
		t.Error("Parent/Root/Depth are wrong")
	}
}

func FuzzNextHop(f *testing.F) {
	f.Add("api!cell1", "api!cell2!x")
	f.Fuzz(func(t *testing.T, from, to string) {
		if Validate(from) != nil || Validate(to) != nil {
			return
		}
		// Walking next hops from any cell reaches the target in at most
		// depth(from)+depth(to) steps, or stops when the trees differ.
		cur := from
		for i := 0; i <= Depth(from)+Depth(to); i++ {
			if cur == to {
				return
			}
			cur = NextHop(cur, to)
			if cur == "" {
				if Root(from) == Root(to) {
					t.Fatalf("walk from %q to %q stopped", from, to)
				}
				return
			}
		}
		t.Fatalf("walk from %q to %q did not converge", from, to)
	})
}
