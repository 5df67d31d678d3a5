package apidb_test

import (
	"context"
	"reflect"
	"testing"

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
