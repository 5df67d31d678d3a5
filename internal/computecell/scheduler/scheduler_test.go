package scheduler_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/computecell/scheduler"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

func register(t *testing.T, d *db.DB, host string, vcpus int, heartbeat time.Time) {
	t.Helper()
	n := celldb.Node{Host: host, AvailabilityZone: "nova", HypervisorType: "fake", VCPUs: vcpus, RAMMB: int64(vcpus) * 1024,
		DiskGB: int64(vcpus) * 10, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}
	if err := celldb.RegisterNode(context.Background(), d, n, heartbeat); err != nil {
		t.Fatalf("register %s: %v", host, err)
	}
}

func TestSelectSkipsStaleAndDisabledHosts(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "compute", celldb.Migrations); err != nil {
			t.Fatal(err)
		}
		const downAfter = time.Minute
		now := time.Now()
		// The stale and disabled hosts are the biggest: the RAM weigher
		// would prefer them if they were not filtered out.
		register(t, d, "a-stale", 64, now.Add(-10*downAfter))
		register(t, d, "b-disabled", 64, now)
		register(t, d, "c-live", 2, now)
		register(t, d, "d-live", 3, now)
		if _, err := d.Exec(ctx, `UPDATE compute_nodes SET enabled = 0 WHERE host = ?`, "b-disabled"); err != nil {
			t.Fatal(err)
		}
		s, err := scheduler.New(d, nil, downAfter)
		if err != nil {
			t.Fatal(err)
		}
		s.Refresh = 0 // read the database at every selection
		small := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}

		sels, err := s.Select(ctx, &hostsched.Request{Flavor: small, NumInstances: 5})
		if err != nil {
			t.Fatalf("Select 5: %v", err)
		}
		count := map[string]int{}
		for _, sel := range sels {
			count[sel.Host]++
			for _, h := range append([]string{sel.Host}, sel.Alternates...) {
				if h == "a-stale" || h == "b-disabled" {
					t.Errorf("selection %+v names %s", sel, h)
				}
			}
		}
		if count["c-live"] != 2 || count["d-live"] != 3 {
			t.Errorf("placed %v, want 2 on c-live and 3 on d-live", count)
		}

		// One more than the live hosts hold: no valid host, though the
		// stale and disabled hosts have room.
		sels, err = s.Select(ctx, &hostsched.Request{Flavor: small, NumInstances: 6})
		if !errors.Is(err, hostsched.ErrNoValidHost) {
			t.Fatalf("Select 6 = %v, want ErrNoValidHost", err)
		}
		if len(sels) != 5 {
			t.Errorf("Select 6 placed %d before failing, want 5", len(sels))
		}
		if _, err := s.Select(ctx, &hostsched.Request{Flavor: capacity.Flavor{VCPUs: 8, RAMMB: 1024}, NumInstances: 1}); !errors.Is(err, hostsched.ErrNoValidHost) {
			t.Errorf("Select of an 8 vCPU flavor = %v, want ErrNoValidHost: only the stale and disabled hosts are big enough", err)
		}

		// A heartbeat makes the stale host eligible again, and the weigher then prefers it.
		if err := celldb.Heartbeat(ctx, d, []string{"a-stale"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		sels, err = s.Select(ctx, &hostsched.Request{Flavor: small, NumInstances: 1})
		if err != nil || len(sels) != 1 || sels[0].Host != "a-stale" {
			t.Fatalf("Select after the heartbeat = %+v, %v; want a-stale", sels, err)
		}
		for _, h := range sels[0].Alternates {
			if h == "b-disabled" {
				t.Errorf("alternates %v name the disabled host", sels[0].Alternates)
			}
		}

		// Use recorded by claims counts: fill the live hosts and only a-stale is left.
		for i, h := range []string{"c-live", "c-live", "d-live", "d-live", "d-live"} {
			u := string(rune('a'+i)) + "-instance"
			if err := d.InTx(ctx, func(tx *db.Tx) error { return celldb.Claim(ctx, tx, u, h, small, time.Now()) }); err != nil {
				t.Fatal(err)
			}
		}
		sels, err = s.Select(ctx, &hostsched.Request{Flavor: small, NumInstances: 2})
		if err != nil || len(sels) != 2 || sels[0].Host != "a-stale" || sels[1].Host != "a-stale" || len(sels[0].Alternates) != 0 {
			t.Errorf("Select with the live hosts full = %+v, %v; want a-stale twice, no alternates", sels, err)
		}
	})
}

func TestNewRequiresADatabase(t *testing.T) {
	if _, err := scheduler.New(nil, nil, time.Minute); err == nil {
		t.Error("New(nil database) succeeded")
	}
}

// TestSelectCountsItsChoicesBetweenReads: between two reads of the
// database the scheduler counts what it chose, so one-instance builds in a
// row spread over equal hosts instead of all landing on the first; once
// the state is read again, the database's use is what counts.
func TestSelectCountsItsChoicesBetweenReads(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t, "sqlite")
	if err := d.Migrate(ctx, "compute", celldb.Migrations); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	register(t, d, "h1", 4, now)
	register(t, d, "h2", 4, now)
	s, err := scheduler.New(d, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	s.Refresh = time.Hour
	small := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	count := map[string]int{}
	for range 4 {
		sels, err := s.Select(ctx, &hostsched.Request{Flavor: small, NumInstances: 1})
		if err != nil || len(sels) != 1 {
			t.Fatalf("select: %+v %v", sels, err)
		}
		count[sels[0].Host]++
	}
	if count["h1"] != 2 || count["h2"] != 2 {
		t.Errorf("four selections between reads: %v, want two on each host", count)
	}
}
