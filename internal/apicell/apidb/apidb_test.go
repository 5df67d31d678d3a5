package apidb_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func migrated(t *testing.T, d *db.DB) {
	t.Helper()
	if err := d.Migrate(context.Background(), "api", apidb.Migrations); err != nil {
		t.Fatalf("migrate: %v", err)
	}
}

func instance(uuid, project string, created time.Time) apidb.Instance {
	return apidb.Instance{
		InstanceSpec: wire.InstanceSpec{UUID: uuid, Name: "vm-" + uuid, ProjectID: project, UserID: "u1", ImageRef: "img",
			ReservationID: "r-" + uuid, CreatedAt: created},
		FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "building", TaskState: "scheduling",
	}
}

func create(t *testing.T, d *db.DB, insts ...apidb.Instance) {
	t.Helper()
	ctx := context.Background()
	if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.Create(ctx, tx, insts) }); err != nil {
		t.Fatalf("create: %v", err)
	}
}

func apply(t *testing.T, d *db.DB, st wire.InstanceState, now time.Time) apidb.Applied {
	t.Helper()
	ctx := context.Background()
	var a apidb.Applied
	if err := d.InTx(ctx, func(tx *db.Tx) (err error) {
		a, err = apidb.ApplyUpdate(ctx, tx, st, now)
		return err
	}); err != nil {
		t.Fatalf("apply %+v: %v", st, err)
	}
	return a
}

func get(t *testing.T, d *db.DB, uuid string) *apidb.Instance {
	t.Helper()
	in, err := apidb.Get(context.Background(), d, uuid)
	if err != nil {
		t.Fatalf("get %s: %v", uuid, err)
	}
	return in
}

func TestApplyUpdateVersionOrder(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		const u = "11111111-0000-0000-0000-000000000001"
		create(t, d, instance(u, "p1", t0))
		if in := get(t, d, u); in.Version != 0 || in.Cell != "" || in.VMState != "building" {
			t.Fatalf("new copy = version %d cell %q state %q; want 0, \"\", building", in.Version, in.Cell, in.VMState)
		}

		st := func(v int64, cell, vm, task string) wire.InstanceState {
			return wire.InstanceState{UUID: u, Cell: cell, Version: v, Host: cell + "-h1", Node: cell + "-h1", VMState: vm, TaskState: task,
				UpdatedAt: t0.Add(time.Duration(v) * time.Second)}
		}
		type step struct {
			name          string
			st            wire.InstanceState
			changed       bool
			moved         bool
			wantVersion   int64
			wantCell      string
			wantVMState   string
			wantTaskState string
		}
		steps := []step{
			{"first report places it in a cell", st(1, "api!c1", "building", "spawning"), true, true, 1, "api!c1", "building", "spawning"},
			{"newer in the same cell", st(3, "api!c1", "active", ""), true, false, 3, "api!c1", "active", ""},
			{"older arrives late: ignored", st(2, "api!c1", "building", "networking"), false, false, 3, "api!c1", "active", ""},
			{"repeat of the current version: ignored", st(3, "api!c1", "error", ""), false, false, 3, "api!c1", "active", ""},
			{"newer from another cell: moved", st(5, "api!c2", "active", ""), true, true, 5, "api!c2", "active", ""},
			{"late update from the old cell: ignored", st(4, "api!c1", "active", "deleting"), false, false, 5, "api!c2", "active", ""},
		}
		for i, s := range steps {
			now := t0.Add(time.Duration(i+1) * time.Minute)
			a := apply(t, d, s.st, now)
			if a.Changed != s.changed || a.Moved != s.moved {
				t.Errorf("%s: Changed=%v Moved=%v, want %v %v", s.name, a.Changed, a.Moved, s.changed, s.moved)
			}
			if a.Deleted || a.DeleteRequested {
				t.Errorf("%s: Deleted=%v DeleteRequested=%v, want neither", s.name, a.Deleted, a.DeleteRequested)
			}
			if in := get(t, d, u); in.Version != s.wantVersion || in.Cell != s.wantCell || in.VMState != s.wantVMState || in.TaskState != s.wantTaskState {
				t.Errorf("%s: copy = version %d cell %q vm %q task %q; want %d %q %q %q", s.name,
					in.Version, in.Cell, in.VMState, in.TaskState, s.wantVersion, s.wantCell, s.wantVMState, s.wantTaskState)
			}
		}

		// Addresses and fault travel with an update.
		a := apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c2", Version: 6, VMState: "error",
			Addresses: []wire.Address{{Network: "private", Addr: "10.0.0.2", Version: 4}},
			Fault:     &wire.Fault{Code: 500, Message: "boom"}}, t0.Add(time.Hour))
		in := get(t, d, u)
		if !a.Changed || len(in.Addresses) != 1 || in.Addresses[0].Addr != "10.0.0.2" || in.Fault == nil || in.Fault.Message != "boom" {
			t.Errorf("update with addresses and fault: changed %v, copy addresses %+v fault %+v", a.Changed, in.Addresses, in.Fault)
		}
		if !in.UpdatedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("updated_at = %v, want the apply time %v", in.UpdatedAt, t0.Add(time.Hour))
		}

		// An update for an instance the API cell does not have is a no-op.
		a = apply(t, d, wire.InstanceState{UUID: "unknown", Cell: "api!c1", Version: 9, VMState: "active"}, t0)
		if !reflect.DeepEqual(a, apidb.Applied{}) {
			t.Errorf("update of an unknown instance = %+v, want nothing", a)
		}
		if _, err := apidb.Get(ctx, d, "unknown"); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
		}
	})
}

func TestApplyUpdateDeletionIsAlwaysAppliedAndFinal(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		const u = "22222222-0000-0000-0000-000000000001"
		create(t, d, instance(u, "p1", t0))
		apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c1", Version: 5, VMState: "active"}, t0)

		// A deletion older than the copy is still applied.
		delAt := t0.Add(time.Minute)
		a := apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c1", Version: 2, VMState: "deleted", Deleted: true}, delAt)
		if !a.Changed || !a.Deleted {
			t.Fatalf("older deletion: Changed=%v Deleted=%v, want both true", a.Changed, a.Deleted)
		}
		in := get(t, d, u)
		if !in.Deleted || in.VMState != "deleted" || !in.DeletedAt.Equal(delAt) {
			t.Errorf("after deletion: deleted %v vm %q deleted_at %v; want true, deleted, %v", in.Deleted, in.VMState, in.DeletedAt, delAt)
		}
		if in.Version != 5 {
			t.Errorf("after an older deletion version = %d, want 5 (never goes back)", in.Version)
		}

		// Nothing brings it back: not a newer live update, not a repeat.
		for _, st := range []wire.InstanceState{
			{UUID: u, Cell: "api!c1", Version: 9, VMState: "active"},
			{UUID: u, Cell: "api!c2", Version: 10, VMState: "active"},
			{UUID: u, Cell: "api!c1", Version: 11, VMState: "deleted", Deleted: true},
		} {
			a := apply(t, d, st, t0.Add(time.Hour))
			if a.Changed || a.Moved {
				t.Errorf("update %+v after deletion: Changed=%v Moved=%v, want false", st, a.Changed, a.Moved)
			}
			in := get(t, d, u)
			if !in.Deleted || in.VMState != "deleted" || in.Cell != "api!c1" || in.Version != 5 || !in.DeletedAt.Equal(delAt) {
				t.Errorf("update %+v resurrected or changed the deleted copy: %+v", st, in)
			}
		}

		// A deleted instance is listed only when deleted ones are asked for.
		live, err := apidb.List(ctx, d, apidb.ListOptions{})
		if err != nil || len(live) != 0 {
			t.Errorf("List = %d instances, %v; want none", len(live), err)
		}
		all, err := apidb.List(ctx, d, apidb.ListOptions{IncludeDeleted: true})
		if err != nil || len(all) != 1 || all[0].UUID != u {
			t.Errorf("List(IncludeDeleted) = %d instances, %v; want the deleted one", len(all), err)
		}
	})
}

func TestListPagination(t *testing.T) {
	for _, sameTime := range []bool{false, true} {
		name := "distinct created_at"
		if sameTime {
			name = "equal created_at"
		}
		t.Run(name, func(t *testing.T) {
			dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
				ctx := context.Background()
				migrated(t, d)
				const total = 25
				var insts []apidb.Instance
				for i := range total {
					created := t0.Add(time.Duration(i) * time.Second)
					if sameTime {
						created = t0
					}
					// UUIDs not in creation order, so the order really comes from created_at.
					u := fmt.Sprintf("%08x-0000-0000-0000-%012d", (i*7919)%101, i)
					insts = append(insts, instance(u, fmt.Sprintf("p%d", i%3), created))
				}
				// Created in several transactions, out of order.
				create(t, d, insts[10:]...)
				create(t, d, insts[:10]...)

				var walked []*apidb.Instance
				marker := ""
				for pages := 0; ; pages++ {
					if pages > total {
						t.Fatal("paging does not end")
					}
					page, err := apidb.List(ctx, d, apidb.ListOptions{Limit: 7, Marker: marker})
					if err != nil {
						t.Fatalf("List(marker %q): %v", marker, err)
					}
					if len(page) > 7 {
						t.Fatalf("page of %d, limit 7", len(page))
					}
					walked = append(walked, page...)
					if len(page) < 7 {
						break
					}
					marker = page[len(page)-1].UUID
				}
				if len(walked) != total {
					t.Fatalf("walked %d instances, want %d", len(walked), total)
				}
				seen := map[string]bool{}
				for i, in := range walked {
					if seen[in.UUID] {
						t.Errorf("%s listed twice", in.UUID)
					}
					seen[in.UUID] = true
					if i == 0 {
						continue
					}
					prev := walked[i-1]
					if in.CreatedAt.After(prev.CreatedAt) || (in.CreatedAt.Equal(prev.CreatedAt) && in.UUID > prev.UUID) {
						t.Errorf("not newest first at %d: %s (%v) after %s (%v)", i, in.UUID, in.CreatedAt, prev.UUID, prev.CreatedAt)
					}
				}
				if !sameTime && walked[0].UUID != insts[total-1].UUID {
					t.Errorf("first listed %s, want the newest %s", walked[0].UUID, insts[total-1].UUID)
				}

				// The whole list in one go is the same order.
				all, err := apidb.List(ctx, d, apidb.ListOptions{})
				if err != nil || len(all) != total {
					t.Fatalf("List() = %d, %v", len(all), err)
				}
				for i := range all {
					if all[i].UUID != walked[i].UUID {
						t.Fatalf("unpaged order differs at %d: %s vs %s", i, all[i].UUID, walked[i].UUID)
					}
				}

				// The last instance as marker gives an empty page.
				page, err := apidb.List(ctx, d, apidb.ListOptions{Limit: 7, Marker: walked[total-1].UUID})
				if err != nil || len(page) != 0 {
					t.Errorf("page after the last = %d, %v; want empty", len(page), err)
				}

				// A marker that does not exist is ErrNotFound.
				_, err = apidb.List(ctx, d, apidb.ListOptions{Limit: 7, Marker: "no-such-instance"})
				if !errors.Is(err, apidb.ErrNotFound) {
					t.Errorf("List(unknown marker) = %v, want ErrNotFound", err)
				}

				// ProjectID filters, and pages within the project.
				var p1 []string
				marker = ""
				for {
					page, err := apidb.List(ctx, d, apidb.ListOptions{ProjectID: "p1", Limit: 3, Marker: marker})
					if err != nil {
						t.Fatal(err)
					}
					for _, in := range page {
						if in.ProjectID != "p1" {
							t.Errorf("project filter p1 listed %s of %s", in.UUID, in.ProjectID)
						}
						p1 = append(p1, in.UUID)
					}
					if len(page) < 3 {
						break
					}
					marker = page[len(page)-1].UUID
				}
				var want []string
				for _, in := range walked {
					if in.ProjectID == "p1" {
						want = append(want, in.UUID)
					}
				}
				if fmt.Sprint(p1) != fmt.Sprint(want) {
					t.Errorf("project p1 paged = %v, want %v", p1, want)
				}
				if none, err := apidb.List(ctx, d, apidb.ListOptions{ProjectID: "nobody"}); err != nil || len(none) != 0 {
					t.Errorf("List(project nobody) = %d, %v; want none", len(none), err)
				}
			})
		})
	}
}

func TestFlavors(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		for range 3 {
			if err := apidb.SeedFlavors(ctx, d); err != nil {
				t.Fatalf("SeedFlavors: %v", err)
			}
		}
		fs, err := apidb.ListFlavors(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != len(apidb.DefaultFlavors) {
			t.Fatalf("ListFlavors after seeding three times = %d flavors, want %d", len(fs), len(apidb.DefaultFlavors))
		}
		for i, f := range fs {
			w := apidb.DefaultFlavors[i]
			if f.ID != w.ID || f.Name != w.Name || f.VCPUs != w.VCPUs || f.RAMMB != w.RAMMB || f.RootGB != w.RootGB {
				t.Errorf("flavor %d = %+v, want %+v", i, f, w)
			}
		}
		f, err := apidb.GetFlavor(ctx, d, "3")
		if err != nil || f.Name != "m1.medium" || f.VCPUs != 2 || f.RAMMB != 4096 {
			t.Errorf("GetFlavor(3) = %+v, %v; want m1.medium", f, err)
		}
		if _, err := apidb.GetFlavor(ctx, d, "999"); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("GetFlavor(999) = %v, want ErrNotFound", err)
		}

		// An operator's own flavor survives reseeding, and so does a changed default.
		custom := wire.Flavor{ID: "42", Name: "custom", VCPUs: 3, RAMMB: 3000, RootGB: 30, ExtraSpecs: map[string]string{"hw:cpu_policy": "dedicated"}}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.CreateFlavor(ctx, tx, custom) }); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, `UPDATE flavors SET ram_mb = 600 WHERE id = '1'`); err != nil {
			t.Fatal(err)
		}
		if err := apidb.SeedFlavors(ctx, d); err != nil {
			t.Fatal(err)
		}
		if fs, _ := apidb.ListFlavors(ctx, d); len(fs) != len(apidb.DefaultFlavors)+1 {
			t.Errorf("after a custom flavor and reseeding: %d flavors, want %d", len(fs), len(apidb.DefaultFlavors)+1)
		}
		if f, _ := apidb.GetFlavor(ctx, d, "1"); f.RAMMB != 600 {
			t.Errorf("reseeding overwrote flavor 1: ram %d, want 600", f.RAMMB)
		}
		got, err := apidb.GetFlavor(ctx, d, "42")
		if err != nil || got.Name != "custom" || got.ExtraSpecs["hw:cpu_policy"] != "dedicated" {
			t.Errorf("GetFlavor(42) = %+v, %v", got, err)
		}
		// A disabled flavor is not found.
		if _, err := d.Exec(ctx, `UPDATE flavors SET disabled = 1 WHERE id = '42'`); err != nil {
			t.Fatal(err)
		}
		if _, err := apidb.GetFlavor(ctx, d, "42"); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("GetFlavor(disabled) = %v, want ErrNotFound", err)
		}
	})
}

// TestApplyUpdateFenced: a build placed again in another cell after its
// first cell did not take it in time has its copy at a version fenced above
// every version the first cell can use. What that cell sends later, if it
// built the instance after all, loses: a live state is reported Stale (the
// API cell then tells it to delete the instance), and its deletion is not
// applied (the instance lives on in the cell the copy names). States from
// the copy's cell are never stale; live states the copy leaves alone from
// any other cell are, a cell below the copy's too.
func TestApplyUpdateFenced(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		const u = "22222222-0000-0000-0000-000000000002"
		const fenced = 1<<32 + 1
		create(t, d, instance(u, "p1", t0))
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, _, err := apidb.RecordPlaced(ctx, tx, []string{u}, "api!c1", 1, t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, _, err := apidb.RecordPlaced(ctx, tx, []string{u}, "api!c2", fenced, t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			st    wire.InstanceState
			stale bool
		}{
			{wire.InstanceState{UUID: u, Cell: "api!c1", Version: 4, VMState: "active"}, true},
			{wire.InstanceState{UUID: u, Cell: "api!c1!x", Version: 4, VMState: "active"}, true},
			{wire.InstanceState{UUID: u, Cell: "api!c1", Version: 6, VMState: "deleted", Deleted: true}, false},
			{wire.InstanceState{UUID: u, Cell: "api!c2", Version: 1, VMState: "building"}, false},
			// Below the copy's cell: a routing cell's child that built it
			// too (r1 placed the build on its own hosts, fenced).
			{wire.InstanceState{UUID: u, Cell: "api!c2!x", Version: 1, VMState: "building"}, true},
		} {
			a := apply(t, d, c.st, t0.Add(time.Minute))
			if a.Changed || a.Stale != c.stale {
				t.Errorf("%+v: Changed=%v Stale=%v, want false %v", c.st, a.Changed, a.Stale, c.stale)
			}
			if in := get(t, d, u); in.Deleted || in.Cell != "api!c2" || in.Version != fenced || in.VMState != "building" {
				t.Errorf("after %+v the copy is %s v%d %s deleted=%v; want api!c2 v%d building", c.st, in.Cell, in.Version, in.VMState, in.Deleted, int64(fenced))
			}
		}
		// The new cell goes on from the fenced version; its deletion is final.
		apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c2", Version: fenced + 2, VMState: "active"}, t0)
		if a := apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c2", Version: fenced + 3, VMState: "deleted", Deleted: true}, t0); !a.Changed || !a.Deleted {
			t.Errorf("deletion in the new cell: %+v", a)
		}
		// Once deleted, a live state from another cell is stale.
		if a := apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c1", Version: 5, VMState: "active"}, t0); a.Changed || !a.Stale {
			t.Errorf("a live state from the old cell after deletion: %+v, want stale", a)
		}
		if a := apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c2", Version: 5, VMState: "active"}, t0); a.Changed || a.Stale {
			t.Errorf("a late state of the deleting cell: %+v, want neither changed nor stale", a)
		}
	})
}

// TestSetErrorFencesTheVersion: a build that found no cell, after it was
// moved from a cell that did not take it, is in ERROR at its base version,
// so states from that cell are stale.
func TestSetErrorFencesTheVersion(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		const u = "22222222-0000-0000-0000-000000000003"
		create(t, d, instance(u, "p1", t0))
		apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c1", Version: 3, VMState: "building"}, t0)
		for _, v := range []int64{1, 1 << 32} { // an older base leaves the version alone
			if err := d.InTx(ctx, func(tx *db.Tx) error {
				return apidb.SetError(ctx, tx, u, wire.Fault{Code: 500, Message: "No valid host"}, v, t0)
			}); err != nil {
				t.Fatal(err)
			}
			if in := get(t, d, u); in.VMState != "error" || in.Cell != "" || in.Version != max(3, v) {
				t.Errorf("SetError at %d: %s v%d cell %q, want error v%d no cell", v, in.VMState, in.Version, in.Cell, max(3, v))
			}
		}
		if a := apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c1", Version: 9, VMState: "active"}, t0); a.Changed || !a.Stale {
			t.Errorf("a state from the old cell after the fenced error: %+v, want stale", a)
		}
	})
}

// TestCurrentAgreesWithApplyUpdate: the heal's quick check says "current"
// exactly for the states ApplyUpdate would leave alone, over more states
// than one of its queries reads.
func TestCurrentAgreesWithApplyUpdate(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		var states []wire.InstanceState
		for i := range 250 {
			u := fmt.Sprintf("33333333-0000-0000-0000-%012d", i)
			if i%5 == 4 {
				// Never created here.
				states = append(states, wire.InstanceState{UUID: u, Cell: "api!c1", Version: 3, VMState: "active"})
				continue
			}
			create(t, d, instance(u, "p1", t0))
			apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c1", Version: 5, VMState: "active"}, t0)
			if i%5 == 3 {
				apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c1", Version: 6, VMState: "deleted", Deleted: true}, t0)
			}
			st := wire.InstanceState{UUID: u, Cell: "api!c1", Version: int64(4 + i%3), VMState: "active"} // older, same, newer
			if i%7 == 0 {
				st.Deleted, st.VMState = true, "deleted"
			}
			// From the copy's cell, a cell below it, an unrelated one.
			st.Cell = []string{"api!c1", "api!c1!x", "api!c2"}[i%11%3]
			states = append(states, st)
		}
		var cur map[string]apidb.Standing
		if err := d.InTx(ctx, func(tx *db.Tx) (err error) {
			cur, err = apidb.Current(ctx, tx, states)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		stale := 0
		for _, st := range states {
			a := apply(t, d, st, t0.Add(time.Hour))
			if (cur[st.UUID] == apidb.Newer) != a.Changed || (cur[st.UUID] == apidb.StaleCell) != a.Stale {
				t.Errorf("%+v: Current says %v, but ApplyUpdate changed it: %v, stale: %v", st, cur[st.UUID], a.Changed, a.Stale)
			}
			if a.Stale {
				stale++
			}
		}
		if stale == 0 {
			t.Errorf("no state was stale: the test does not cover StaleCell")
		}
	})
}

// TestApplyUpdateFlavorImageAndPendingDelete: an update without a flavor or
// an image keeps the copy's (and what it counts for quota); one with them
// (a resize, a rebuild) replaces them; a delete asked for is reported.
func TestApplyUpdateFlavorImageAndPendingDelete(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		const u = "33333333-0000-0000-0000-000000000001"
		create(t, d, instance(u, "p1", t0))
		small := apidb.DefaultFlavors[0]
		usage := func() (int64, int64) {
			t.Helper()
			l, err := apidb.Usage(ctx, d, "p1", "")
			if err != nil {
				t.Fatal(err)
			}
			return l[quota.Cores], l[quota.RAM]
		}

		apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c1", Version: 1, VMState: "active"}, t0)
		in := get(t, d, u)
		if in.FlavorID != small.ID || in.Flavor.Name != small.Name || in.Flavor.VCPUs != small.VCPUs || in.ImageRef != "img" {
			t.Errorf("after an update without flavor or image: flavor %q %+v image %q; want %q %+v img", in.FlavorID, in.Flavor, in.ImageRef, small.ID, small)
		}
		if cores, ram := usage(); cores != int64(small.VCPUs) || ram != small.RAMMB {
			t.Errorf("usage %d cores %d MB, want the flavor's %d %d", cores, ram, small.VCPUs, small.RAMMB)
		}

		big := wire.Flavor{ID: "big", Name: "big", VCPUs: 8, RAMMB: 16384, RootGB: 80}
		apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c1", Version: 2, VMState: "active", Flavor: &big, ImageRef: "img2"}, t0)
		in = get(t, d, u)
		if in.FlavorID != "big" || in.Flavor.Name != "big" || in.Flavor.VCPUs != 8 || in.Flavor.RootGB != 80 || in.ImageRef != "img2" {
			t.Errorf("after a resize and rebuild: flavor %q %+v image %q; want big, img2", in.FlavorID, in.Flavor, in.ImageRef)
		}
		if cores, ram := usage(); cores != 8 || ram != 16384 {
			t.Errorf("usage after the resize: %d cores %d MB, want 8 16384", cores, ram)
		}

		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.MarkDeleting(ctx, tx, u, t0) }); err != nil {
			t.Fatal(err)
		}
		if a := apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c2", Version: 3, VMState: "active"}, t0); !a.Changed || !a.Moved || !a.DeleteRequested || a.Deleted {
			t.Errorf("update of an instance being deleted: %+v, want changed, moved, delete requested", a)
		}
		if a := apply(t, d, wire.InstanceState{UUID: u, Cell: "api!c2", Version: 3, VMState: "active"}, t0); a.Changed || !a.DeleteRequested {
			t.Errorf("repeat: %+v, want unchanged with the delete requested", a)
		}
	})
}

// TestRecordPlacedIsTheAcceptedStateApplied: RecordPlaced leaves a copy as
// ApplyUpdate of the state a cell sends on accepting a build would, for
// several instances at once, and leaves newer and deleted copies alone;
// but a first placement (of a copy at version 0) keeps its updated_at, the
// creation time, so that no indexed column changes and PostgreSQL can
// update the row in place, while a later one (a build placed again) moves
// it.
func TestRecordPlacedIsTheAcceptedStateApplied(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		u := func(i int) string { return fmt.Sprintf("55555555-0000-0000-0000-%012d", i) }
		for i := range 5 {
			create(t, d, instance(u(i), "p1", t0))
		}
		// u(0) by the accepted state, u(1) and u(2) by RecordPlaced.
		apply(t, d, wire.InstanceState{UUID: u(0), Cell: "api!c1", Version: 1, VMState: "building", TaskState: "scheduling", UpdatedAt: t0}, t0.Add(time.Second))
		// u(3) is newer already, u(4) deleted.
		apply(t, d, wire.InstanceState{UUID: u(3), Cell: "api!c9", Version: 7, VMState: "active"}, t0)
		apply(t, d, wire.InstanceState{UUID: u(4), Cell: "api!c9", Version: 2, VMState: "deleted", Deleted: true}, t0)
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.MarkDeleting(ctx, tx, u(2), t0) }); err != nil {
			t.Fatal(err)
		}
		var deleting []string
		if err := d.InTx(ctx, func(tx *db.Tx) (err error) {
			deleting, _, err = apidb.RecordPlaced(ctx, tx, []string{u(1), u(2), u(3), u(4)}, "api!c1", 1, t0.Add(time.Second))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(deleting) != 1 || deleting[0] != u(2) {
			t.Errorf("pending deletes %v, want only %s", deleting, u(2))
		}
		want := get(t, d, u(0))
		for _, id := range []string{u(1), u(2)} {
			got := get(t, d, id)
			if !got.UpdatedAt.Equal(t0) {
				t.Errorf("%s: updated_at %v after its first placement, want its creation time %v", id, got.UpdatedAt, t0)
			}
			got.UUID, got.Name, got.ReservationID, got.TaskState, got.DeleteRequested = want.UUID, want.Name, want.ReservationID, want.TaskState, want.DeleteRequested
			got.UpdatedAt = want.UpdatedAt
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s after RecordPlaced:\n%+v\nwant as after the accepted state:\n%+v", id, got, want)
			}
		}
		// Placed again (handed back, say, at version 3): updated_at moves.
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, _, err := apidb.RecordPlaced(ctx, tx, []string{u(1)}, "api!c2", 3, t0.Add(2*time.Second))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got := get(t, d, u(1)); got.Cell != "api!c2" || got.Version != 3 || !got.UpdatedAt.Equal(t0.Add(2*time.Second)) {
			t.Errorf("%s placed again: cell %s version %d updated_at %v, want api!c2, 3, %v", u(1), got.Cell, got.Version, got.UpdatedAt, t0.Add(2*time.Second))
		}
		if got := get(t, d, u(2)); got.TaskState != "scheduling" || !got.DeleteRequested {
			t.Errorf("%s: task %q delete requested %v, want scheduling and true", u(2), got.TaskState, got.DeleteRequested)
		}
		if got := get(t, d, u(3)); got.Cell != "api!c9" || got.Version != 7 || got.VMState != "active" {
			t.Errorf("a newer copy changed: %+v", got)
		}
		if got := get(t, d, u(4)); !got.Deleted || got.Version != 2 {
			t.Errorf("a deleted copy changed: %+v", got)
		}
	})
}

// On PostgreSQL, a create and its first placement in one transaction (as
// the API cell's create places its build) update the row in place: a
// heap-only tuple, with no new entry in any of the table's indexes.
func TestFirstPlacementIsAHeapOnlyUpdate(t *testing.T) {
	d := dbtest.Open(t, "postgres")
	ctx := context.Background()
	migrated(t, d)
	u := "66666666-0000-0000-0000-000000000001"
	var upd, hot int64
	err := d.InTx(ctx, func(tx *db.Tx) error {
		if err := apidb.Create(ctx, tx, []apidb.Instance{instance(u, "p1", t0)}); err != nil {
			return err
		}
		if _, _, err := apidb.RecordPlaced(ctx, tx, []string{u}, "api!c1", 1, t0.Add(time.Second)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = 'instances'::regclass`).Scan(&upd, &hot)
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd != 1 || hot != 1 {
		t.Errorf("the placement: %d updates, %d of them heap-only; want 1 and 1 (an indexed column changed)", upd, hot)
	}
}

// TestApplyUpdateInOneStatementWhereNothingReadDecides: on PostgreSQL a
// newer state of a live instance without a shelved image is read, locked
// and written in one statement; a state that ends an unshelve (the
// shelved image is decided about) takes two, and drops the image, on
// both engines.
func TestApplyUpdateInOneStatementWhereNothingReadDecides(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		create(t, d, instance("a", "p", t0), instance("b", "p", t0))
		count := func(st wire.InstanceState) (apidb.Applied, int64) {
			t.Helper()
			before := d.Statements()
			a := apply(t, d, st, t0.Add(time.Minute))
			return a, d.Statements() - before
		}
		a, n := count(wire.InstanceState{UUID: "a", Cell: "api!c1", Version: 2, VMState: "active", Host: "h1"})
		if !a.Changed || !a.Moved || get(t, d, "a").VMState != "active" || get(t, d, "a").Version != 2 {
			t.Errorf("a newer state: %+v, copy %+v", a, get(t, d, "a"))
		}
		if d.Dialect == db.Postgres && n != 1 {
			t.Errorf("a newer state of a live instance: %d statements, want 1", n)
		}
		if a, n = count(wire.InstanceState{UUID: "a", Cell: "api!c1", Version: 2, VMState: "error"}); a.Changed || get(t, d, "a").VMState != "active" {
			t.Errorf("a repeated version was applied: %+v", a)
		} else if d.Dialect == db.Postgres && n != 1 {
			t.Errorf("a state left alone: %d statements, want 1", n)
		}

		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.SetShelvedImage(ctx, tx, "b", "img-shelved") }); err != nil {
			t.Fatal(err)
		}
		apply(t, d, wire.InstanceState{UUID: "b", Cell: "api!c1", Version: 2, VMState: "shelved_offloaded", TaskState: "unshelving"}, t0)
		a, n = count(wire.InstanceState{UUID: "b", Cell: "api!c1", Version: 3, VMState: "active", Host: "h1"})
		if !a.Changed || a.DropImage != "img-shelved" || get(t, d, "b").VMState != "active" || get(t, d, "b").Version != 3 {
			t.Errorf("the end of an unshelve: %+v, copy %+v", a, get(t, d, "b"))
		}
		if n != 2 {
			t.Errorf("the end of an unshelve: %d statements, want 2", n)
		}
	})
}

// TestApplyUpdateDecidesOnTheRowAsLocked: on PostgreSQL an update of a
// row another transaction holds waits for it, and is decided and written
// on the row as that transaction left it (its cell, its pending delete),
// not as the update's statement first saw it.
func TestApplyUpdateDecidesOnTheRowAsLocked(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		if d.Dialect != db.Postgres {
			t.Skip("SQLite's writers take turns: no transaction waits on a row")
		}
		ctx := context.Background()
		migrated(t, d)
		create(t, d, instance("a", "p", t0))
		apply(t, d, wire.InstanceState{UUID: "a", Cell: "api!c1", Version: 1, VMState: "building", TaskState: "scheduling"}, t0)
		holder, locked, release, done := make(chan int, 1), make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			done <- d.InTx(ctx, func(tx *db.Tx) error {
				// Placed again in c2 (version 2) and deleted by its user.
				if _, _, err := apidb.RecordPlaced(ctx, tx, []string{"a"}, "api!c2", 2, t0); err != nil {
					return err
				}
				if err := apidb.MarkDeleting(ctx, tx, "a", t0); err != nil {
					return err
				}
				var pid int
				if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
					return err
				}
				holder <- pid
				close(locked)
				<-release
				return nil
			})
		}()
		<-locked
		pid := <-holder
		type result struct {
			a   apidb.Applied
			err error
		}
		got := make(chan result, 1)
		go func() {
			var r result
			r.err = d.InTx(ctx, func(tx *db.Tx) (err error) {
				r.a, err = apidb.ApplyUpdate(ctx, tx, wire.InstanceState{UUID: "a", Cell: "api!c2", Version: 3, VMState: "active", Host: "h2"}, t0)
				return err
			})
			got <- r
		}()
		testpoll.Eventually(t, 10*time.Second, "the update to wait for the row's lock", func() (bool, string) {
			var n int
			err := d.QueryRow(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE ? = ANY (pg_blocking_pids(pid))`, pid).Scan(&n)
			return err == nil && n == 1, fmt.Sprintf("%d waiting (%v)", n, err)
		})
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		r := <-got
		if r.err != nil {
			t.Fatal(r.err)
		}
		if !r.a.Changed || r.a.Moved || r.a.PrevCell != "api!c2" || !r.a.DeleteRequested {
			t.Errorf("applied %+v; want changed in its cell api!c2, not moved, its delete pending", r.a)
		}
		if c := get(t, d, "a"); c.Version != 3 || c.VMState != "active" || c.Cell != "api!c2" || !c.DeleteRequested {
			t.Errorf("copy %+v; want version 3, active in api!c2, its delete pending", c)
		}
	})
}

// TestRecordPlacedOfItsOwnCreationReadsNothing: the placement of
// instances the same transaction created reads nothing back (none can
// have a delete pending or a port revised) and is sent with the commit:
// on PostgreSQL the create, the placement and the commit are one round
// trip. An instance created before is read back: its pending delete is
// reported.
func TestRecordPlacedOfItsOwnCreationReadsNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		create(t, d, instance("b", "p", t0))
		trips := d.RoundTrips()
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := apidb.Create(ctx, tx, []apidb.Instance{instance("a", "p", t0)}); err != nil {
				return err
			}
			deleting, revised, err := apidb.RecordPlaced(ctx, tx, []string{"a"}, "api!c1", 1, t0.Add(time.Second))
			if err == nil && (deleting != nil || revised != nil) {
				err = fmt.Errorf("deleting %v, revised %v: want nothing read", deleting, revised)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if n := d.RoundTrips() - trips; d.Dialect == db.Postgres && n != 1 {
			t.Errorf("create, placement and commit: %d round trips, want 1", n)
		}
		if a := get(t, d, "a"); a.Cell != "api!c1" || a.Version != 1 || a.VMState != "building" || !a.UpdatedAt.Equal(t0) {
			t.Errorf("placed: %+v; want in api!c1 at version 1, building, updated at its creation", a)
		}
		var deleting []string
		if err := d.InTx(ctx, func(tx *db.Tx) (err error) {
			if err := apidb.MarkDeleting(ctx, tx, "b", t0); err != nil {
				return err
			}
			deleting, _, err = apidb.RecordPlaced(ctx, tx, []string{"b"}, "api!c1", 1, t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(deleting) != 1 || deleting[0] != "b" {
			t.Errorf("the placement of an instance created before: deleting %v, want [b]", deleting)
		}
	})
}
