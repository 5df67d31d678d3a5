package testpoll_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// fakeTB records a failure instead of ending the test.
type fakeTB struct {
	testing.TB
	fatal []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = append(f.fatal, fmt.Sprintf(format, args...))
}

func TestEventuallyDone(t *testing.T) {
	calls := 0
	f := &fakeTB{TB: t}
	testpoll.Eventually(f, 10*time.Second, "the third call", func() (bool, string) {
		calls++
		n := calls
		return n >= 3, fmt.Sprintf("call %d", n)
	})
	if len(f.fatal) != 0 {
		t.Fatalf("failed: %q", f.fatal)
	}
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
}

func TestEventuallyDoneAtOnce(t *testing.T) {
	f := &fakeTB{TB: t}
	calls := 0
	testpoll.Eventually(f, 0, "at once", func() (bool, string) { calls++; return true, "" })
	if len(f.fatal) != 0 || calls != 1 {
		t.Fatalf("failed %q after %d calls, want no failure after 1", f.fatal, calls)
	}
}

func TestEventuallyTimesOut(t *testing.T) {
	f := &fakeTB{TB: t}
	calls := 0
	start := time.Now()
	const timeout = 50 * time.Millisecond
	testpoll.Eventually(f, timeout, "the impossible", func() (bool, string) {
		calls++
		return false, fmt.Sprintf("still no after %d", calls)
	})
	took := time.Since(start)
	if len(f.fatal) != 1 {
		t.Fatalf("%d failures %q, want 1", len(f.fatal), f.fatal)
	}
	want := fmt.Sprintf("the impossible: not done within 50ms: still no after %d", calls)
	if f.fatal[0] != want {
		t.Errorf("failure %q, want %q (the last why)", f.fatal[0], want)
	}
	if calls < 2 {
		t.Errorf("cond called %d times, want it retried", calls)
	}
	if took < timeout {
		t.Errorf("gave up after %v, before the %v deadline", took, timeout)
	}
}

// TestStandardLibraryOnly keeps the package usable from every package's
// tests: it must depend on nothing but the standard library.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/cellcloud/cellcloud/internal/testpoll" {
			t.Errorf("testpoll depends on %s", p)
		}
	}
}
