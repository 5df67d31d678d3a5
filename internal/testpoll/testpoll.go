// Package testpoll is the tests' one way to wait for something that happens
// in another goroutine or process: poll a condition until it holds or a
// deadline passes. It imports only the standard library, so every package's
// tests can use it.
package testpoll

import (
	"testing"
	"time"
)

// Interval bounds: the first retry comes after MinInterval, and each wait
// doubles up to MaxInterval.
const (
	MinInterval = 5 * time.Millisecond
	MaxInterval = 100 * time.Millisecond
)

// Eventually calls cond until it reports done or timeout passes, then fails
// t with what and cond's last explanation (why). cond is called at least
// once, and once more at the deadline. The waits between calls are polling
// intervals, not synchronisation: they grow from MinInterval to MaxInterval.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (done bool, why string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := MinInterval
	for {
		done, why := cond()
		if done {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("%s: not done within %v: %s", what, timeout, why)
			return // for a testing.TB whose Fatalf returns
		}
		timer := time.NewTimer(min(wait, left))
		<-timer.C
		wait = min(2*wait, MaxInterval)
	}
}
