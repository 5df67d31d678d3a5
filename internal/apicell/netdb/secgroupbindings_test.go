package netdb_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestSecurityGroupBindings: a create's instances are bound in one
// statement to the groups named or, when none is, to the project's
// default group (ErrNoDefaultGroup before the project has one, and nothing
// written); a group a live server is in cannot be deleted
// (SecurityGroupInUse), and can once the server is deleted, its bindings
// going with it. A group deleted between the create's check and its
// transaction fails the create.
func TestSecurityGroupBindings(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		const a, b = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"
		boot(t, d, a, "p", "active", "h1")
		boot(t, d, b, "p", "active", "h1")
		bind := func(reservation string, ids ...string) error {
			return d.InTx(ctx, func(tx *db.Tx) error {
				_, err := netdb.BindSecurityGroups(ctx, tx, reservation, "p", ids, 1)
				return err
			})
		}
		if err := bind("r-" + a); !errors.Is(err, netdb.ErrNoDefaultGroup) {
			t.Fatalf("bind to the default group of a project without one: %v", err)
		}
		if n := countRows(t, d, `SELECT COUNT(*) FROM security_group_bindings`); n != 0 {
			t.Fatalf("%d bindings after a refused bind", n)
		}
		def, err := netdb.EnsureDefaultSecurityGroup(ctx, d, "p", t0)
		if err != nil {
			t.Fatal(err)
		}
		web := &netdb.SecurityGroup{Name: "web", ProjectID: "p", Stateful: true}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return netdb.CreateSecurityGroup(ctx, tx, web, t0) }); err != nil {
			t.Fatal(err)
		}
		if err := bind("r-" + a); err != nil {
			t.Fatal(err)
		}
		if err := bind("r-"+b, web.ID, def); err != nil {
			t.Fatal(err)
		}
		if err := bind("r-"+b, "11111111-2222-3333-4444-555555555555"); code(err) != "SecurityGroupNotFound" {
			t.Fatalf("bind to a group that is gone: %v", err)
		}
		got, err := netdb.InstancesSecurityGroups(ctx, d, []string{a, b})
		if err != nil {
			t.Fatal(err)
		}
		if len(got[a]) != 1 || got[a][0].Name != "default" || len(got[b]) != 2 || got[b][0].Name != "default" || got[b][1].Name != "web" {
			t.Fatalf("groups: %+v", got)
		}

		del := func(id string) error {
			return d.InTx(ctx, func(tx *db.Tx) error { return netdb.DeleteSecurityGroup(ctx, tx, id, nil, t0) })
		}
		if err := del(web.ID); code(err) != "SecurityGroupInUse" {
			t.Fatalf("delete a group in use: %v", err)
		}
		deleteInstance(t, d, b)
		if err := del(web.ID); err != nil {
			t.Fatalf("delete a group only a deleted server was in: %v", err)
		}
		if n := countRows(t, d, `SELECT COUNT(*) FROM security_group_bindings WHERE security_group_id = ?`, web.ID); n != 0 {
			t.Fatalf("%d bindings left to a deleted group", n)
		}
		if err := del(def); code(err) != "SecurityGroupInUse" {
			t.Fatalf("delete the default group while %s is in it: %v", a, err)
		}

		// Twice in, once shown; out only once.
		err = d.InTx(ctx, func(tx *db.Tx) error {
			if added, err := netdb.BindSecurityGroup(ctx, tx, a, def, time.Now()); err != nil || added {
				t.Errorf("add again: %v %v", added, err)
			}
			if removed, err := netdb.UnbindSecurityGroup(ctx, tx, a, def, time.Now()); err != nil || !removed {
				t.Errorf("remove: %v %v", removed, err)
			}
			if removed, err := netdb.UnbindSecurityGroup(ctx, tx, a, def, time.Now()); err != nil || removed {
				t.Errorf("remove again: %v %v", removed, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestResolveSecurityGroup: by id, else by name, within one project; a
// name two groups share is a conflict.
func TestResolveSecurityGroup(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		mk := func(name, project string) string {
			g := &netdb.SecurityGroup{Name: name, ProjectID: project, Stateful: true}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return netdb.CreateSecurityGroup(ctx, tx, g, t0) }); err != nil {
				t.Fatal(err)
			}
			return g.ID
		}
		one, other := mk("one", "p"), mk("one", "q")
		if id, name, err := netdb.ResolveSecurityGroup(ctx, d, "p", "one"); err != nil || id != one || name != "one" {
			t.Errorf("by name: %s %s %v", id, name, err)
		}
		if id, _, err := netdb.ResolveSecurityGroup(ctx, d, "p", one); err != nil || id != one {
			t.Errorf("by id: %s %v", id, err)
		}
		if _, _, err := netdb.ResolveSecurityGroup(ctx, d, "p", other); !errors.Is(err, netdb.ErrNotFound) {
			t.Errorf("another project's by id: %v", err)
		}
		mk("one", "p")
		if _, _, err := netdb.ResolveSecurityGroup(ctx, d, "p", "one"); !errors.Is(err, netdb.ErrConflict) {
			t.Errorf("a name two groups have: %v", err)
		}
	})
}

// TestBindRacesDelete: a server bound to a group while the group is
// deleted: one of the two fails, never both succeed (which would leave a
// server bound to a group that is gone). On PostgreSQL this needs the
// binding's share lock on the group.
func TestBindRacesDelete(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		for i := range 20 {
			u := fmt.Sprintf("cccccccc-0000-0000-0000-%012d", i)
			boot(t, d, u, "p", "active", "h1")
			g := &netdb.SecurityGroup{Name: "g", ProjectID: "p", Stateful: true}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return netdb.CreateSecurityGroup(ctx, tx, g, t0) }); err != nil {
				t.Fatal(err)
			}
			var bindErr, delErr error
			var wg sync.WaitGroup
			wg.Go(func() {
				bindErr = d.InTx(ctx, func(tx *db.Tx) error {
					_, err := netdb.BindSecurityGroups(ctx, tx, "r-"+u, "p", []string{g.ID}, 1)
					return err
				})
			})
			wg.Go(func() {
				delErr = d.InTx(ctx, func(tx *db.Tx) error { return netdb.DeleteSecurityGroup(ctx, tx, g.ID, nil, t0) })
			})
			wg.Wait()
			if bindErr == nil && delErr == nil {
				t.Fatalf("round %d: both the binding and the deletion succeeded", i)
			}
			if bindErr != nil && delErr != nil {
				t.Fatalf("round %d: both failed: %v; %v", i, bindErr, delErr)
			}
		}
	})
}

// TestCreateBoundInsertsAndBinds: CreateBound inserts a create's
// instances and binds each to the groups named, or to the project's
// default group, as apidb.Create and BindSecurityGroups do; on PostgreSQL
// in one statement for all of them. Refused (no default group yet, a
// group gone), it leaves neither instance nor binding.
func TestCreateBoundInsertsAndBinds(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		insts := func(reservation string, uuids ...string) []apidb.Instance {
			var out []apidb.Instance
			for i, u := range uuids {
				out = append(out, apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u",
					ImageRef: "img", ReservationID: reservation, LaunchIndex: i, CreatedAt: t0},
					FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "building", TaskState: "scheduling"})
			}
			return out
		}
		create := func(in []apidb.Instance, ids ...string) ([]string, int64, error) {
			var groups []string
			var n int64
			err := d.InTx(ctx, func(tx *db.Tx) (err error) {
				before := d.Statements()
				groups, err = netdb.CreateBound(ctx, tx, in, in[0].ReservationID, "p", ids)
				n = d.Statements() - before
				return err
			})
			return groups, n, err
		}
		const a1, a2, b1 = "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002", "bbbbbbbb-0000-0000-0000-000000000001"
		if _, _, err := create(insts("r-a", a1, a2)); !errors.Is(err, netdb.ErrNoDefaultGroup) {
			t.Fatalf("a create bound to the default group of a project without one: %v", err)
		}
		if n := countRows(t, d, `SELECT COUNT(*) FROM instances`) + countRows(t, d, `SELECT COUNT(*) FROM security_group_bindings`); n != 0 {
			t.Fatalf("%d rows after a refused create", n)
		}
		def, err := netdb.EnsureDefaultSecurityGroup(ctx, d, "p", t0)
		if err != nil {
			t.Fatal(err)
		}
		web := &netdb.SecurityGroup{Name: "web", ProjectID: "p", Stateful: true}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return netdb.CreateSecurityGroup(ctx, tx, web, t0) }); err != nil {
			t.Fatal(err)
		}
		groups, n, err := create(insts("r-a", a1, a2))
		if err != nil || len(groups) != 1 || groups[0] != def {
			t.Fatalf("a create bound to the default group: %v, %v", groups, err)
		}
		if d.Dialect == db.Postgres && n != 1 {
			t.Errorf("two instances inserted and bound in %d statements, want 1", n)
		}
		if _, _, err := create(insts("r-b", b1), "11111111-2222-3333-4444-555555555555"); code(err) != "SecurityGroupNotFound" {
			t.Fatalf("a create bound to a group that is gone: %v", err)
		}
		if n := countRows(t, d, `SELECT COUNT(*) FROM instances WHERE uuid = ?`, b1); n != 0 {
			t.Fatalf("the refused create left its instance")
		}
		if groups, _, err = create(insts("r-b", b1), web.ID, def); err != nil || len(groups) != 2 {
			t.Fatalf("a create bound to two groups: %v, %v", groups, err)
		}
		got, err := netdb.InstancesSecurityGroups(ctx, d, []string{a1, a2, b1})
		if err != nil {
			t.Fatal(err)
		}
		if len(got[a1]) != 1 || got[a1][0].Name != "default" || len(got[a2]) != 1 || len(got[b1]) != 2 || got[b1][1].Name != "web" {
			t.Fatalf("groups: %+v", got)
		}
		for _, u := range []string{a1, a2, b1} {
			if in, err := apidb.Get(ctx, d, u); err != nil || in.VMState != "building" || in.Version != 0 {
				t.Errorf("%s: %+v, %v", u, in, err)
			}
		}
	})
}
