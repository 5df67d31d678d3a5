package fake_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
)

// The fake driver is a virt.Driver that can list its hosts.
var (
	_ virt.Driver = (*fake.Driver)(nil)
	_ virt.Lister = (*fake.Driver)(nil)
)

func newDriver(t *testing.T, cfg fake.Config) *fake.Driver {
	t.Helper()
	d, err := fake.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return d
}

func inst(i int) virt.Instance {
	return virt.Instance{UUID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), Name: "vm", VCPUs: 1, RAMMB: 512, DiskGB: 1}
}

func TestFailHostsAlwaysFail(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, fake.Config{FailHosts: []string{"bad1", "bad2"}})
	for i := range 50 {
		for _, h := range []string{"bad1", "bad2"} {
			if err := d.Spawn(ctx, h, inst(i)); err == nil {
				t.Fatalf("Spawn of %d on fail host %s succeeded", i, h)
			}
		}
		if err := d.Spawn(ctx, "good", inst(i)); err != nil {
			t.Fatalf("Spawn of %d on good host: %v", i, err)
		}
	}
	for _, h := range []string{"bad1", "bad2"} {
		if got := d.List(h); len(got) != 0 {
			t.Errorf("List(%s) = %v, want nothing on a host whose spawns fail", h, got)
		}
	}
	if got := len(d.List("good")); got != 50 {
		t.Errorf("List(good) has %d instances, want 50", got)
	}
}

func TestFailRate(t *testing.T) {
	ctx := context.Background()
	always := newDriver(t, fake.Config{FailRate: 1})
	never := newDriver(t, fake.Config{FailRate: 0})
	for i := range 500 {
		if err := always.Spawn(ctx, "h", inst(i)); err == nil {
			t.Fatalf("FailRate 1: spawn %d succeeded", i)
		}
		if err := never.Spawn(ctx, "h", inst(i)); err != nil {
			t.Fatalf("FailRate 0: spawn %d failed: %v", i, err)
		}
	}
	if got := always.List("h"); len(got) != 0 {
		t.Errorf("FailRate 1: List = %d instances, want 0", len(got))
	}
	if got := never.List("h"); len(got) != 500 {
		t.Errorf("FailRate 0: List = %d instances, want 500", len(got))
	}

	// A rate in between fails some and not others, the same way for the
	// same seed.
	run := func() []bool {
		d := newDriver(t, fake.Config{FailRate: 0.5, Seed: 42})
		out := make([]bool, 200)
		for i := range out {
			out[i] = d.Spawn(ctx, "h", inst(i)) != nil
		}
		return out
	}
	a, b := run(), run()
	failed := 0
	for _, f := range a {
		if f {
			failed++
		}
	}
	if failed == 0 || failed == len(a) {
		t.Errorf("FailRate 0.5 failed %d of %d spawns, want some but not all", failed, len(a))
	}
	if !slices.Equal(a, b) {
		t.Error("FailRate 0.5 with the same seed failed different spawns")
	}
}

func TestSpawnIsIdempotent(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, fake.Config{})
	in := inst(1)
	for range 3 {
		if err := d.Spawn(ctx, "h1", in); err != nil {
			t.Fatalf("Spawn: %v", err)
		}
	}
	if got := d.List("h1"); !slices.Equal(got, []string{in.UUID}) {
		t.Errorf("List after three spawns of one instance = %v, want [%s]", got, in.UUID)
	}
}

func TestDestroy(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, fake.Config{})
	// Destroying what is not there, on a host never seen or one that is,
	// is not an error.
	if err := d.Destroy(ctx, "nowhere", inst(1).UUID); err != nil {
		t.Errorf("Destroy on an unknown host: %v", err)
	}
	if err := d.Spawn(ctx, "h1", inst(1)); err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(ctx, "h1", inst(2).UUID); err != nil {
		t.Errorf("Destroy of a missing instance: %v", err)
	}
	if got := d.List("h1"); !slices.Equal(got, []string{inst(1).UUID}) {
		t.Errorf("List = %v, want the instance still there", got)
	}
	if err := d.Destroy(ctx, "h1", inst(1).UUID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if err := d.Destroy(ctx, "h1", inst(1).UUID); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if got := d.List("h1"); len(got) != 0 {
		t.Errorf("List after Destroy = %v, want empty", got)
	}
}

func TestListIsPerHostAndSorted(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, fake.Config{})
	if got := d.List("empty"); got == nil || len(got) != 0 {
		t.Errorf("List of an unknown host = %#v, want an empty, non-nil list", got)
	}
	for _, i := range []int{5, 1, 3} {
		if err := d.Spawn(ctx, "a", inst(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Spawn(ctx, "b", inst(2)); err != nil {
		t.Fatal(err)
	}
	if got, want := d.List("a"), []string{inst(1).UUID, inst(3).UUID, inst(5).UUID}; !slices.Equal(got, want) {
		t.Errorf("List(a) = %v, want %v", got, want)
	}
	if got, want := d.List("b"), []string{inst(2).UUID}; !slices.Equal(got, want) {
		t.Errorf("List(b) = %v, want %v", got, want)
	}
}

func TestCancelledContextStopsSlowSpawn(t *testing.T) {
	d := newDriver(t, fake.Config{SpawnLatency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Spawn(ctx, "h", inst(1)) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Spawn after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Spawn did not return after its context was cancelled")
	}
	if got := d.List("h"); len(got) != 0 {
		t.Errorf("List = %v, want no instance from a cancelled spawn", got)
	}

	// A deadline stops it the same way.
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	if err := d.Spawn(dctx, "h", inst(2)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Spawn past its deadline = %v, want context.DeadlineExceeded", err)
	}

	// A spawn with latency completes when given the time.
	quick := newDriver(t, fake.Config{SpawnLatency: time.Millisecond})
	if err := quick.Spawn(context.Background(), "h", inst(3)); err != nil {
		t.Fatalf("Spawn with latency: %v", err)
	}
	if got := quick.List("h"); len(got) != 1 {
		t.Errorf("List = %v, want the instance", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, fake.Config{FailRate: 0.1})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := map[string]bool{}
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				in := inst(g*1000 + i)
				if d.Spawn(ctx, "h", in) == nil {
					mu.Lock()
					ok[in.UUID] = true
					mu.Unlock()
				}
				_ = d.List("h")
				if i%10 == 0 {
					_ = d.Destroy(ctx, "h", in.UUID)
					mu.Lock()
					delete(ok, in.UUID)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if got := len(d.List("h")); got != len(ok) {
		t.Errorf("List has %d instances, want the %d spawned and not destroyed", got, len(ok))
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []fake.Config{
		{FailRate: -0.1},
		{FailRate: 1.5},
		{FailRate: math.NaN()},
		{FailRate: math.Inf(1)},
		{SpawnLatency: -time.Second},
	} {
		if _, err := fake.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted a bad configuration", cfg)
		}
	}
	for _, cfg := range []fake.Config{{}, {FailRate: 1}, {FailRate: 0.25, SpawnLatency: time.Second, Seed: 9, FailHosts: []string{"x"}}} {
		if _, err := fake.New(cfg); err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
	}
}

// TestOperationsTakeTheirLatency: an operation with a latency does not
// happen before that time, and gives up with its context; one without
// happens at once.
func TestOperationsTakeTheirLatency(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, fake.Config{OpLatency: map[string]time.Duration{"reboot": time.Hour}})
	in := inst(1)
	if err := d.Spawn(ctx, "h1", in); err != nil {
		t.Fatal(err)
	}
	if err := d.Operate(ctx, "h1", in.UUID, "pause"); err != nil {
		t.Fatalf("pause (no latency): %v", err)
	}
	octx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Operate(octx, "h1", in.UUID, "reboot") }()
	select {
	case err := <-done:
		t.Fatalf("a reboot of an hour's latency returned at once: %v", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("reboot cancelled: %v, want context.Canceled", err)
	}
	out, err := d.ConsoleOutput(ctx, "h1", in.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "fake-virt: pause") || strings.Contains(out, "fake-virt: reboot") {
		t.Errorf("console after a pause and a cancelled reboot:\n%s", out)
	}
}

func TestOpLatencyIsChecked(t *testing.T) {
	for _, c := range []map[string]time.Duration{
		{"reboot": -time.Second},
		{"explode": time.Second},
	} {
		if _, err := fake.New(fake.Config{OpLatency: c}); err == nil {
			t.Errorf("New with op latency %v: no error", c)
		}
	}
}

// The fake driver keeps an image cache per host.
var (
	_ virt.ImageCacher      = (*fake.Driver)(nil)
	_ virt.ImageCacheLister = (*fake.Driver)(nil)
)

// TestCacheImage: each host has its own cache; an image cached again is
// not new; a host in FailHosts fails and caches nothing.
func TestCacheImage(t *testing.T) {
	d := newDriver(t, fake.Config{FailHosts: []string{"bad"}})
	ctx := context.Background()
	for _, c := range []struct {
		host, image string
		fresh, fail bool
	}{
		{"h1", "i1", true, false},
		{"h1", "i2", true, false},
		{"h1", "i1", false, false},
		{"h2", "i1", true, false},
		{"bad", "i1", false, true},
	} {
		fresh, err := d.CacheImage(ctx, c.host, c.image)
		if fresh != c.fresh || (err != nil) != c.fail {
			t.Errorf("CacheImage(%s, %s) = %v, %v; want %v, failure %v", c.host, c.image, fresh, err, c.fresh, c.fail)
		}
	}
	for host, want := range map[string][]string{"h1": {"i1", "i2"}, "h2": {"i1"}, "bad": {}} {
		if got := d.CachedImages(host); !slices.Equal(got, want) {
			t.Errorf("CachedImages(%s) = %v, want %v", host, got, want)
		}
	}
}
