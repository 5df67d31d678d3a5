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
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func groupUUID(i int) string { return fmt.Sprintf("99999999-0000-0000-0000-%012d", i) }

func memberUUID(i int) string { return fmt.Sprintf("88888888-0000-0000-0000-%012d", i) }

func createGroup(t *testing.T, d *db.DB, g *apidb.ServerGroup) error {
	t.Helper()
	ctx := context.Background()
	return d.InTx(ctx, func(tx *db.Tx) error { return apidb.CreateServerGroup(ctx, tx, g) })
}

func addMembers(t *testing.T, d *db.DB, group string, uuids ...string) error {
	t.Helper()
	ctx := context.Background()
	return d.InTx(ctx, func(tx *db.Tx) error { return apidb.AddServerGroupMembers(ctx, tx, group, uuids) })
}

func groupIDs(gs []*apidb.ServerGroup) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, g.UUID)
	}
	return out
}

func TestServerGroups(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)

		// Five groups, one a second apart: 1, 3, 5 in p1; 2, 4 in p2.
		for i := 1; i <= 5; i++ {
			p := "p1"
			if i%2 == 0 {
				p = "p2"
			}
			g := &apidb.ServerGroup{UUID: groupUUID(i), Name: fmt.Sprintf("g%d", i), ProjectID: p, UserID: "u-" + p,
				Policy: "anti-affinity", CreatedAt: t0.Add(time.Duration(i) * time.Second)}
			if err := createGroup(t, d, g); err != nil {
				t.Fatalf("create %d: %v", i, err)
			}
			if g.Members == nil || len(g.Members) != 0 {
				t.Errorf("a new group's members are %v, want []", g.Members)
			}
		}
		if err := createGroup(t, d, &apidb.ServerGroup{UUID: groupUUID(1), Name: "again", ProjectID: "p1", UserID: "u", Policy: "affinity", CreatedAt: t0}); !errors.Is(err, apidb.ErrExists) {
			t.Errorf("a second group with one uuid: %v, want ErrExists", err)
		}

		g, err := apidb.GetServerGroup(ctx, d, groupUUID(3))
		if err != nil {
			t.Fatal(err)
		}
		want := apidb.ServerGroup{UUID: groupUUID(3), Name: "g3", ProjectID: "p1", UserID: "u-p1", Policy: "anti-affinity",
			CreatedAt: t0.Add(3 * time.Second), Members: []string{}}
		if g.UUID != want.UUID || g.Name != want.Name || g.ProjectID != want.ProjectID || g.UserID != want.UserID ||
			g.Policy != want.Policy || !g.CreatedAt.Equal(want.CreatedAt) || g.Members == nil || len(g.Members) != 0 {
			t.Errorf("GetServerGroup = %+v, want %+v", g, want)
		}
		if _, err := apidb.GetServerGroup(ctx, d, groupUUID(9)); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("a missing group: %v, want ErrNotFound", err)
		}

		for _, c := range []struct {
			o    apidb.ServerGroupListOptions
			want []int
		}{
			{apidb.ServerGroupListOptions{}, []int{1, 2, 3, 4, 5}},
			{apidb.ServerGroupListOptions{ProjectID: "p1"}, []int{1, 3, 5}},
			{apidb.ServerGroupListOptions{ProjectID: "p2"}, []int{2, 4}},
			{apidb.ServerGroupListOptions{ProjectID: "p3"}, nil},
			{apidb.ServerGroupListOptions{Limit: 2}, []int{1, 2}},
			{apidb.ServerGroupListOptions{Limit: 2, Offset: 2}, []int{3, 4}},
			{apidb.ServerGroupListOptions{Offset: 4}, []int{5}},
			{apidb.ServerGroupListOptions{Offset: 5}, nil},
			{apidb.ServerGroupListOptions{ProjectID: "p1", Limit: 1, Offset: 1}, []int{3}},
		} {
			gs, err := apidb.ListServerGroups(ctx, d, c.o)
			if err != nil {
				t.Fatal(err)
			}
			wantIDs := []string{}
			for _, i := range c.want {
				wantIDs = append(wantIDs, groupUUID(i))
			}
			if got := groupIDs(gs); !slices.Equal(got, wantIDs) {
				t.Errorf("ListServerGroups(%+v) = %v, want %v", c.o, got, wantIDs)
			}
		}

		// Members: three instances, created out of order; one is deleted later.
		a, b, c := instance(memberUUID(11), "p1", t0.Add(3*time.Second)), instance(memberUUID(12), "p1", t0.Add(time.Second)), instance(memberUUID(13), "p1", t0.Add(2*time.Second))
		create(t, d, a, b, c)
		if err := addMembers(t, d, groupUUID(1), a.UUID, b.UUID); err != nil {
			t.Fatal(err)
		}
		// Adding again, and more, keeps each member once.
		if err := addMembers(t, d, groupUUID(1), b.UUID, c.UUID); err != nil {
			t.Fatal(err)
		}
		if err := addMembers(t, d, groupUUID(9), a.UUID); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("adding to a missing group: %v, want ErrNotFound", err)
		}
		apply(t, d, wire.InstanceState{UUID: b.UUID, Cell: "api!c1", Host: "h1", Version: 2, VMState: "active"}, t0)
		apply(t, d, wire.InstanceState{UUID: c.UUID, Cell: "api!c2", Host: "h7", Version: 2, VMState: "active"}, t0)
		g, err = apidb.GetServerGroup(ctx, d, groupUUID(1))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{b.UUID, c.UUID, a.UUID}; !slices.Equal(g.Members, want) {
			t.Errorf("members = %v, want %v (oldest first)", g.Members, want)
		}
		ms, err := apidb.ServerGroupMembers(ctx, d, groupUUID(1))
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 3 || ms[0].UUID != b.UUID || ms[0].Cell != "api!c1" || ms[0].Host != "h1" || ms[1].Host != "h7" || ms[2].Cell != "" {
			t.Errorf("ServerGroupMembers = %+v", ms)
		}
		// A deleted instance is no member any more.
		apply(t, d, wire.InstanceState{UUID: c.UUID, Cell: "api!c2", Version: 3, VMState: "deleted", Deleted: true}, t0)
		gs, err := apidb.ListServerGroups(ctx, d, apidb.ServerGroupListOptions{ProjectID: "p1"})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{b.UUID, a.UUID}; len(gs) != 3 || !slices.Equal(gs[0].Members, want) || len(gs[1].Members) != 0 {
			t.Errorf("listed members = %v, want %v then none", gs[0].Members, want)
		}
		if ms, _ := apidb.ServerGroupMembers(ctx, d, groupUUID(1)); len(ms) != 2 {
			t.Errorf("ServerGroupMembers after a delete = %d instances, want 2", len(ms))
		}

		// Delete: gone for reads, members and a second delete.
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.DeleteServerGroup(ctx, tx, groupUUID(1)) }); err != nil {
			t.Fatal(err)
		}
		if _, err := apidb.GetServerGroup(ctx, d, groupUUID(1)); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("a deleted group: %v, want ErrNotFound", err)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.DeleteServerGroup(ctx, tx, groupUUID(1)) }); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("deleting twice: %v, want ErrNotFound", err)
		}
		if err := addMembers(t, d, groupUUID(1), a.UUID); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("adding to a deleted group: %v, want ErrNotFound", err)
		}
		if ms, _ := apidb.ServerGroupMembers(ctx, d, groupUUID(1)); len(ms) != 0 {
			t.Errorf("a deleted group still has %d members", len(ms))
		}
		gs, err = apidb.ListServerGroups(ctx, d, apidb.ServerGroupListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := groupIDs(gs), []string{groupUUID(2), groupUUID(3), groupUUID(4), groupUUID(5)}; !slices.Equal(got, want) {
			t.Errorf("list after a delete = %v, want %v", got, want)
		}
		// The uuid of a deleted group is not given again.
		if err := createGroup(t, d, &apidb.ServerGroup{UUID: groupUUID(1), Name: "new", ProjectID: "p1", UserID: "u", Policy: "affinity", CreatedAt: t0}); !errors.Is(err, apidb.ErrExists) {
			t.Errorf("reusing a deleted group's uuid: %v, want ErrExists", err)
		}
	})
}
