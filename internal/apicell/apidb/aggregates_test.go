package apidb_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// TestAggregates: on both engines, an aggregate's name is unique (also on
// a rename), a refused write leaves the transaction's earlier writes
// undone, hosts keep the order they were added in and are each there once,
// metadata is set, replaced and deleted by key, the zones of hosts come
// from the aggregates with a zone, and a delete frees the name.
func TestAggregates(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		in := func(f func(tx *db.Tx) error) error { return d.InTx(ctx, f) }
		var a1, a2 apidb.Aggregate
		if err := in(func(tx *db.Tx) (err error) {
			a1, err = apidb.CreateAggregate(ctx, tx, "u1", "agg1", "az1", t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if a1.ID <= 0 || a1.Zone() != "az1" || len(a1.Hosts) != 0 || !a1.CreatedAt.Equal(t0) || !a1.UpdatedAt.IsZero() {
			t.Fatalf("created: %+v", a1)
		}
		if err := in(func(tx *db.Tx) (err error) {
			a2, err = apidb.CreateAggregate(ctx, tx, "u2", "agg2", "", t0)
			return err
		}); err != nil || a2.Zone() != "" || len(a2.Metadata) != 0 {
			t.Fatalf("created without a zone: %+v %v", a2, err)
		}
		if err := in(func(tx *db.Tx) error {
			_, err := apidb.CreateAggregate(ctx, tx, "u3", "agg1", "", t0)
			return err
		}); !errors.Is(err, apidb.ErrAggregateNameExists) {
			t.Errorf("a second agg1: %v", err)
		}
		if err := in(func(tx *db.Tx) error { return apidb.RenameAggregate(ctx, tx, a2.ID, "agg1", t0) }); !errors.Is(err, apidb.ErrAggregateNameExists) {
			t.Errorf("rename onto agg1: %v", err)
		}
		h1 := apidb.AggregateHost{Cell: "api!cell1", Host: "h"}
		h2 := apidb.AggregateHost{Cell: "api!cell2", Host: "h"}
		// A refusal after a write in the same transaction undoes the write.
		err := in(func(tx *db.Tx) error {
			if err := apidb.AddAggregateHost(ctx, tx, a1.ID, h2); err != nil {
				return err
			}
			if err := apidb.AddAggregateHost(ctx, tx, a1.ID, h1); err != nil {
				return err
			}
			return apidb.AddAggregateHost(ctx, tx, a1.ID, h2)
		})
		if !errors.Is(err, apidb.ErrAggregateHostExists) {
			t.Fatalf("a host twice: %v", err)
		}
		if got, _ := apidb.GetAggregate(ctx, d, a1.ID); len(got.Hosts) != 0 {
			t.Fatalf("hosts after a refused transaction: %v", got.Hosts)
		}
		for _, h := range []apidb.AggregateHost{h2, h1} {
			if err := in(func(tx *db.Tx) error { return apidb.AddAggregateHost(ctx, tx, a1.ID, h) }); err != nil {
				t.Fatal(err)
			}
		}
		if err := in(func(tx *db.Tx) error { return apidb.AddAggregateHost(ctx, tx, a2.ID, h1) }); err != nil {
			t.Fatal(err)
		}
		got, err := apidb.GetAggregate(ctx, d, a1.ID)
		if err != nil || !slices.Equal(got.Hosts, []apidb.AggregateHost{h2, h1}) {
			t.Errorf("hosts in the order added: %+v %v", got.Hosts, err)
		}
		x, y := "x", "y"
		t1 := t0.Add(60e9)
		if err := in(func(tx *db.Tx) error {
			return apidb.UpdateAggregateMetadata(ctx, tx, a1.ID, map[string]*string{"k": &x, "gone": nil}, t1)
		}); err != nil {
			t.Fatal(err)
		}
		if err := in(func(tx *db.Tx) error {
			return apidb.UpdateAggregateMetadata(ctx, tx, a1.ID, map[string]*string{"k": &y, "j": &x}, t1)
		}); err != nil {
			t.Fatal(err)
		}
		if err := in(func(tx *db.Tx) error {
			return apidb.UpdateAggregateMetadata(ctx, tx, a1.ID, map[string]*string{"j": nil}, t1)
		}); err != nil {
			t.Fatal(err)
		}
		got, _ = apidb.GetAggregate(ctx, d, a1.ID)
		if len(got.Metadata) != 2 || got.Metadata["k"] != "y" || got.Zone() != "az1" || !got.UpdatedAt.Equal(t1) {
			t.Errorf("metadata: %+v", got)
		}
		// Zones: h1 and h2 are in az1 by a1; a2 (no zone) adds none.
		zones, err := apidb.HostZones(ctx, d)
		if err != nil || !slices.Equal(zones[h1], []string{"az1"}) || !slices.Equal(zones[h2], []string{"az1"}) || len(zones) != 2 {
			t.Errorf("host zones: %v %v", zones, err)
		}
		if z, err := apidb.OtherZones(ctx, d, a2.ID, []apidb.AggregateHost{h1}); err != nil || !slices.Equal(z, []string{"az1"}) {
			t.Errorf("zones of h1 but a2's: %v %v", z, err)
		}
		if z, err := apidb.OtherZones(ctx, d, a1.ID, []apidb.AggregateHost{h1, h2}); err != nil || len(z) != 0 {
			t.Errorf("zones of h1 and h2 but a1's: %v %v", z, err)
		}
		if n, err := apidb.CountHostInstances(ctx, d, []apidb.AggregateHost{h1, h2}); err != nil || n != 0 {
			t.Errorf("instances on h1, h2: %d %v", n, err)
		}
		if err := in(func(tx *db.Tx) error { return apidb.RemoveAggregateHost(ctx, tx, a1.ID, h1) }); err != nil {
			t.Fatal(err)
		}
		if err := in(func(tx *db.Tx) error { return apidb.RemoveAggregateHost(ctx, tx, a1.ID, h1) }); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("remove a host twice: %v", err)
		}
		if err := in(func(tx *db.Tx) error { return apidb.DeleteAggregate(ctx, tx, a1.ID) }); err != nil {
			t.Fatal(err)
		}
		if _, err := apidb.GetAggregate(ctx, d, a1.ID); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("a deleted aggregate: %v", err)
		}
		if err := in(func(tx *db.Tx) error { return apidb.DeleteAggregate(ctx, tx, a1.ID) }); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("delete twice: %v", err)
		}
		all, err := apidb.ListAggregates(ctx, d)
		if err != nil || len(all) != 1 || all[0].ID != a2.ID || !slices.Equal(all[0].Hosts, []apidb.AggregateHost{h1}) {
			t.Errorf("list after the delete: %+v %v", all, err)
		}
		if err := in(func(tx *db.Tx) error { return apidb.RenameAggregate(ctx, tx, a2.ID, "agg1", t1) }); err != nil {
			t.Errorf("the deleted aggregate's name: %v", err)
		}
		var rows int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM aggregate_metadata WHERE aggregate_id = ?`, a1.ID).Scan(&rows); err != nil || rows != 0 {
			t.Errorf("metadata rows of a deleted aggregate: %d %v", rows, err)
		}
	})
}

// TestAggregateLock: two changes that check the zones of a host and then
// add it, each to an aggregate of its own zone, do not both pass: the
// second waits at LockAggregates until the first has committed, then sees
// the host in the first's zone. On PostgreSQL the second is seen waiting
// on the lock (pg_stat_activity) before the first goes on.
func TestAggregateLock(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		host := apidb.AggregateHost{Cell: "api!cell1", Host: "h"}
		var ids []int64
		for i, z := range []string{"az1", "az2"} {
			if err := d.InTx(ctx, func(tx *db.Tx) error {
				a, err := apidb.CreateAggregate(ctx, tx, fmt.Sprint("u", i), "agg-"+z, z, t0)
				ids = append(ids, a.ID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		errOtherZone := errors.New("the host is in another zone")
		add := func(id int64, zone string, locked func()) error {
			return d.InTx(ctx, func(tx *db.Tx) error {
				if _, err := apidb.LockAggregates(ctx, tx); err != nil {
					return err
				}
				locked()
				zones, err := apidb.OtherZones(ctx, tx, id, []apidb.AggregateHost{host})
				if err != nil {
					return err
				}
				for _, z := range zones {
					if z != zone {
						return errOtherZone
					}
				}
				return apidb.AddAggregateHost(ctx, tx, id, host)
			})
		}
		lockedA := make(chan struct{})
		goA := make(chan struct{})
		doneA := make(chan error, 1)
		go func() {
			doneA <- add(ids[0], "az1", func() { close(lockedA); <-goA })
		}()
		<-lockedA
		doneB := make(chan error, 1)
		go func() { doneB <- add(ids[1], "az2", func() {}) }()
		if d.Dialect == db.Postgres {
			testpoll.Eventually(t, 10*time.Second, "the second change to wait on the lock", func() (bool, string) {
				var n int
				err := d.QueryRow(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%aggregate_lock%'`).Scan(&n)
				if err != nil {
					return false, err.Error()
				}
				return n == 1, fmt.Sprint(n, " waiting")
			})
		}
		close(goA)
		if err := <-doneA; err != nil {
			t.Fatalf("the first change: %v", err)
		}
		if err := <-doneB; !errors.Is(err, errOtherZone) {
			t.Fatalf("the second change: %v, want the host in another zone", err)
		}
		zones, err := apidb.HostZones(ctx, d)
		if err != nil || !slices.Equal(zones[host], []string{"az1"}) {
			t.Errorf("the host's zones: %v %v", zones, err)
		}
	})
}
