package voltypes_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// TestLimits: a project's limits are its own, else the default class's
// (seeded with Cinder's defaults), else unlimited for a type's resources;
// every live type has its three resources; a bad key is refused with
// Cinder's text and writes nothing; DeleteLimits brings the defaults
// back, and a repeat of it is no error.
func TestLimits(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := setup(t, d, "")
		want := map[string]int64{"volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10, "backup_gigabytes": 1000,
			"groups": 10, "per_volume_gigabytes": -1, "volumes___DEFAULT__": -1, "gigabytes___DEFAULT__": -1, "snapshots___DEFAULT__": -1}
		lim, err := s.Limits(ctx, d, "p1")
		if err != nil || !maps.Equal(lim, want) {
			t.Fatalf("fresh limits %v, %v", lim, err)
		}
		create(t, d, s, voltypes.NewType{Name: "gold", IsPublic: true})
		set := func(f func(tx *db.Tx) error) error { return inTx(t, d, f) }
		if err := set(func(tx *db.Tx) error {
			return s.SetLimits(ctx, tx, "p1", map[string]int64{"volumes": 5, "gigabytes_gold": 50})
		}); err != nil {
			t.Fatal(err)
		}
		if err := set(func(tx *db.Tx) error {
			return s.SetClassLimits(ctx, tx, voltypes.DefaultQuotaClass, map[string]int64{"snapshots": 7, "volumes": 20})
		}); err != nil {
			t.Fatal(err)
		}
		maps.Copy(want, map[string]int64{"volumes": 5, "snapshots": 7, "gigabytes_gold": 50, "volumes_gold": -1, "snapshots_gold": -1})
		if lim, err := s.Limits(ctx, d, "p1"); err != nil || !maps.Equal(lim, want) {
			t.Fatalf("limits %v, %v; want %v", lim, err, want)
		}
		if own, err := s.ProjectLimits(ctx, d, "p1"); err != nil || len(own) != 2 || own["volumes"] != 5 {
			t.Fatalf("own limits %v, %v", own, err)
		}
		if other, err := s.Limits(ctx, d, "p2"); err != nil || other["volumes"] != 20 || other["snapshots"] != 7 {
			t.Fatalf("p2's limits %v, %v", other, err)
		}
		err = set(func(tx *db.Tx) error {
			return s.SetLimits(ctx, tx, "p1", map[string]int64{"volumes": 1, "cores": 3, "bogus": 1})
		})
		if !errors.Is(err, voltypes.ErrBadKeys) || err.Error() != "Invalid input received: Bad key(s) in quota set: bogus, cores" {
			t.Fatalf("bad keys: %v", err)
		}
		err = set(func(tx *db.Tx) error {
			return s.SetClassLimits(ctx, tx, "default", map[string]int64{"cores": 3})
		})
		if !errors.Is(err, voltypes.ErrBadKeys) || err.Error() != "Invalid input received: Bad key(s) in quota class set: cores" {
			t.Fatalf("bad class keys: %v", err)
		}
		if lim, _ := s.Limits(ctx, d, "p1"); lim["volumes"] != 5 {
			t.Fatalf("a refused set changed volumes: %v", lim)
		}
		// Another class falls back to the default class.
		if cl, err := s.ClassLimits(ctx, d, "gold-class"); err != nil || cl["volumes"] != 20 || cl["groups"] != 10 {
			t.Fatalf("other class %v, %v", cl, err)
		}
		for range 2 {
			if err := set(func(tx *db.Tx) error { return s.DeleteLimits(ctx, tx, "p1") }); err != nil {
				t.Fatal(err)
			}
		}
		if lim, _ := s.Limits(ctx, d, "p1"); lim["volumes"] != 20 || lim["gigabytes_gold"] != -1 {
			t.Fatalf("limits after delete %v", lim)
		}
		// The project lock is taken in a transaction (a repeat too).
		if err := set(func(tx *db.Tx) error {
			if err := voltypes.LockQuota(ctx, tx, "p1"); err != nil {
				return err
			}
			return voltypes.LockQuota(ctx, tx, "p1")
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSpecsAndAccess: extra specs are set (created or replaced) and
// deleted one key at a time with Cinder's not-found text; access is
// given and taken on private types only, each repeat refused with
// Cinder's text.
func TestSpecsAndAccess(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := setup(t, d, "")
		priv := create(t, d, s, voltypes.NewType{Name: "private", ExtraSpecs: map[string]string{"a": "1", "b": "2"}})
		run := func(f func(tx *db.Tx) error) error { return inTx(t, d, f) }
		if err := run(func(tx *db.Tx) error { return s.SetSpecs(ctx, tx, priv.ID, map[string]string{"b": "3", "c": "4"}) }); err != nil {
			t.Fatal(err)
		}
		if sp, err := s.Specs(ctx, d, priv.ID); err != nil || !maps.Equal(sp, map[string]string{"a": "1", "b": "3", "c": "4"}) {
			t.Fatalf("specs %v, %v", sp, err)
		}
		if err := run(func(tx *db.Tx) error { return s.DeleteSpec(ctx, tx, priv.ID, "a") }); err != nil {
			t.Fatal(err)
		}
		err := run(func(tx *db.Tx) error { return s.DeleteSpec(ctx, tx, priv.ID, "a") })
		if !errors.Is(err, voltypes.ErrSpecNotFound) || err.Error() != "Volume Type "+priv.ID+" has no extra specs with key a." {
			t.Fatalf("second delete of a: %v", err)
		}
		if err := run(func(tx *db.Tx) error { return s.SetSpecs(ctx, tx, "nope", map[string]string{"x": "y"}) }); !errors.Is(err, voltypes.ErrNotFound) {
			t.Fatalf("specs of a missing type: %v", err)
		}
		if err := run(func(tx *db.Tx) error { return s.AddAccess(ctx, tx, priv.ID, "p1") }); err != nil {
			t.Fatal(err)
		}
		err = run(func(tx *db.Tx) error { return s.AddAccess(ctx, tx, priv.ID, "p1") })
		if !errors.Is(err, voltypes.ErrAccessExists) || err.Error() != "Volume type access for "+priv.ID+" / p1 combination already exists." {
			t.Fatalf("second add: %v", err)
		}
		if err := run(func(tx *db.Tx) error { return s.RemoveAccess(ctx, tx, priv.ID, "p1") }); err != nil {
			t.Fatal(err)
		}
		err = run(func(tx *db.Tx) error { return s.RemoveAccess(ctx, tx, priv.ID, "p1") })
		if !errors.Is(err, voltypes.ErrAccessNotFound) || err.Error() != "Volume type access not found for "+priv.ID+" / p1 combination." {
			t.Fatalf("second remove: %v", err)
		}
		err = run(func(tx *db.Tx) error { return s.AddAccess(ctx, tx, voltypes.DefaultTypeID, "p1") })
		if !errors.Is(err, voltypes.ErrPublicAccess) || err.Error() != "Invalid volume type: Type access modification is not applicable to public volume type." {
			t.Fatalf("access to a public type: %v", err)
		}
		if ps, err := s.Access(ctx, d, priv.ID); err != nil || len(ps) != 0 {
			t.Fatalf("access %v, %v", ps, err)
		}
	})
}
