package volume

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/google/uuid"
)

// snapshotsHandler is /snapshots: create, list, detail, show, update,
// delete, their metadata and the admin actions (os-reset_status,
// os-force_delete). A create writes the snapshot's copy (creating, in the
// volume's cell) and sends volume_action snapshot_create to that cell in
// one transaction; a delete sets "deleting" and sends snapshot_delete.
type snapshotsHandler struct{ *base }

func (h *snapshotsHandler) register(rt *router) {
	if !h.volumesServed() {
		return
	}
	rt.handle("POST /v3/{project_id}/snapshots", ruleSnapCreate, h.create)
	rt.handle("GET /v3/{project_id}/snapshots", ruleSnapGetAll, h.list)
	rt.handle("GET /v3/{project_id}/snapshots/detail", ruleSnapGetAll, h.list)
	rt.handle("GET /v3/{project_id}/snapshots/{id}", ruleSnapGet, h.show)
	rt.handle("PUT /v3/{project_id}/snapshots/{id}", ruleSnapUpdate, h.update)
	rt.handle("DELETE /v3/{project_id}/snapshots/{id}", ruleSnapDelete, h.delete)
	rt.handle("POST /v3/{project_id}/snapshots/{id}/action", "", h.action)
	m := &metadataRoutes{base: h.base, collection: "snapshots",
		read: func(ctx context.Context, q db.Querier, id string, _ bool) (map[string]string, error) {
			s, err := h.getSnapshot(ctx, q, id)
			if err != nil {
				return nil, err
			}
			return s.Metadata, nil
		},
		update: voldb.UpdateSnapshotFields,
		missingKey: func(id, key string) error {
			return notFound("Snapshot %s has no metadata with key %s.", id, key)
		},
	}
	m.register(rt, ruleSnapMetaGet, ruleSnapMetaUpdate, ruleSnapMetaUpdate, ruleSnapMetaDelete)
}

var snapshotCreateKeys = []string{"name", "display_name", "description", "display_description", "volume_id", "force", "metadata"}

func (h *snapshotsHandler) create(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	rid, info := h.reqLog(ctx)
	var top map[string]any
	if err := decodeBody(r, &top); err != nil {
		h.fail(w, r, err)
		return
	}
	raw, ok := top["snapshot"].(map[string]any)
	if !ok {
		h.fail(w, r, badRequest("Missing required element 'snapshot' in request body."))
		return
	}
	for k := range raw {
		if !slices.Contains(snapshotCreateKeys, k) {
			h.fail(w, r, badRequest("Invalid input for field/attribute snapshot. Value: %s. Additional properties are not allowed ('%s' was unexpected)", jsonText(raw), k))
			return
		}
	}
	sb := body(raw)
	volumeID, ok, err := sb.str("volume_id")
	if err == nil && !ok {
		err = badRequest("Invalid input for field/attribute snapshot. Value: %s. 'volume_id' is a required property", jsonText(raw))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var name, desc string
	for _, f := range []struct {
		dst  *string
		keys []string
	}{{&name, []string{"display_name", "name"}}, {&desc, []string{"display_description", "description"}}} {
		for _, k := range f.keys {
			s, ok, err := sb.str(k)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			if ok {
				*f.dst = strings.TrimSpace(s)
			}
		}
	}
	force := false
	if v, ok := sb["force"]; ok && v != nil {
		if force, err = strictBool(v); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	md, _, err := sb.metadata("metadata")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := uuid.NewString()
	var created *voldb.Snapshot
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		now := h.cfg.Now().UTC()
		v, err := h.getVolume(ctx, tx, volumeID)
		if err != nil {
			return err
		}
		if v.Status == voldb.StatusMaintenance {
			return badRequest("Invalid volume: The snapshot cannot be created when the volume is in maintenance mode.")
		}
		allowed, shown := []string{voldb.StatusAvailable}, "available"
		if force {
			allowed, shown = []string{voldb.StatusAvailable, voldb.StatusInUse}, "available, in-use"
		}
		// A conditional update to its own status: it checks the status
		// and holds the volume's row until commit, so a delete of the
		// volume waits for this snapshot.
		ok, err := voldb.SetStatus(ctx, tx, voldb.StatusChange{ID: v.ID, From: allowed, To: v.Status, Now: v.UpdatedAt})
		if err != nil {
			return err
		}
		if !ok {
			return badRequest("Invalid volume: Volume %s status must be %s, but current status is: %s.", v.ID, shown, v.Status)
		}
		if v.Cell == "" {
			return badRequest("Invalid volume: The snapshot cannot be created because volume has not been scheduled to any host.")
		}
		if err := h.checkQuota(ctx, tx, v.ProjectID, quotaAsk{typeName: v.TypeName, snapshots: 1, gigabytes: int64(v.SizeGB)}); err != nil {
			return err
		}
		s := &voldb.Snapshot{ID: id, VolumeID: v.ID, ProjectID: v.ProjectID, UserID: c.UserID, Name: name, Description: desc,
			SizeGB: v.SizeGB, Status: voldb.StatusCreating, Progress: "0%", Cell: v.Cell, Metadata: md, CreatedAt: now}
		if err := voldb.CreateSnapshot(ctx, tx, s); err != nil {
			return err
		}
		if err := h.cfg.Sender.Send(ctx, tx, v.Cell, wire.MethodVolumeAction, rid,
			&wire.VolumeAction{VolumeID: v.ID, Action: wire.SnapshotCreate, SnapshotID: id, CreatedAt: now, Force: force}); err != nil {
			return err
		}
		created = s
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	info("snapshot create accepted", "snapshot", id, "volume", volumeID)
	httpkit.WriteJSON(w, http.StatusAccepted, map[string]any{"snapshot": h.snapshotView(r, created)})
}

// snapshotFilterKeys are the keys a non-admin may filter snapshots by
// (resource_filters.json from 3.31; before it the others are dropped).
var snapshotFilterKeys = []string{"name", "status", "volume_id", "metadata", "availability_zone"}

func (h *snapshotsHandler) list(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	ver := requestVersion(ctx)
	lp, err := parseList(r, voldb.ValidSnapshotSortKey)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	filters := lp.filters
	f := voldb.Filter{ProjectID: c.ProjectID}
	if c.Admin && truthy(filters["all_tenants"]) {
		f.ProjectID = filters["project_id"]
	}
	delete(filters, "all_tenants")
	delete(filters, "project_id")
	if !ver.atLeast(3, 22) {
		delete(filters, "metadata")
	}
	if !c.Admin {
		var invalid []string
		for k := range filters {
			if !slices.Contains(snapshotFilterKeys, k) {
				invalid = append(invalid, k)
			}
		}
		if len(invalid) > 0 && ver.atLeast(3, 31) {
			slices.Sort(invalid)
			h.fail(w, r, badRequest("Invalid filters %s are found in query options.", strings.Join(invalid, ",")))
			return
		}
		for _, k := range invalid {
			delete(filters, k)
		}
	}
	for k, v := range filters {
		switch k {
		case "name", "display_name":
			f.Name = v
		case "status":
			f.Status = v
		case "volume_id":
			f.VolumeID = v
		case "metadata":
			md, err := parseMetadataFilter(v)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			f.Metadata = md
		}
	}
	snaps, err := voldb.ListSnapshots(ctx, h.cfg.DB, f, lp.page)
	if err != nil {
		h.fail(w, r, listError(err, lp.page.Marker))
		return
	}
	out := make([]map[string]any, 0, len(snaps))
	for _, s := range snaps {
		out = append(out, h.snapshotView(r, s))
	}
	resp := map[string]any{"snapshots": out}
	if len(snaps) > 0 && lp.limit <= len(snaps) {
		resp["snapshots_links"] = nextLink(r, c.ProjectID, "snapshots", snaps[len(snaps)-1].ID)
	}
	if lp.withCount {
		n, err := voldb.CountSnapshotsOf(ctx, h.cfg.DB, f)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		resp["count"] = n
	}
	httpkit.WriteJSON(w, http.StatusOK, resp)
}

func (h *snapshotsHandler) show(w http.ResponseWriter, r *http.Request) {
	s, err := h.getSnapshot(r.Context(), h.cfg.DB, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"snapshot": h.snapshotView(r, s)})
}

var snapshotUpdateKeys = []string{"name", "description", "display_name", "display_description"}

func (h *snapshotsHandler) update(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	var top map[string]any
	if err := decodeBody(r, &top); err != nil {
		h.fail(w, r, err)
		return
	}
	raw, ok := top["snapshot"].(map[string]any)
	if !ok {
		h.fail(w, r, badRequest("Missing required element 'snapshot' in request body."))
		return
	}
	for k := range raw {
		if !slices.Contains(snapshotUpdateKeys, k) {
			h.fail(w, r, badRequest("Invalid input for field/attribute snapshot. Value: %s. Additional properties are not allowed ('%s' was unexpected)", jsonText(raw), k))
			return
		}
	}
	if len(raw) == 0 {
		h.fail(w, r, badRequest("Invalid input for field/attribute snapshot. Value: {}. {} does not have enough properties"))
		return
	}
	var f voldb.Fields
	for _, k := range []string{"display_name", "name"} {
		if s, ok, err := body(raw).str(k); err != nil {
			h.fail(w, r, err)
			return
		} else if ok {
			s = strings.TrimSpace(s)
			f.Name = &s
		}
	}
	for _, k := range []string{"display_description", "description"} {
		if s, ok, err := body(raw).str(k); err != nil {
			h.fail(w, r, err)
			return
		} else if ok {
			s = strings.TrimSpace(s)
			f.Description = &s
		}
	}
	var out *voldb.Snapshot
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if _, err := h.getSnapshot(ctx, tx, id); err != nil {
			return err
		}
		f.Now = h.cfg.Now().UTC()
		if err := voldb.UpdateSnapshotFields(ctx, tx, id, f); err != nil {
			return err
		}
		var err error
		out, err = voldb.GetSnapshot(ctx, tx, id)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"snapshot": h.snapshotView(r, out)})
}

func (h *snapshotsHandler) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.deleteSnapshot(r.Context(), r.PathValue("id"), false); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// deleteSnapshot is Cinder's delete_snapshot: available or error (any
// status with force) → deleting, and snapshot_delete to its cell; a
// snapshot with no cell is deleted here alone.
func (b *base) deleteSnapshot(ctx context.Context, id string, force bool) error {
	rid, info := b.reqLog(ctx)
	refused := "Invalid snapshot: Snapshot status must be available or error and must not be part of a group."
	from := []string{voldb.StatusAvailable, voldb.StatusError}
	if force {
		refused, from = "Invalid snapshot: Snapshot must not be part of a group.", nil
	}
	err := b.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		now := b.cfg.Now().UTC()
		s, err := b.getSnapshot(ctx, tx, id)
		if err != nil {
			return err
		}
		if s.Cell == "" {
			if !slices.Contains([]string{voldb.StatusAvailable, voldb.StatusError}, s.Status) {
				return badRequest("%s", refused)
			}
			_, err := voldb.DestroySnapshot(ctx, tx, id, now)
			return err
		}
		ok, err := voldb.SetSnapshotStatus(ctx, tx, id, from, voldb.StatusDeleting, now)
		if err != nil {
			return err
		}
		if !ok {
			return badRequest("%s", refused)
		}
		return b.cfg.Sender.Send(ctx, tx, s.Cell, wire.MethodVolumeAction, rid,
			&wire.VolumeAction{VolumeID: s.VolumeID, Action: wire.SnapshotDelete, SnapshotID: id})
	})
	if err != nil {
		return err
	}
	info("snapshot delete accepted", "snapshot", id, "force", force)
	return nil
}

// snapshotStatuses are the statuses a snapshot's os-reset_status accepts.
var snapshotStatuses = []string{"creating", "available", "deleting", "error", "error_deleting", "backing-up", "restoring"}

func (h *snapshotsHandler) action(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	name, args, err := actionBody(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	switch name {
	case "os-force_delete":
		if !c.Allowed(h.cfg.Policy, ruleSnapAdminForceDel) {
			h.fail(w, r, forbidden(ruleSnapAdminForceDel))
			return
		}
		err = h.deleteSnapshot(ctx, id, true)
	case "os-reset_status":
		if !c.Allowed(h.cfg.Policy, ruleSnapResetStatus) {
			h.fail(w, r, forbidden(ruleSnapResetStatus))
			return
		}
		err = h.resetStatus(ctx, id, args)
	default:
		err = badRequest("There is no such action: %s", name)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// resetStatus is a snapshot's os-reset_status: the copy's status at
// once, and the cell's (volume_action reset_status) when it has one.
func (h *snapshotsHandler) resetStatus(ctx context.Context, id string, args body) error {
	status, ok, err := args.str("status")
	if err != nil {
		return err
	}
	status = strings.ToLower(status)
	if !ok || !slices.Contains(snapshotStatuses, status) {
		return badRequest("Must specify a valid status")
	}
	rid, info := h.reqLog(ctx)
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		s, err := h.getSnapshot(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := voldb.SetSnapshotStatus(ctx, tx, id, nil, status, h.cfg.Now().UTC()); err != nil {
			return err
		}
		if s.Cell == "" {
			return nil
		}
		return h.cfg.Sender.Send(ctx, tx, s.Cell, wire.MethodVolumeAction, rid,
			&wire.VolumeAction{VolumeID: s.VolumeID, Action: wire.VolumeResetStatus, SnapshotID: id, Status: status})
	})
	if err == nil {
		info("snapshot status reset", "snapshot", id, "status", status)
	}
	return err
}
