package apidb_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func sxUUID(i int) string { return fmt.Sprintf("77777777-0000-0000-0000-%012d", i) }

func sxList(t *testing.T, d *db.DB, o apidb.ListOptions) []string {
	t.Helper()
	insts, err := apidb.List(context.Background(), d, o)
	if err != nil {
		t.Fatalf("List(%+v): %v", o, err)
	}
	out := []string{}
	for _, in := range insts {
		out = append(out, in.Name)
	}
	return out
}

// TestServerUpdateLockMetadata covers the fields a user sets on a server
// (name, description, access IPs), the lock and the metadata.
func TestServerUpdateLockMetadata(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		u := sxUUID(1)
		create(t, d, instance(u, "p1", t0))
		in := get(t, d, u)
		if in.Description != nil || in.Locked || in.LockedBy != "" || in.AccessIPv4 != "" || in.AccessIPv6 != "" || in.Tags != nil {
			t.Fatalf("new copy: description %v locked %v/%q access %q %q tags %v; want none of them",
				in.Description, in.Locked, in.LockedBy, in.AccessIPv4, in.AccessIPv6, in.Tags)
		}

		update := func(u2 apidb.ServerUpdate, now time.Time) error {
			return d.InTx(ctx, func(tx *db.Tx) error { return apidb.UpdateServer(ctx, tx, u, u2, now) })
		}
		name, desc, v4, v6 := "renamed", "", "10.1.2.3", "fe80::1"
		if err := update(apidb.ServerUpdate{Name: &name, SetDescription: true, Description: &desc, AccessIPv4: &v4, AccessIPv6: &v6}, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		in = get(t, d, u)
		if in.Name != "renamed" || in.Description == nil || *in.Description != "" || in.AccessIPv4 != v4 || in.AccessIPv6 != v6 || !in.UpdatedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("after update: %q %v %q %q %v", in.Name, in.Description, in.AccessIPv4, in.AccessIPv6, in.UpdatedAt)
		}
		// Fields left nil stay; a nil description with SetDescription is null.
		if err := update(apidb.ServerUpdate{SetDescription: true}, t0.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if in = get(t, d, u); in.Description != nil || in.Name != "renamed" || in.AccessIPv4 != v4 {
			t.Errorf("after clearing the description: %q %v %q", in.Name, in.Description, in.AccessIPv4)
		}

		lock := func(by string) error {
			return d.InTx(ctx, func(tx *db.Tx) error { return apidb.SetLock(ctx, tx, u, by, "", t0) })
		}
		if err := lock(apidb.LockedByAdmin); err != nil {
			t.Fatal(err)
		}
		if in = get(t, d, u); !in.Locked || in.LockedBy != "admin" {
			t.Errorf("locked %v by %q, want true by admin", in.Locked, in.LockedBy)
		}
		if err := lock("someone"); err == nil {
			t.Error("locked by someone: want an error")
		}
		if err := lock(""); err != nil {
			t.Fatal(err)
		}
		if in = get(t, d, u); in.Locked || in.LockedBy != "" {
			t.Errorf("after unlock: locked %v by %q", in.Locked, in.LockedBy)
		}
		// A reason is kept by a lock without one and forgotten by the
		// unlock (2.73).
		lockWhy := func(by, reason string) {
			t.Helper()
			if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.SetLock(ctx, tx, u, by, reason, t0) }); err != nil {
				t.Fatal(err)
			}
		}
		lockWhy(apidb.LockedByOwner, "maintenance")
		if in = get(t, d, u); in.LockedReason != "maintenance" {
			t.Errorf("locked with a reason: %q", in.LockedReason)
		}
		yes := true
		if got, err := apidb.List(ctx, d, apidb.ListOptions{Locked: &yes}); err != nil || len(got) != 1 || got[0].UUID != u {
			t.Errorf("list locked: %v %v", got, err)
		}
		lockWhy(apidb.LockedByAdmin, "")
		if in = get(t, d, u); in.LockedReason != "maintenance" || in.LockedBy != "admin" {
			t.Errorf("locked again without a reason: %q by %q", in.LockedReason, in.LockedBy)
		}
		lockWhy("", "")
		if in = get(t, d, u); in.LockedReason != "" {
			t.Errorf("unlocked: reason %q", in.LockedReason)
		}
		if got, err := apidb.List(ctx, d, apidb.ListOptions{Locked: &yes}); err != nil || len(got) != 0 {
			t.Errorf("list locked after the unlock: %v %v", got, err)
		}

		meta := map[string]string{"a": "1", "b": "2"}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.SetMetadata(ctx, tx, u, meta, t0) }); err != nil {
			t.Fatal(err)
		}
		if in = get(t, d, u); fmt.Sprint(in.Metadata) != fmt.Sprint(meta) {
			t.Errorf("metadata %v, want %v", in.Metadata, meta)
		}

		// A deleted (or unknown) instance is not found, and nothing changes.
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.MarkDeleted(ctx, tx, u, t0) }); err != nil {
			t.Fatal(err)
		}
		other := "other"
		if err := update(apidb.ServerUpdate{Name: &other}, t0); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("update of a deleted instance: %v, want ErrNotFound", err)
		}
		if err := lock(apidb.LockedByOwner); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("lock of a deleted instance: %v, want ErrNotFound", err)
		}
		if in = get(t, d, u); in.Name != "renamed" || in.Locked {
			t.Errorf("a deleted instance changed: %q locked %v", in.Name, in.Locked)
		}
		err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.SetMetadata(ctx, tx, "nope", nil, t0) })
		if !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("metadata of an unknown instance: %v, want ErrNotFound", err)
		}
		err = d.InTx(ctx, func(tx *db.Tx) error {
			_, err := apidb.GetForUpdate(ctx, tx, "nope")
			return err
		})
		if !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("GetForUpdate of an unknown instance: %v, want ErrNotFound", err)
		}
	})
}

func TestServerTags(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		a, b := sxUUID(1), sxUUID(2)
		create(t, d, instance(a, "p1", t0), instance(b, "p1", t0))
		tx := func(f func(tx *db.Tx) error) {
			t.Helper()
			if err := d.InTx(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		tags := func(u string) string {
			t.Helper()
			ts, err := apidb.ListTags(ctx, d, u)
			if err != nil {
				t.Fatal(err)
			}
			return strings.Join(ts, ",")
		}
		// Repeats count once, on each instance; ordering is by code point.
		tx(func(tx *db.Tx) error { return apidb.AddTags(ctx, tx, []string{a, b}, []string{"b", "B", "a", "b"}) })
		tx(func(tx *db.Tx) error { return apidb.AddTags(ctx, tx, []string{a}, []string{"a", "c"}) })
		if got := tags(a); got != "B,a,b,c" {
			t.Errorf("tags of a = %s, want B,a,b,c", got)
		}
		if got := tags(b); got != "B,a,b" {
			t.Errorf("tags of b = %s, want B,a,b", got)
		}
		if ts, err := apidb.ListTags(ctx, d, sxUUID(9)); err != nil || ts == nil || len(ts) != 0 {
			t.Errorf("tags of an instance without any = %#v, %v; want an empty list", ts, err)
		}
		if ok, err := apidb.HasTag(ctx, d, a, "c"); !ok || err != nil {
			t.Errorf("HasTag(a, c) = %v, %v", ok, err)
		}
		if ok, _ := apidb.HasTag(ctx, d, b, "c"); ok {
			t.Error("HasTag(b, c) = true")
		}
		var set []string
		tx(func(tx *db.Tx) (err error) { set, err = apidb.SetTags(ctx, tx, a, []string{"z", "a", "z"}); return err })
		if strings.Join(set, ",") != "a,z" || tags(a) != "a,z" {
			t.Errorf("SetTags = %v, stored %s; want a,z", set, tags(a))
		}
		var found bool
		tx(func(tx *db.Tx) (err error) { found, err = apidb.DeleteTag(ctx, tx, a, "z"); return err })
		if !found || tags(a) != "a" {
			t.Errorf("DeleteTag(z) = %v, left %s", found, tags(a))
		}
		tx(func(tx *db.Tx) (err error) { found, err = apidb.DeleteTag(ctx, tx, a, "z"); return err })
		if found {
			t.Error("DeleteTag of a tag not there reported it found")
		}
		insts, err := apidb.List(ctx, d, apidb.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, insts[0]) // the same instance twice is fine
		if err := apidb.LoadTags(ctx, d, insts); err != nil {
			t.Fatal(err)
		}
		for _, in := range insts {
			if want := tags(in.UUID); strings.Join(in.Tags, ",") != want {
				t.Errorf("LoadTags gave %s %v, want %s", in.UUID, in.Tags, want)
			}
		}
		tx(func(tx *db.Tx) error { return apidb.DeleteAllTags(ctx, tx, b) })
		if tags(b) != "" {
			t.Errorf("after DeleteAllTags: %s", tags(b))
		}
		// A tag needs its instance.
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.AddTags(ctx, tx, []string{sxUUID(9)}, []string{"x"}) }); err == nil {
			t.Error("tagging an unknown instance worked")
		}
	})
}

// TestListFiltersAndSort covers List's filters, sorts and their paging.
func TestListFiltersAndSort(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		names := []string{"beta", "Alpha", "gamma", "alpha", "delta", "Beta"}
		for i, n := range names {
			in := instance(sxUUID(i), "p1", t0.Add(time.Duration(i)*time.Second))
			in.Name = n
			in.ImageRef = []string{"img-a", "img-b"}[i%2]
			in.FlavorID = []string{"1", "2", "3"}[i%3]
			create(t, d, in)
			st := wire.InstanceState{UUID: in.UUID, Cell: "api!c1", Version: 1, Host: fmt.Sprintf("h%d", i%2), VMState: "active"}
			switch i {
			case 1:
				st.VMState = "stopped"
			case 2:
				st.TaskState = "rebooting"
			}
			apply(t, d, st, t0.Add(time.Duration(i)*time.Minute))
		}
		tx := func(f func(tx *db.Tx) error) {
			t.Helper()
			if err := d.InTx(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		tx(func(tx *db.Tx) error { return apidb.AddTags(ctx, tx, []string{sxUUID(0), sxUUID(1)}, []string{"a"}) })
		tx(func(tx *db.Tx) error { return apidb.AddTags(ctx, tx, []string{sxUUID(1), sxUUID(2)}, []string{"b"}) })
		tx(func(tx *db.Tx) error { return apidb.MarkDeleted(ctx, tx, sxUUID(5), t0.Add(time.Hour)) })

		byName := []apidb.SortKey{{Key: "display_name"}}
		cases := []struct {
			name string
			o    apidb.ListOptions
			want string
		}{
			{"default: live, newest first", apidb.ListOptions{}, "delta alpha gamma Alpha beta"},
			{"deleted too", apidb.ListOptions{IncludeDeleted: true}, "Beta delta alpha gamma Alpha beta"},
			{"deleted only", apidb.ListOptions{OnlyDeleted: true}, "Beta"},
			{"by name, code point order", apidb.ListOptions{Sort: byName}, "Alpha alpha beta delta gamma"},
			{"by name, descending", apidb.ListOptions{Sort: []apidb.SortKey{{Key: "display_name", Desc: true}}}, "gamma delta beta alpha Alpha"},
			{"by host, then name descending", apidb.ListOptions{Sort: []apidb.SortKey{{Key: "host"}, {Key: "display_name", Desc: true}}},
				"gamma delta beta alpha Alpha"},
			{"constant key sorts by the tie-breakers", apidb.ListOptions{Sort: []apidb.SortKey{{Key: "progress", Desc: true}}}, "delta alpha gamma Alpha beta"},
			{"vm states", apidb.ListOptions{VMStates: []string{"stopped"}}, "Alpha"},
			{"task states", apidb.ListOptions{VMStates: []string{"active"}, TaskStates: []string{"rebooting", "rebooting_hard"}}, "gamma"},
			{"no task", apidb.ListOptions{TaskStates: []string{""}, Sort: byName}, "Alpha alpha beta delta"},
			{"image", apidb.ListOptions{ImageRef: "img-b", Sort: byName}, "Alpha alpha"},
			{"flavor", apidb.ListOptions{FlavorID: "1", Sort: byName}, "alpha beta"},
			{"host", apidb.ListOptions{Host: "h0", Sort: byName}, "beta delta gamma"},
			{"uuid", apidb.ListOptions{UUID: sxUUID(2)}, "gamma"},
			{"changes since, with deleted", apidb.ListOptions{ChangesSince: t0.Add(3 * time.Minute), IncludeDeleted: true, Sort: byName}, "Beta alpha delta"},
			{"tags", apidb.ListOptions{Tags: []string{"a", "b"}}, "Alpha"},
			{"tags-any", apidb.ListOptions{TagsAny: []string{"a", "b"}, Sort: byName}, "Alpha beta gamma"},
			{"not-tags", apidb.ListOptions{NotTags: []string{"a", "b"}, Sort: byName}, "alpha beta delta gamma"},
			{"not-tags-any", apidb.ListOptions{NotTagsAny: []string{"a", "b"}, Sort: byName}, "alpha delta"},
			{"project", apidb.ListOptions{ProjectID: "p2"}, ""},
		}
		for _, c := range cases {
			if got := strings.Join(sxList(t, d, c.o), " "); got != c.want {
				t.Errorf("%s: %q, want %q", c.name, got, c.want)
			}
		}
		if _, err := apidb.List(ctx, d, apidb.ListOptions{Sort: []apidb.SortKey{{Key: "nope"}}}); err == nil {
			t.Error("an unknown sort key was accepted")
		}

		// Paging by marker follows any sort, with a Go filter too.
		lower := regexp.MustCompile(`^[a-z]`)
		for _, o := range []apidb.ListOptions{
			{Sort: byName},
			{Sort: []apidb.SortKey{{Key: "display_name", Desc: true}}, IncludeDeleted: true},
			{Sort: []apidb.SortKey{{Key: "host", Desc: true}, {Key: "display_name"}}},
			{Sort: []apidb.SortKey{{Key: "vm_state"}, {Key: "task_state", Desc: true}}},
			{Sort: byName, Match: func(in *apidb.Instance) bool { return lower.MatchString(in.Name) }},
		} {
			all := sxList(t, d, o)
			var walked []string
			marker := ""
			for range 10 {
				p := o
				p.Limit, p.Marker = 2, marker
				page, err := apidb.List(ctx, d, p)
				if err != nil {
					t.Fatal(err)
				}
				for _, in := range page {
					walked = append(walked, in.Name)
				}
				if len(page) < 2 {
					break
				}
				marker = page[len(page)-1].UUID
			}
			if !slices.Equal(walked, all) {
				t.Errorf("paged by 2 with %+v: %v, want %v", o.Sort, walked, all)
			}
		}
		if got := strings.Join(sxList(t, d, apidb.ListOptions{Sort: byName, Limit: 2,
			Match: func(in *apidb.Instance) bool { return lower.MatchString(in.Name) }}), " "); got != "alpha beta" {
			t.Errorf("Match with limit 2: %q, want the first two that match", got)
		}
	})
}
