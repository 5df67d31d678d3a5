package identity

import (
	"testing"
	"time"
)

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7:5000":        "198.51.100.7",
		"198.51.100.7":             "198.51.100.7",
		"[::ffff:198.51.100.7]:80": "198.51.100.7",
		"[2001:db8:1:2::9]:443":    "2001:db8:1:2::/64",
		"[fe80::1%eth0]:22":        "fe80::/64",
		"":                         "",
		"pipe":                     "",
	} {
		if got := sourceKey(in); got != want {
			t.Errorf("sourceKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLimiterMemoryIsBounded: past its maximum the limiter forgets the
// sources whose buckets are full again, and if need be any, never growing.
func TestLimiterMemoryIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newFailureLimiter(2, 60, func() time.Time { return now })
	l.max = 3
	l.take("a")
	l.take("a") // a is empty
	l.take("b")
	l.give("b") // b is full again
	l.take("c")
	l.take("d") // makes room: b goes, a and c stay
	if _, ok := l.buckets["b"]; ok || len(l.buckets) != 3 {
		t.Fatalf("buckets %v, want b forgotten", keys(l.buckets))
	}
	if ok, wait := l.take("a"); ok || wait != time.Second {
		t.Fatalf("a after its burst: %v %v, want refused for 1s", ok, wait)
	}
	for _, s := range []string{"e", "f", "g", "h"} {
		l.take(s)
		if len(l.buckets) > l.max {
			t.Fatalf("%d buckets, max %d", len(l.buckets), l.max)
		}
	}
}

func keys(m map[string]*bucket) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
