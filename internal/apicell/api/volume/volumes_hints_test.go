package volume_test

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestVolumeCreateHints: same_host sends the volume to the cell of the
// volumes named; a hint no cell can follow (a server nobody has, volumes
// in two cells) leaves the volume in error with nothing sent; a hint that
// is not a uuid is a 400 that writes nothing.
func TestVolumeCreateHints(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	a := e.available(map[string]any{"size": 1})
	e.cellSays([]wire.VolumeState{{ID: a, Cell: cell1, Version: 5, Status: "available", SizeGB: 1}}, nil)
	b := e.createVolume(map[string]any{"size": 1})
	e.cellSays([]wire.VolumeState{{ID: b, Cell: "api!c2", Version: 1, Status: "available", SizeGB: 1}}, nil)
	before := len(e.sent.all())

	r := e.send("POST", e.demoPath("/volumes"), e.demo, map[string]any{"volume": map[string]any{"size": 1},
		"OS-SCH-HNT:scheduler_hints": map[string]any{"same_host": a}})
	id := r.json(t, 202)["volume"].(map[string]any)["id"].(string)
	sent := e.sent.all()
	if len(sent) != before+1 {
		t.Fatalf("sent %d messages, want 1", len(sent)-before)
	}
	if m := sent[len(sent)-1]; m.target != cell1 || m.payload.(*wire.VolumeCreate).TargetCell != cell1 || m.payload.(*wire.VolumeCreate).Volume.ID != id {
		t.Errorf("same_host: sent to %s %+v, want the cell of %s", m.target, m.payload, a)
	}

	for what, hints := range map[string]map[string]any{
		"a server nobody has":  {"local_to_instance": "9b7e4a52-5ab0-4f55-a8f6-5d0e4b8b1111"},
		"volumes in two cells": {"same_host": []any{a, b}},
	} {
		n := len(e.sent.all())
		r := e.send("POST", e.demoPath("/volumes"), e.demo, map[string]any{"volume": map[string]any{"size": 1},
			"OS-SCH-HNT:scheduler_hints": hints})
		id := r.json(t, 202)["volume"].(map[string]any)["id"].(string)
		if row := e.volumeRow(id); row.Status != "error" || row.Cell != "" {
			t.Errorf("%s: the volume is %s in %q, want error in no cell", what, row.Status, row.Cell)
		}
		if len(e.sent.all()) != n {
			t.Errorf("%s: a message was sent", what)
		}
	}

	vols, snaps := e.rows()
	r = e.send("POST", e.demoPath("/volumes"), e.demo, map[string]any{"volume": map[string]any{"size": 1},
		"OS-SCH-HNT:scheduler_hints": map[string]any{"local_to_instance": "vm-1"}})
	r.json(t, 400)
	if v, s := e.rows(); v != vols || s != snaps {
		t.Errorf("a bad hint wrote rows")
	}
}
