package voltypes_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/notfound"
)

// setup migrates a fresh database (twice: a repeat of the migrations
// changes nothing) and returns a store with a clock that advances a
// second per reading, so that creation order is the clock's order.
func setup(t *testing.T, d *db.DB, defaultType string) *voltypes.Store {
	t.Helper()
	ctx := context.Background()
	for range 2 {
		if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
			t.Fatal(err)
		}
		if err := d.Migrate(ctx, voltypes.MigrationSet, voltypes.Migrations); err != nil {
			t.Fatal(err)
		}
	}
	clock := time.Now().Add(time.Hour)
	s, err := voltypes.New(voltypes.Config{DefaultType: defaultType, Now: func() time.Time {
		clock = clock.Add(time.Second)
		return clock
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func inTx(t *testing.T, d *db.DB, f func(tx *db.Tx) error) error {
	t.Helper()
	return d.InTx(context.Background(), f)
}

func create(t *testing.T, d *db.DB, s *voltypes.Store, n voltypes.NewType) *voltypes.Type {
	t.Helper()
	var out *voltypes.Type
	if err := inTx(t, d, func(tx *db.Tx) (err error) {
		out, err = s.Create(context.Background(), tx, n)
		return err
	}); err != nil {
		t.Fatalf("create %s: %v", n.Name, err)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// TestDefaultTypeIsSeededOnce: the migration makes __DEFAULT__ with its
// fixed id, once however often it runs; Default finds it, or the
// configured one, and a configured default that does not exist is
// Cinder's misconfiguration error.
func TestDefaultTypeIsSeededOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := setup(t, d, "")
		all, err := s.List(ctx, d, "p1", nil)
		if err != nil || len(all) != 1 {
			t.Fatalf("types after two migrations: %v, %v", all, err)
		}
		def, err := s.Default(ctx, d)
		if err != nil || def.ID != voltypes.DefaultTypeID || def.Name != "__DEFAULT__" || def.Description != "Default Volume Type" ||
			def.NoDescription || !def.IsPublic || len(def.ExtraSpecs) != 0 || def.ExtraSpecs == nil {
			t.Fatalf("default %+v, %v", def, err)
		}
		gold, _ := voltypes.New(voltypes.Config{DefaultType: "gold"})
		if _, err := gold.Default(ctx, d); !errors.Is(err, voltypes.ErrDefaultMisconfigured) ||
			err.Error() != "The request cannot be fulfilled as the default volume type gold cannot be found." {
			t.Fatalf("missing configured default: %v", err)
		}
		create(t, d, s, voltypes.NewType{Name: "gold", IsPublic: true})
		if def, err := gold.Default(ctx, d); err != nil || def.Name != "gold" {
			t.Fatalf("configured default: %+v, %v", def, err)
		}
	})
}

// TestTypeVisibilityAndLookup: a private type is seen by an admin and by
// the projects with access only; a UUID is an id first and a name then;
// each miss has Cinder's text and matches notfound.Err.
func TestTypeVisibilityAndLookup(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := setup(t, d, "")
		priv := create(t, d, s, voltypes.NewType{Name: "private", Description: ptr("secret"), ExtraSpecs: map[string]string{"a": "1"}, Projects: []string{"p1", "p1"}})
		uuidName := create(t, d, s, voltypes.NewType{Name: "0b4d8c1e-6a79-4c55-9a0e-3f1b2d7e8c90", IsPublic: true})
		for _, tc := range []struct {
			key, project string
			admin        bool
			want         string
			err          string
		}{
			{key: priv.ID, project: "p1", want: "private"},
			{key: "private", project: "p1", want: "private"},
			{key: priv.ID, project: "p2", err: "Volume type " + priv.ID + " could not be found."},
			{key: "private", project: "p2", err: "Volume type with name private could not be found."},
			{key: "private", project: "p2", admin: true, want: "private"},
			{key: uuidName.Name, project: "p2", want: uuidName.Name},
			{key: "2b4d8c1e-6a79-4c55-9a0e-3f1b2d7e8c90", project: "p2", err: "Volume type 2b4d8c1e-6a79-4c55-9a0e-3f1b2d7e8c90 could not be found."},
		} {
			got, err := s.Type(ctx, d, tc.key, tc.project, tc.admin)
			if tc.err != "" {
				if !errors.Is(err, notfound.Err) || !errors.Is(err, voltypes.ErrNotFound) || err.Error() != tc.err {
					t.Errorf("Type(%s, %s): %v, want %q", tc.key, tc.project, err, tc.err)
				}
				continue
			}
			if err != nil || got.Name != tc.want {
				t.Errorf("Type(%s, %s): %+v, %v", tc.key, tc.project, got, err)
			}
		}
		if got, err := s.Type(ctx, d, "private", "p1", false); err != nil || got.Description != "secret" || got.ExtraSpecs["a"] != "1" || got.IsPublic {
			t.Errorf("private type %+v, %v", got, err)
		}
		if ps, err := s.Access(ctx, d, priv.ID); err != nil || len(ps) != 1 || ps[0] != "p1" {
			t.Errorf("access %v, %v", ps, err)
		}
		// Get takes ids only.
		if _, err := s.Get(ctx, d, "private", "", true); !errors.Is(err, voltypes.ErrNotFound) || err.Error() != "Volume type private could not be found." {
			t.Errorf("Get by name: %v", err)
		}
		names := func(isPublic *bool, project string) []string {
			ts, err := s.List(ctx, d, project, isPublic)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, t := range ts {
				out = append(out, t.Name)
			}
			return out
		}
		// Newest first.
		if got := names(nil, ""); len(got) != 3 || got[0] != uuidName.Name || got[1] != "private" || got[2] != "__DEFAULT__" {
			t.Errorf("all types %v", got)
		}
		if got := names(ptr(true), "p1"); len(got) != 3 {
			t.Errorf("public and p1's: %v", got)
		}
		if got := names(ptr(true), "p2"); len(got) != 2 {
			t.Errorf("public and p2's: %v", got)
		}
		if got := names(ptr(false), "p2"); len(got) != 1 || got[0] != "private" {
			t.Errorf("private: %v", got)
		}
	})
}

// TestCreateUpdateDelete: names are unique among live types (a create or
// a rename onto one is ErrExists with Cinder's text); a rename carries
// the type's quota limits along; the delete refuses the default type,
// the only type and a type in use, in Cinder's order, and frees the name.
func TestCreateUpdateDelete(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := setup(t, d, "")
		del := func(id string, inUse bool) error {
			return inTx(t, d, func(tx *db.Tx) error {
				return s.Delete(ctx, tx, id, func(context.Context, db.Querier, string) (bool, error) { return inUse, nil })
			})
		}
		// The default type is refused before the only-type rule.
		if err := del(voltypes.DefaultTypeID, false); !errors.Is(err, voltypes.ErrDefaultDeletion) ||
			err.Error() != "The volume type "+voltypes.DefaultTypeID+" is a default volume type and cannot be deleted." {
			t.Fatalf("delete default: %v", err)
		}
		gold := create(t, d, s, voltypes.NewType{Name: "gold", IsPublic: true})
		if err := inTx(t, d, func(tx *db.Tx) error {
			_, err := s.Create(ctx, tx, voltypes.NewType{Name: "gold"})
			return err
		}); !errors.Is(err, voltypes.ErrExists) || err.Error() != "Volume Type gold already exists." {
			t.Fatalf("second gold: %v", err)
		}
		silver := create(t, d, s, voltypes.NewType{Name: "silver", IsPublic: true})
		if err := inTx(t, d, func(tx *db.Tx) error {
			_, err := s.Update(ctx, tx, silver.ID, voltypes.TypeChange{Name: ptr("gold")})
			return err
		}); !errors.Is(err, voltypes.ErrExists) || err.Error() != "Volume Type gold already exists." {
			t.Fatalf("rename onto gold: %v", err)
		}
		// Limits of gold follow it to its new name.
		if err := inTx(t, d, func(tx *db.Tx) error {
			if err := s.SetLimits(ctx, tx, "p1", map[string]int64{"volumes_gold": 3}); err != nil {
				return err
			}
			return s.SetClassLimits(ctx, tx, voltypes.DefaultQuotaClass, map[string]int64{"gigabytes_gold": 100})
		}); err != nil {
			t.Fatal(err)
		}
		var up *voltypes.Type
		if err := inTx(t, d, func(tx *db.Tx) (err error) {
			up, err = s.Update(ctx, tx, gold.ID, voltypes.TypeChange{Name: ptr("platinum"), Description: ptr(""), IsPublic: ptr(false)})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if up.Name != "platinum" || up.IsPublic || up.NoDescription || up.Description != "" || !up.UpdatedAt.After(gold.UpdatedAt) {
			t.Fatalf("updated %+v (was %+v)", up, gold)
		}
		lim, err := s.Limits(ctx, d, "p1")
		if err != nil || lim["volumes_platinum"] != 3 || lim["gigabytes_platinum"] != 100 || lim["snapshots_platinum"] != -1 {
			t.Fatalf("limits after the rename: %v, %v", lim, err)
		}
		if _, ok := lim["volumes_gold"]; ok {
			t.Fatalf("gold's limit left behind: %v", lim)
		}
		// In use, then free.
		if err := del(gold.ID, true); !errors.Is(err, voltypes.ErrInUse) {
			t.Fatalf("delete in use: %v", err)
		}
		if err := del(gold.ID, false); err != nil {
			t.Fatal(err)
		}
		if err := del(gold.ID, false); !errors.Is(err, notfound.Err) {
			t.Fatalf("second delete: %v", err)
		}
		// The name is free again.
		create(t, d, s, voltypes.NewType{Name: "platinum", IsPublic: true})
		// A default configured to a type that does not exist fails every
		// delete (Cinder's 500), before any other rule.
		missing, _ := voltypes.New(voltypes.Config{DefaultType: "nothing"})
		if err := inTx(t, d, func(tx *db.Tx) error { return missing.Delete(ctx, tx, silver.ID, nil) }); !errors.Is(err, voltypes.ErrDefaultMisconfigured) {
			t.Fatalf("delete with a misconfigured default: %v", err)
		}
		// With silver as the default, __DEFAULT__ may go.
		sv, _ := voltypes.New(voltypes.Config{DefaultType: "silver"})
		if err := inTx(t, d, func(tx *db.Tx) error { return sv.Delete(ctx, tx, voltypes.DefaultTypeID, nil) }); err != nil {
			t.Fatalf("delete __DEFAULT__ when silver is the default: %v", err)
		}
	})
}

// TestCreateIsAllOrNothing: a create whose transaction fails after the
// type's row (a crash halfway) leaves no type, spec or access behind, so
// the repeat succeeds; two concurrent creates of one name make one type,
// the other is ErrExists.
func TestCreateIsAllOrNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := setup(t, d, "")
		crash := errors.New("crash")
		n := voltypes.NewType{ID: "7c0b1f7e-2f43-4bd5-9f6b-5a1d2e3c4b5a", Name: "gold", ExtraSpecs: map[string]string{"a": "1"}, Projects: []string{"p1"}}
		err := inTx(t, d, func(tx *db.Tx) error {
			if _, err := s.Create(ctx, tx, n); err != nil {
				return err
			}
			return crash
		})
		if !errors.Is(err, crash) {
			t.Fatalf("create then crash: %v", err)
		}
		if _, err := s.Type(ctx, d, "gold", "", true); !errors.Is(err, voltypes.ErrNotFound) {
			t.Fatalf("gold after the crash: %v", err)
		}
		for _, table := range []string{"volume_type_extra_specs", "volume_type_projects"} {
			var rows int
			if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM `+table).Scan(&rows); err != nil || rows != 0 {
				t.Fatalf("%s after the crash: %d rows, %v", table, rows, err)
			}
		}
		if got := create(t, d, s, n); got.ID != n.ID || got.ExtraSpecs["a"] != "1" {
			t.Fatalf("the repeat: %+v", got)
		}
		results := make(chan error, 2)
		for range 2 {
			go func() {
				results <- d.InTx(ctx, func(tx *db.Tx) error {
					_, err := s.Create(ctx, tx, voltypes.NewType{Name: "silver", IsPublic: true})
					return err
				})
			}()
		}
		var ok, exists int
		for range 2 {
			switch err := <-results; {
			case err == nil:
				ok++
			case errors.Is(err, voltypes.ErrExists):
				exists++
			default:
				t.Fatalf("concurrent create: %v", err)
			}
		}
		if ok != 1 || exists != 1 {
			t.Fatalf("concurrent creates: %d made, %d refused", ok, exists)
		}
	})
}
