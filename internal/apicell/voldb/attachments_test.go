package voldb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

const (
	srv1 = "00000000-0000-4000-8000-0000000000a1"
	srv2 = "00000000-0000-4000-8000-0000000000a2"
)

func attachment(id, server, status, device string, boot int) wire.AttachmentState {
	return wire.AttachmentState{ID: id, InstanceUUID: server, Status: status, Device: device, Mode: "rw",
		BDMUUID: "bdm-" + id, BootIndex: boot, AttachedAt: t0.Add(time.Minute)}
}

// TestApplyMirrorsAttachments: a volume's state that applies replaces its
// attachments with the state's list and sets attach_status from them; a
// state that does not apply (an older version, a heal resend of the
// same) leaves them; a deletion removes them.
func TestApplyMirrorsAttachments(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		create(t, d, &voldb.Volume{ID: "v1"})
		create(t, d, &voldb.Volume{ID: "v2", ProjectID: "p2"})
		state := func(v int64, status string, atts ...wire.AttachmentState) wire.VolumeState {
			return wire.VolumeState{ID: "v1", Cell: "api!c1", Version: v, Status: status, SizeGB: 1, Attachments: atts}
		}
		apply(t, d, []wire.VolumeState{state(1, "available")}, nil)
		a := attachment("att1", srv1, voldb.AttachAttaching, "/dev/vdb", -1)
		a.Tag, a.DeleteOnTermination = "t1", true
		apply(t, d, []wire.VolumeState{state(2, "attaching", a)}, nil)
		v, err := voldb.Get(ctx, d, "v1")
		if err != nil {
			t.Fatal(err)
		}
		if v.AttachStatus != voldb.AttachAttaching || len(v.Attachments) != 1 {
			t.Fatalf("after attaching: attach_status %q, attachments %+v", v.AttachStatus, v.Attachments)
		}
		got := v.Attachments[0]
		if got.ID != "att1" || got.InstanceUUID != srv1 || got.Device != "/dev/vdb" || got.BDMUUID != "bdm-att1" || got.Tag != "t1" ||
			!got.DeleteOnTermination || got.BootIndex != -1 || got.Mode != "rw" || !got.AttachedAt.Equal(t0.Add(time.Minute)) ||
			got.ProjectID != "p1" || got.IsRoot() {
			t.Fatalf("attachment %+v", got)
		}
		// Attached: the list is replaced (the same id, its new status).
		a.Status = voldb.AttachAttached
		apply(t, d, []wire.VolumeState{state(3, "in-use", a)}, nil)
		// A late copy of version 2 changes nothing.
		late := a
		late.Status = voldb.AttachAttaching
		if r := apply(t, d, []wire.VolumeState{state(2, "attaching", late)}, nil); r[0].Changed {
			t.Fatal("an older state applied")
		}
		// A repeat of version 3 (a heal) changes nothing either.
		if r := apply(t, d, []wire.VolumeState{state(3, "in-use", a)}, nil); r[0].Changed {
			t.Fatal("a repeated state applied")
		}
		v, _ = voldb.Get(ctx, d, "v1")
		if v.Status != "in-use" || v.AttachStatus != voldb.AttachAttached || len(v.Attachments) != 1 || v.Attachments[0].Status != voldb.AttachAttached {
			t.Fatalf("in use: %s/%s %+v", v.Status, v.AttachStatus, v.Attachments)
		}
		// By instance, by (instance, volume), by id.
		by, err := voldb.AttachmentsByInstances(ctx, d, []string{srv1, srv2})
		if err != nil || len(by[srv1]) != 1 || len(by[srv2]) != 0 {
			t.Fatalf("by instances: %v %v", by, err)
		}
		if one, err := voldb.InstanceVolumeAttachment(ctx, d, srv1, "v1"); err != nil || one.ID != "att1" {
			t.Fatalf("instance volume attachment: %+v %v", one, err)
		}
		if _, err := voldb.InstanceVolumeAttachment(ctx, d, srv2, "v1"); !errors.Is(err, voldb.ErrAttachmentNotFound) {
			t.Fatalf("another instance's: %v", err)
		}
		if one, err := voldb.GetAttachment(ctx, d, "att1"); err != nil || one.VolumeID != "v1" {
			t.Fatalf("get attachment: %+v %v", one, err)
		}
		// Detached: the list is empty, attach_status detached.
		apply(t, d, []wire.VolumeState{state(4, "available")}, nil)
		v, _ = voldb.Get(ctx, d, "v1")
		if v.AttachStatus != voldb.AttachDetached || len(v.Attachments) != 0 {
			t.Fatalf("detached: %s %+v", v.AttachStatus, v.Attachments)
		}
		// Attached again, then deleted (a server deleted with
		// delete_on_termination): the deletion removes them.
		apply(t, d, []wire.VolumeState{state(5, "in-use", a)}, nil)
		apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "api!c1", Version: 6, Status: "deleted", Deleted: true, Attachments: []wire.AttachmentState{a}}}, nil)
		if _, err := voldb.GetAttachment(ctx, d, "att1"); !errors.Is(err, voldb.ErrAttachmentNotFound) {
			t.Fatalf("an attachment of a deleted volume: %v", err)
		}
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM volume_attachments`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d attachment rows left (%v)", n, err)
		}
	})
}

// TestAttachStatusIsTheHighest: a volume's attach_status is the highest
// of its attachments' (attached, attaching, detaching, reserved), as
// Cinder leaves it; the instances' lists put the root device first.
func TestAttachStatusIsTheHighest(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		create(t, d, &voldb.Volume{ID: "v1", Multiattach: true})
		create(t, d, &voldb.Volume{ID: "root"})
		for i, c := range []struct {
			atts []wire.AttachmentState
			want string
		}{
			{[]wire.AttachmentState{attachment("a", srv1, "reserved", "", -1)}, "reserved"},
			{[]wire.AttachmentState{attachment("a", srv1, "reserved", "", -1), attachment("b", srv2, "detaching", "/dev/vdc", -1)}, "detaching"},
			{[]wire.AttachmentState{attachment("a", srv1, "attaching", "/dev/vdb", -1), attachment("b", srv2, "detaching", "/dev/vdc", -1)}, "attaching"},
			{[]wire.AttachmentState{attachment("a", srv1, "attaching", "/dev/vdb", -1), attachment("b", srv2, "attached", "/dev/vdc", -1)}, "attached"},
		} {
			apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "c", Version: int64(i + 1), Status: "in-use", Attachments: c.atts}}, nil)
			v, err := voldb.Get(ctx, d, "v1")
			if err != nil || v.AttachStatus != c.want || len(v.Attachments) != len(c.atts) {
				t.Fatalf("case %d: attach_status %q (%v), want %q; %d attachments", i, v.AttachStatus, err, c.want, len(v.Attachments))
			}
		}
		apply(t, d, []wire.VolumeState{{ID: "root", Cell: "c", Version: 1, Status: "in-use",
			Attachments: []wire.AttachmentState{attachment("r", srv1, "attached", "/dev/vda", 0)}}}, nil)
		by, err := voldb.AttachmentsByInstances(ctx, d, []string{srv1})
		if err != nil || len(by[srv1]) != 2 || by[srv1][0].ID != "r" || !by[srv1][0].IsRoot() || by[srv1][1].ID != "a" {
			t.Fatalf("server's attachments: %+v %v", by[srv1], err)
		}
	})
}

// TestStatusChecksRefuseAttached: a conditional status change with
// NoAttachments does not take on a volume with attachments, whatever its
// status says; AttachStatus requires the attach status (begin_detaching).
func TestStatusChecksRefuseAttached(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		create(t, d, &voldb.Volume{ID: "v1"})
		// A copy whose status says available while the mirror has an
		// attachment (as after an admin's reset of the status).
		apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "c", Version: 1, Status: "available",
			Attachments: []wire.AttachmentState{attachment("a", srv1, "attached", "/dev/vdb", -1)}}}, nil)
		set := func(c voldb.StatusChange) bool {
			var ok bool
			if err := d.InTx(ctx, func(tx *db.Tx) error {
				var err error
				ok, err = voldb.SetStatus(ctx, tx, c)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if set(voldb.StatusChange{ID: "v1", From: []string{"available"}, To: "deleting", NoAttachments: true, Now: t0}) {
			t.Fatal("a volume with attachments was set deleting")
		}
		if set(voldb.StatusChange{ID: "v1", From: []string{"available"}, To: "detaching", AttachStatus: "detached", Now: t0}) {
			t.Fatal("attach_status detached matched an attached volume")
		}
		if !set(voldb.StatusChange{ID: "v1", From: []string{"available"}, To: "detaching", AttachStatus: "attached", Now: t0}) {
			t.Fatal("begin_detaching did not take")
		}
		v, _ := voldb.GetAny(ctx, d, "v1")
		if v.Status != "detaching" || v.Version != 1 {
			t.Fatalf("after begin_detaching: %s v%d", v.Status, v.Version)
		}
		// The cell's next state (detached) replaces it.
		apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "c", Version: 2, Status: "available"}}, nil)
		if !set(voldb.StatusChange{ID: "v1", From: []string{"available"}, To: "deleting", NoAttachments: true, Now: t0}) {
			t.Fatal("a detached volume was not set deleting")
		}
	})
}

// TestListAttachments: Cinder's attachments list: by project, filters,
// default order newest first, marker, limit and offset.
func TestListAttachments(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		create(t, d, &voldb.Volume{ID: "v1"})
		create(t, d, &voldb.Volume{ID: "v2"})
		create(t, d, &voldb.Volume{ID: "v3", ProjectID: "p2"})
		a1 := attachment("a1", srv1, "attached", "/dev/vdb", -1)
		a2 := attachment("a2", srv1, "attaching", "/dev/vdc", -1)
		a2.AttachedAt = t0.Add(2 * time.Minute)
		a3 := attachment("a3", srv2, "attached", "/dev/vdb", -1)
		apply(t, d, []wire.VolumeState{
			{ID: "v1", Cell: "c", Version: 1, Status: "in-use", Attachments: []wire.AttachmentState{a1}},
			{ID: "v2", Cell: "c", Version: 1, Status: "attaching", Attachments: []wire.AttachmentState{a2}},
			{ID: "v3", Cell: "c", Version: 1, Status: "in-use", Attachments: []wire.AttachmentState{a3}},
		}, nil)
		ids := func(f voldb.AttachmentFilter, p voldb.Page) []string {
			t.Helper()
			atts, err := voldb.ListAttachments(ctx, d, f, p)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, a := range atts {
				out = append(out, a.ID)
			}
			return out
		}
		for name, c := range map[string]struct {
			f    voldb.AttachmentFilter
			p    voldb.Page
			want []string
		}{
			"project":    {voldb.AttachmentFilter{ProjectID: "p1"}, voldb.Page{}, []string{"a2", "a1"}},
			"all":        {voldb.AttachmentFilter{}, voldb.Page{Sort: []voldb.Sort{{Key: "id"}}}, []string{"a1", "a2", "a3"}},
			"status":     {voldb.AttachmentFilter{Status: "attached"}, voldb.Page{Sort: []voldb.Sort{{Key: "id"}}}, []string{"a1", "a3"}},
			"volume":     {voldb.AttachmentFilter{VolumeID: "v2"}, voldb.Page{}, []string{"a2"}},
			"instance":   {voldb.AttachmentFilter{InstanceUUID: srv2}, voldb.Page{}, []string{"a3"}},
			"marker":     {voldb.AttachmentFilter{}, voldb.Page{Sort: []voldb.Sort{{Key: "id"}}, Marker: "a1"}, []string{"a2", "a3"}},
			"limit":      {voldb.AttachmentFilter{}, voldb.Page{Sort: []voldb.Sort{{Key: "id"}}, Limit: 1, Offset: 1}, []string{"a2"}},
			"far offset": {voldb.AttachmentFilter{}, voldb.Page{Offset: 5}, nil},
		} {
			if got := ids(c.f, c.p); !equal(got, c.want) {
				t.Errorf("%s: %v, want %v", name, got, c.want)
			}
		}
		if _, err := voldb.ListAttachments(ctx, d, voldb.AttachmentFilter{}, voldb.Page{Marker: "nope"}); !errors.Is(err, voldb.ErrMarkerNotFound) {
			t.Errorf("unknown marker: %v", err)
		}
		if _, err := voldb.ListAttachments(ctx, d, voldb.AttachmentFilter{}, voldb.Page{Sort: []voldb.Sort{{Key: "size"}}}); !errors.Is(err, voldb.ErrSortKey) {
			t.Errorf("bad sort key: %v", err)
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
