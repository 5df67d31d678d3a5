package celldb_test

import (
	"context"
	"maps"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func TestGroupHosts(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		const g1, g2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
		// A group whose uuid holds LIKE's wildcards must not match others.
		const wild = "1111111_-1111-1111-1111-11111111111%"
		grp := func(uuid string) *wire.GroupPlacement {
			return &wire.GroupPlacement{UUID: uuid, Policy: "anti-affinity", MemberHosts: map[string][]string{"api!c": {"x"}}}
		}
		insts := []struct {
			host    string
			group   *wire.GroupPlacement
			deleted bool
		}{
			{"h1", grp(g1), false},
			{"h1", grp(g1), false},
			{"h2", grp(g1), false},
			{"", grp(g1), false},  // not placed yet
			{"h3", grp(g1), true}, // deleted
			{"h3", grp(g2), false},
			{"h4", nil, false},
			{"h5", grp(wild), false},
		}
		for i, in := range insts {
			ci := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: uuidN(i + 1), Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
				Flavor: wire.Flavor{ID: "1"}, Host: in.host, VMState: celldb.VMActive,
				Build: celldb.BuildContext{Scheduler: "api", Attempts: 1, Hints: map[string][]string{"group": {g2}}, Group: in.group}}
			err := d.InTx(ctx, func(tx *db.Tx) error {
				if err := celldb.Insert(ctx, tx, []celldb.Instance{ci}, t0); err != nil {
					return err
				}
				if in.deleted {
					_, err := celldb.Update(ctx, tx, ci.UUID, nil, celldb.Change{Deleted: true}, t0)
					return err
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			group string
			want  map[string]int
		}{
			{g1, map[string]int{"h1": 2, "h2": 1}},
			{g2, map[string]int{"h3": 1}},
			{wild, map[string]int{"h5": 1}},
			{"33333333-3333-3333-3333-333333333333", map[string]int{}},
		} {
			got, err := celldb.GroupHosts(ctx, d, c.group)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, c.want) {
				t.Errorf("GroupHosts(%s) = %v, want %v", c.group, got, c.want)
			}
		}
		// The group survives an update of the build context (a reschedule).
		in, err := celldb.Get(ctx, d, uuidN(3))
		if err != nil {
			t.Fatal(err)
		}
		if in.Build.Group == nil || in.Build.Group.UUID != g1 || in.Build.Group.MemberHosts["api!c"][0] != "x" {
			t.Errorf("build context group read back as %+v", in.Build.Group)
		}
		bc := in.Build
		bc.IgnoreHosts = []string{"h9"}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := celldb.Update(ctx, tx, in.UUID, nil, celldb.Change{Build: &bc}, t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got, _ := celldb.GroupHosts(ctx, d, g1); got["h2"] != 1 {
			t.Errorf("after a build context update GroupHosts(g1) = %v", got)
		}
	})
}
