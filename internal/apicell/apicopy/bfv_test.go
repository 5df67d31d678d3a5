package apicopy_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apicopy"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestBuildErrorGivesBackVolumes: a boot from volume that finds no cell
// gives back what its create took: the reserved volume is available again
// (its version unchanged), the copy of the volume the cell was to make is
// deleted (its quota freed: Usage no longer counts it), and a volume a
// cell has taken since (a newer state, or a cell) is left alone. A
// redelivered build error changes nothing more.
func TestBuildErrorGivesBackVolumes(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		for _, m := range []struct {
			set string
			ms  []db.Migration
		}{{"api", apidb.Migrations}, {voldb.MigrationSet, voldb.Migrations}} {
			if err := d.Migrate(ctx, m.set, m.ms); err != nil {
				t.Fatal(err)
			}
		}
		spec := wire.InstanceSpec{UUID: "i1", Name: "bfv", ProjectID: "p", UserID: "u", ReservationID: "r-1", CreatedAt: t0,
			BlockDevices: []wire.BlockDevice{
				{UUID: "b1", SourceType: "volume", DestinationType: "volume", VolumeID: "reserved", BootIndex: 0},
				{UUID: "b2", SourceType: "blank", DestinationType: "volume", VolumeID: "new", New: true, VolumeSize: 2, BootIndex: -1},
				{UUID: "b3", SourceType: "blank", DestinationType: "volume", VolumeID: "made", New: true, VolumeSize: 1, BootIndex: -1},
				{UUID: "b4", SourceType: "volume", DestinationType: "volume", VolumeID: "attaching", BootIndex: -1},
			}}
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := apidb.Create(ctx, tx, []apidb.Instance{{InstanceSpec: spec, FlavorID: "1", VMState: "building", TaskState: "scheduling"}}); err != nil {
				return err
			}
			for _, v := range []struct {
				id, status string
			}{{"reserved", "creating"}, {"new", "creating"}, {"made", "creating"}, {"attaching", "creating"}} {
				if err := voldb.Create(ctx, tx, &voldb.Volume{ID: v.id, ProjectID: "p", UserID: "u", SizeGB: 1, Status: v.status, CreatedAt: t0}); err != nil {
					return err
				}
			}
			// reserved and attaching are volumes of api!c1; made was made by it.
			if _, err := voldb.Apply(ctx, tx, []wire.VolumeState{
				{ID: "reserved", Cell: "api!c1", Version: 3, Status: "available", SizeGB: 1},
				{ID: "attaching", Cell: "api!c1", Version: 3, Status: "attaching", SizeGB: 1},
				{ID: "made", Cell: "api!c1", Version: 1, Status: "available", SizeGB: 1},
			}, nil, t0); err != nil {
				return err
			}
			_, err := voldb.SetStatus(ctx, tx, voldb.StatusChange{ID: "reserved", From: []string{"available"}, To: "reserved", Now: t0})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		h := &apicopy.Handlers{Sender: &recorder{}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }}
		b := &wire.BuildInstances{Instances: []wire.InstanceSpec{spec}}
		for range 2 { // delivered twice
			if err := d.InTx(ctx, func(tx *db.Tx) error { return h.BuildError(ctx, tx, b, "No valid host was found. ") }); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := voldb.Get(ctx, d, "reserved"); err != nil || v.Status != "available" || v.Version != 3 {
			t.Errorf("the reserved volume after the build error: %+v %v, want available at version 3", v, err)
		}
		if v, err := voldb.GetAny(ctx, d, "new"); err != nil || !v.Deleted {
			t.Errorf("the new volume's copy after the build error: %+v %v, want deleted", v, err)
		}
		if v, err := voldb.Get(ctx, d, "made"); err != nil || v.Status != "available" {
			t.Errorf("a volume its cell made was touched: %+v %v", v, err)
		}
		if v, err := voldb.Get(ctx, d, "attaching"); err != nil || v.Status != "attaching" {
			t.Errorf("a volume its cell took was touched: %+v %v", v, err)
		}
		use, err := voldb.Usage(ctx, d, "p")
		if err != nil || use["volumes"] != 3 || use["gigabytes"] != 3 {
			t.Errorf("usage after the give-back: %v %v, want 3 volumes of 3 GiB", use, err)
		}
		if in, err := apidb.Get(ctx, d, "i1"); err != nil || in.VMState != "error" {
			t.Errorf("instance after the build error: %+v %v", in, err)
		}
	})
}
