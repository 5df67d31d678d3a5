package volume

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
)

// Scheduler hints of a volume create (Cinder's OS-SCH-HNT:scheduler_hints,
// or the volume's own scheduler_hints). A volume belongs to one cell and
// a server attaches only volumes of its own, so the hints that place a
// volume near a server or near other volumes name its cell:
//
//   - local_to_instance (Cinder's InstanceLocalityFilter): the server's
//     cell;
//   - same_host (SameBackendFilter): the cell of the volumes named.
//
// A hint the cell cannot follow (a server not visible to the caller or
// not in a cell yet, volumes in two cells, a hint against another) leaves
// the volume in status error, as Cinder's scheduler does when its filters
// leave no backend. different_host (DifferentBackendFilter) is not
// followed: a cell's volumes share one backend, and placing a volume
// elsewhere than a volume's cell is what the room of the cells already
// decides; it is checked (volume ids) and otherwise has no effect.
type volumeHints struct {
	localTo  string
	sameHost []string
	given    bool
}

// parseHints reads the hints of a create: top is the whole body, vb the
// volume object.
func parseHints(top map[string]any, vb map[string]any) (*volumeHints, error) {
	raw, ok := top["OS-SCH-HNT:scheduler_hints"]
	if !ok {
		raw, ok = vb["scheduler_hints"]
	}
	h := &volumeHints{}
	if !ok || raw == nil {
		return h, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, badRequest("Invalid input for field/attribute OS-SCH-HNT:scheduler_hints. Value: %s. %s is not of type 'object'", jsonText(raw), jsonValue(raw))
	}
	h.given = true
	if v, ok := m["local_to_instance"]; ok {
		s, isStr := v.(string)
		if _, err := uuid.Parse(s); !isStr || err != nil {
			return nil, badRequest("Invalid input for field/attribute local_to_instance. Value: %s. %s is not a 'uuid'", jsonText(v), jsonValue(v))
		}
		h.localTo = s
	}
	for _, key := range []string{"same_host", "different_host"} {
		v, ok := m[key]
		if !ok {
			continue
		}
		var ids []string
		switch x := v.(type) {
		case string:
			ids = []string{x}
		case []any:
			for _, e := range x {
				s, _ := e.(string)
				ids = append(ids, s)
			}
		default:
			return nil, badRequest("Invalid input for field/attribute %s. Value: %s. %s is not valid under any of the given schemas", key, jsonText(v), jsonValue(v))
		}
		for _, id := range ids {
			if _, err := uuid.Parse(id); err != nil {
				return nil, badRequest("Invalid input for field/attribute %s. Value: %s. %s is not valid under any of the given schemas", key, jsonText(v), jsonValue(v))
			}
		}
		if key == "same_host" {
			h.sameHost = ids
		}
	}
	return h, nil
}

// cell is the cell the hints name ("" : none), or ok false when they
// cannot be followed.
func (h *volumeHints) cell(ctx context.Context, q db.Querier) (cell string, ok bool, err error) {
	c := httpkit.CallerFrom(ctx)
	want := func(next string) bool {
		if next == "" || (cell != "" && cell != next) {
			return false
		}
		cell = next
		return true
	}
	if h.localTo != "" {
		in, err := apidb.Get(ctx, q, h.localTo)
		if err != nil && !errors.Is(err, notfound.Err) {
			return "", false, err
		}
		if err != nil || (!c.Admin && in.ProjectID != c.ProjectID) {
			return "", false, nil
		}
		if !want(in.Cell) {
			return "", false, nil
		}
	}
	for _, id := range h.sameHost {
		v, err := voldb.Get(ctx, q, id)
		if err != nil && !errors.Is(err, notfound.Err) {
			return "", false, err
		}
		if err != nil || (!c.Admin && v.ProjectID != c.ProjectID) {
			return "", false, nil
		}
		if !want(v.Cell) {
			return "", false, nil
		}
	}
	return cell, true, nil
}
