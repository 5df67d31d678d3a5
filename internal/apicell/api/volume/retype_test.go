package volume_test

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestVolumeRetype: os-retype (gophercloud's ChangeType) changes the
// copy's type at once, its multiattach flag with it, and answers 202; the
// status stays. Cinder's refusals: the same type again, a multiattach
// change of a volume not available, the new type's quota, a type that
// does not exist, bad bodies; each writes nothing. No message goes to the
// cell.
func TestVolumeRetype(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	id := e.available(map[string]any{"size": 2})
	n0 := len(e.sent.all())
	act := func(body map[string]any) *response {
		return e.send("POST", e.demoPath("/volumes/"+id+"/action"), e.demo, body)
	}
	e.quotas.set("volumes_gold", 0)
	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		msg    string
	}{
		{"no new type", map[string]any{"os-retype": map[string]any{}}, 400, "Invalid input for field/attribute os-retype. Value: {}. 'new_type' is a required property"},
		{"bad policy", map[string]any{"os-retype": map[string]any{"new_type": "gold", "migration_policy": "always"}}, 400, "Invalid input for field/attribute migration_policy. Value: always. 'always' is not one of ['on-demand', 'never']"},
		{"extra", map[string]any{"os-retype": map[string]any{"new_type": "gold", "x": 1}}, 400, `Invalid input for field/attribute os-retype. Value: {"new_type":"gold","x":1}. Additional properties are not allowed ('x' was unexpected)`},
		{"same type", map[string]any{"os-retype": map[string]any{"new_type": "__DEFAULT__"}}, 400, "Invalid volume: Retype needs volume to be in available or in-use state, not be part of an active migration or a consistency group, requested type has to be different that the one from the volume, and for in-use volumes front-end qos specs cannot change."},
		{"over the type's quota", map[string]any{"os-retype": map[string]any{"new_type": "gold"}}, 413, "Maximum number of volumes allowed (0) exceeded for quota 'volumes_gold'."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := map[int]string{400: "badRequest", 404: "itemNotFound", 413: "overLimit"}[tc.status]
			if msg := act(tc.body).fault(t, tc.status, name); msg != tc.msg {
				t.Errorf("%q, want %q", msg, tc.msg)
			}
		})
	}
	if msg := act(map[string]any{"os-retype": map[string]any{"new_type": "platinum"}}).fault(t, 404, "itemNotFound"); msg != "Volume type with name platinum could not be found." {
		t.Errorf("retype to a type that does not exist: %q", msg)
	}
	if row := e.volumeRow(id); row.TypeName != "__DEFAULT__" || row.Multiattach {
		t.Fatalf("refused retypes changed the volume: %+v", row)
	}

	e.quotas.set("volumes_gold", 5)
	vc := e.gc("demo", "pw-demo", "demo")
	ctx := context.Background()
	if err := volumes.ChangeType(ctx, vc, id, volumes.ChangeTypeOpts{NewType: "gold", MigrationPolicy: volumes.MigrationPolicyNever}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	v, err := volumes.Get(ctx, vc, id).Extract()
	if err != nil || v.VolumeType != "gold" || !v.Multiattach || v.Status != "available" {
		t.Errorf("after the retype: %+v %v, want gold, multiattach, available", v, err)
	}

	// An in-use volume keeps its multiattach: a retype that would change it
	// is refused.
	e.cellSays([]wire.VolumeState{{ID: id, Cell: cell1, Version: 2, Status: "in-use", SizeGB: 2,
		Attachments: []wire.AttachmentState{{ID: "a7000000-0000-4000-8000-000000000001", InstanceUUID: "11111111-0000-4000-8000-000000000001",
			Status: "attached", Device: "/dev/vdb", Mode: "rw", BootIndex: -1}}}}, nil)
	if msg := act(map[string]any{"os-retype": map[string]any{"new_type": "__DEFAULT__"}}).fault(t, 400, "badRequest"); msg !=
		"Invalid input received: Invalid volume_type passed, retypes affecting multiattach are only allowed on available volumes, the specified volume however currently has a status of: in-use." {
		t.Errorf("retype of an in-use volume changing multiattach: %q", msg)
	}
	if n := len(e.sent.all()); n != n0 {
		t.Errorf("retypes sent %d messages to the cell, want none", n-n0)
	}
}
