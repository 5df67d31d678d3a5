package apidb_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// TestLimitsForAgreesWithEffectiveLimits: the one-query read gives what
// EffectiveLimits gives for the project and, when the user has limits of
// their own, for the user; nil for a user without.
func TestLimitsForAgreesWithEffectiveLimits(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		defaults := quota.NovaDefaults()
		check := func(what, project, user string, wantUser bool) {
			t.Helper()
			gotP, gotU, err := apidb.LimitsFor(ctx, d, defaults, project, user)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			wantP, err := apidb.EffectiveLimits(ctx, d, defaults, project, "")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotP, wantP) {
				t.Errorf("%s: project limits %v, want %v", what, gotP, wantP)
			}
			if !wantUser {
				if gotU != nil {
					t.Errorf("%s: user limits %v, want none", what, gotU)
				}
				return
			}
			wantU, err := apidb.EffectiveLimits(ctx, d, defaults, project, user)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotU, wantU) {
				t.Errorf("%s: user limits %v, want %v", what, gotU, wantU)
			}
		}
		set := func(f func(tx *db.Tx) error) {
			t.Helper()
			if err := d.InTx(ctx, f); err != nil {
				t.Fatal(err)
			}
		}

		check("defaults only", "p1", "u1", false)
		set(func(tx *db.Tx) error {
			return apidb.SetClassLimits(ctx, tx, apidb.DefaultQuotaClass, quota.Limits{quota.Instances: 50, quota.Cores: 100})
		})
		check("with the default class", "p1", "u1", false)
		set(func(tx *db.Tx) error {
			return apidb.SetLimits(ctx, tx, "p1", "", quota.Limits{quota.Instances: 7, quota.RAM: -1})
		})
		set(func(tx *db.Tx) error { return apidb.SetLimits(ctx, tx, "p2", "", quota.Limits{quota.Instances: 1}) })
		check("with the project's", "p1", "u1", false)
		set(func(tx *db.Tx) error { return apidb.SetLimits(ctx, tx, "p1", "u1", quota.Limits{quota.Instances: 3}) })
		set(func(tx *db.Tx) error { return apidb.SetLimits(ctx, tx, "p2", "u2", quota.Limits{quota.Cores: 2}) })
		check("with the user's own", "p1", "u1", true)
		check("another user of the project", "p1", "u2", false)
		check("a user with limits in another project only", "p3", "u2", false)
	})
}

// TestMigration10BackfillsCountedFlavorColumns: an instance written before
// the counted flavor columns existed (vcpus and memory_mb 0) counts its
// flavor once migration 10 has run; a deleted one is left alone.
func TestMigration10BackfillsCountedFlavorColumns(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations[:9]); err != nil {
			t.Fatalf("migrate to 9: %v", err)
		}
		t0 := time.Unix(1_700_000_000, 0).UTC()
		// Written as a release of schema 9 wrote them (apidb.Create now
		// writes columns of later migrations).
		for _, u := range []string{"old", "gone"} {
			in := instance(u, "p1", t0)
			flavor, _ := json.Marshal(in.Flavor)
			if _, err := d.Exec(ctx, `INSERT INTO instances (uuid, name, project_id, user_id, image_ref, flavor_id, flavor, key_name, user_data,
				metadata, availability_zone, reservation_id, launch_index, vm_state, task_state, request_id, created_at, updated_at, vcpus, memory_mb)
				VALUES (?, ?, ?, ?, ?, ?, ?, '', '', '{}', '', ?, 0, ?, ?, '', ?, ?, 0, 0)`,
				in.UUID, in.Name, in.ProjectID, in.UserID, in.ImageRef, in.FlavorID, string(flavor), in.ReservationID,
				in.VMState, in.TaskState, db.Micros(t0), db.Micros(t0)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d.Exec(ctx, `UPDATE instances SET vcpus = 0, memory_mb = 0`); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, `UPDATE instances SET deleted = 1 WHERE uuid = 'gone'`); err != nil {
			t.Fatal(err)
		}
		migrated(t, d)
		f := apidb.DefaultFlavors[0]
		for uuid, want := range map[string][2]int64{"old": {int64(f.VCPUs), f.RAMMB}, "gone": {0, 0}} {
			var vcpus, mem int64
			if err := d.QueryRow(ctx, `SELECT vcpus, memory_mb FROM instances WHERE uuid = ?`, uuid).Scan(&vcpus, &mem); err != nil {
				t.Fatal(err)
			}
			if vcpus != want[0] || mem != want[1] {
				t.Errorf("%s: vcpus %d, memory_mb %d, want %v", uuid, vcpus, mem, want)
			}
		}
	})
}
