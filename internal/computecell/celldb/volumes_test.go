package celldb_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/notfound"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func volumeRow(id string, at time.Time) *celldb.Volume {
	return &celldb.Volume{ID: id, ProjectID: "p", UserID: "u", SizeGB: 2, Status: "creating", Version: 1,
		TypeID: "t", TypeName: "__DEFAULT__", AvailabilityZone: "nova", ImageID: "img", ImageSize: 5 << 30,
		Action: "create", RequestID: "req-1", CreatedAt: at, UpdatedAt: at}
}

func inTx(t *testing.T, d *db.DB, f func(tx *db.Tx) error) {
	t.Helper()
	if err := d.InTx(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

// TestVolumeRows inserts a volume (a second insert of its id changes
// nothing), reads it back whole, and updates it: each update increments
// the version; the compare-and-swap on the pending action refuses a
// stale end; clearing the action keeps its request id.
func TestVolumeRows(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		in := volumeRow("v1", t0)
		inTx(t, d, func(tx *db.Tx) error {
			ok, err := celldb.InsertVolume(ctx, tx, in)
			if err != nil || !ok {
				t.Errorf("insert: %v %v", ok, err)
			}
			again := *in
			again.SizeGB = 9
			ok, err = celldb.InsertVolume(ctx, tx, &again)
			if err != nil || ok {
				t.Errorf("second insert of v1: inserted %v, err %v; want nothing done", ok, err)
			}
			return nil
		})
		got, err := celldb.GetVolume(ctx, d, "v1")
		if err != nil {
			t.Fatal(err)
		}
		if got.SizeGB != 2 || got.ImageSize != 5<<30 || got.Action != "create" || got.RequestID != "req-1" ||
			!got.CreatedAt.Equal(t0) || got.Deleted || got.Version != 1 || got.TypeName != "__DEFAULT__" {
			t.Errorf("read back %+v", got)
		}
		if _, err := celldb.GetVolume(ctx, d, "nope"); !errors.Is(err, celldb.ErrVolumeNotFound) || !errors.Is(err, notfound.Err) {
			t.Errorf("unknown volume: %v", err)
		}

		params := json.RawMessage(`{"size_gb":3}`)
		inTx(t, d, func(tx *db.Tx) error {
			_, err := celldb.UpdateVolume(ctx, tx, "v1", &celldb.VolumeExpect{Action: "create", RequestID: "req-other"},
				celldb.VolumeChange{Status: ptr("available")}, t0)
			if !errors.Is(err, wire.ErrConflict) {
				t.Errorf("update expecting another request: %v, want a conflict", err)
			}
			v, err := celldb.UpdateVolume(ctx, tx, "v1", &celldb.VolumeExpect{Action: "create", RequestID: "req-1"},
				celldb.VolumeChange{Status: ptr("available"), ClearPending: true}, t0.Add(time.Second))
			if err != nil {
				return err
			}
			if v.Version != 2 || v.Status != "available" || v.Action != "" || v.RequestID != "req-1" || !v.UpdatedAt.Equal(t0.Add(time.Second)) {
				t.Errorf("after the end of create: %+v", v)
			}
			v, err = celldb.UpdateVolume(ctx, tx, "v1", nil, celldb.VolumeChange{Status: ptr("extending"),
				Pending: &celldb.VolumePending{Action: "extend", Params: params, RequestID: "req-2"}}, t0)
			if err != nil {
				return err
			}
			if v.Version != 3 || v.Action != "extend" || string(v.ActionParams) != string(params) || v.RequestID != "req-2" {
				t.Errorf("after accepting extend: %+v", v)
			}
			v, err = celldb.UpdateVolume(ctx, tx, "v1", &celldb.VolumeExpect{Action: "extend", RequestID: "req-2"},
				celldb.VolumeChange{Status: ptr("deleted"), SizeGB: ptr(3), Fault: ptr(""), ClearPending: true, Deleted: true}, t0)
			if err != nil {
				return err
			}
			if v.Version != 4 || !v.Deleted || v.SizeGB != 3 || v.Action != "" {
				t.Errorf("after the end: %+v", v)
			}
			if _, err := celldb.UpdateVolume(ctx, tx, "nope", nil, celldb.VolumeChange{}, t0); !errors.Is(err, celldb.ErrVolumeNotFound) {
				t.Errorf("update of an unknown volume: %v", err)
			}
			return nil
		})
	})
}

// TestVolumeSnapshotRowsAndPendingWork: snapshots are listed by volume
// (deleted ones left out); the volumes with pending work are those with a
// pending action or a snapshot with a pending operation, each once;
// pending creates from a source are counted; provisioned GiB sum what is
// not deleted.
func TestVolumeSnapshotRowsAndPendingWork(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		inTx(t, d, func(tx *db.Tx) error {
			for _, v := range []*celldb.Volume{volumeRow("v1", t0), volumeRow("v2", t0), volumeRow("v3", t0)} {
				if _, err := celldb.InsertVolume(ctx, tx, v); err != nil {
					return err
				}
			}
			// v2 and v3 have no pending action; v3 is made from snapshot s1.
			for _, id := range []string{"v2", "v3"} {
				if _, err := celldb.UpdateVolume(ctx, tx, id, nil, celldb.VolumeChange{ClearPending: true, Status: ptr("available")}, t0); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE volumes SET snapshot_id = 's1', action = 'create' WHERE id = 'v3'`); err != nil {
				return err
			}
			for _, s := range []*celldb.VolumeSnapshot{
				{ID: "s1", VolumeID: "v2", SizeGB: 2, Status: "creating", Version: 1, Progress: "0%", Pending: "create", RequestID: "r", CreatedAt: t0},
				{ID: "s2", VolumeID: "v2", SizeGB: 2, Status: "available", Version: 1, Progress: "100%", CreatedAt: t0.Add(time.Second)},
				{ID: "s3", VolumeID: "v2", SizeGB: 2, Status: "deleted", Version: 3, Deleted: true, CreatedAt: t0},
			} {
				if ok, err := celldb.InsertVolumeSnapshot(ctx, tx, s); err != nil || !ok {
					t.Errorf("insert snapshot %s: %v %v", s.ID, ok, err)
				}
			}
			if ok, _ := celldb.InsertVolumeSnapshot(ctx, tx, &celldb.VolumeSnapshot{ID: "s1", VolumeID: "v1", CreatedAt: t0}); ok {
				t.Error("a second snapshot s1 was inserted")
			}
			return nil
		})
		snaps, err := celldb.SnapshotsOfVolume(ctx, d, "v2")
		if err != nil {
			t.Fatal(err)
		}
		if ids := snapIDs(snaps); !slices.Equal(ids, []string{"s1", "s2"}) {
			t.Errorf("snapshots of v2: %v, want s1 s2", ids)
		}
		pending, err := celldb.PendingSnapshots(ctx, d, "v2")
		if err != nil || !slices.Equal(snapIDs(pending), []string{"s1"}) {
			t.Errorf("pending snapshots of v2: %v %v", snapIDs(pending), err)
		}
		work, err := celldb.VolumesWithPendingWork(ctx, d, 10)
		slices.Sort(work)
		if err != nil || !slices.Equal(work, []string{"v1", "v2", "v3"}) {
			t.Errorf("volumes with pending work: %v %v, want v1 v2 v3", work, err)
		}
		if n, err := celldb.PendingCreatesFrom(ctx, d, "s1", ""); err != nil || n != 1 {
			t.Errorf("pending creates from s1: %d %v", n, err)
		}
		if n, err := celldb.PendingCreatesFrom(ctx, d, "", "v2"); err != nil || n != 0 {
			t.Errorf("pending creates from v2: %d %v", n, err)
		}
		if gb, err := celldb.ProvisionedVolumeGB(ctx, d); err != nil || gb != 3*2+2*2 {
			t.Errorf("provisioned %d GiB (%v), want 10", gb, err)
		}
		inTx(t, d, func(tx *db.Tx) error {
			other := "delete"
			if _, err := celldb.UpdateVolumeSnapshot(ctx, tx, "s1", &other, "r", celldb.SnapshotChange{}, t0); !errors.Is(err, wire.ErrConflict) {
				t.Errorf("snapshot update expecting another operation: %v", err)
			}
			s, err := celldb.UpdateVolumeSnapshot(ctx, tx, "s1", ptr("create"), "r", celldb.SnapshotChange{Status: ptr("available"),
				Progress: ptr("100%"), ClearPending: true}, t0)
			if err != nil {
				return err
			}
			if s.Version != 2 || s.Pending != "" || s.RequestID != "r" || s.Progress != "100%" {
				t.Errorf("snapshot after its end: %+v", s)
			}
			return nil
		})
	})
}

// TestVolumesChangedAfterPages walks rows by (updated_at, id) from a time,
// deleted ones included, without skipping or repeating a row that shares
// its updated_at with the last of a page.
func TestVolumesChangedAfterPages(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		inTx(t, d, func(tx *db.Tx) error {
			for i, id := range []string{"a", "b", "c", "d", "e"} {
				v := volumeRow(id, t0.Add(time.Duration(i/2)*time.Second))
				v.Deleted = id == "c"
				if _, err := celldb.InsertVolume(ctx, tx, v); err != nil {
					return err
				}
				s := &celldb.VolumeSnapshot{ID: "s" + id, VolumeID: id, Status: "available", Version: 1, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
				if _, err := celldb.InsertVolumeSnapshot(ctx, tx, s); err != nil {
					return err
				}
			}
			return nil
		})
		var seen []string
		at, after := t0, ""
		for {
			page, err := celldb.VolumesChangedAfter(ctx, d, at, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range page {
				seen = append(seen, v.ID)
			}
			if len(page) < 2 {
				break
			}
			at, after = page[1].UpdatedAt, page[1].ID
		}
		if !slices.Equal(seen, []string{"a", "b", "c", "d", "e"}) {
			t.Errorf("pages gave %v, want a to e once each", seen)
		}
		snaps, err := celldb.SnapshotsChangedAfter(ctx, d, t0.Add(3*time.Second), "", 10)
		if err != nil || !slices.Equal(snapIDs(snaps), []string{"sd", "se"}) {
			t.Errorf("snapshots changed from t0+3s: %v %v, want sd se", snapIDs(snaps), err)
		}
	})
}

func snapIDs(ss []*celldb.VolumeSnapshot) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
