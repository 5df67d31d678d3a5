package volume

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/google/uuid"
)

// volumeActionsHandler is POST /volumes/{id}/action (Cinder's
// volume_actions and admin_actions extensions): os-extend,
// os-set_bootable, os-update_readonly_flag, os-volume_upload_image, and
// the admin's os-reset_status and os-force_delete. An action that the
// volume's cell carries out sets the copy's transitional status
// (voldb.SetStatus, Cinder's conditional update) and sends volume_action
// in one transaction.
type volumeActionsHandler struct{ *base }

func (h *volumeActionsHandler) register(rt *router) {
	if !h.volumesServed() {
		return
	}
	rt.handle("POST /v3/{project_id}/volumes/{id}/action", "", h.action)
}

// actionBody reads an action request: one key, the action's name, and
// its argument object (null for none).
func actionBody(r *http.Request) (string, body, error) {
	var top map[string]any
	if err := decodeBody(r, &top); err != nil {
		return "", nil, err
	}
	if len(top) == 0 {
		return "", nil, badRequest("Malformed request body")
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	name := keys[0]
	args, _ := top[name].(map[string]any)
	if args == nil {
		args = map[string]any{}
	}
	return name, body(args), nil
}

func (h *volumeActionsHandler) action(w http.ResponseWriter, r *http.Request) {
	name, args, err := actionBody(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	type act struct {
		rule   string
		status int
		do     func(ctx context.Context, id string, args body) (any, error)
	}
	acts := map[string]act{
		"os-extend":               {ruleVolExtend, http.StatusAccepted, h.extend},
		"os-set_bootable":         {ruleVolUpdate, http.StatusOK, h.setBootable},
		"os-update_readonly_flag": {ruleVolReadonly, http.StatusAccepted, h.readonly},
		"os-reset_status":         {ruleVolResetStatus, http.StatusAccepted, h.resetStatus},
		"os-force_delete":         {ruleVolAdminForceDel, http.StatusAccepted, h.forceDelete},
		"os-volume_upload_image":  {ruleVolUploadImage, http.StatusAccepted, h.uploadImage},
		"os-show_image_metadata":  {ruleVolGet, http.StatusOK, h.showImageMetadata},
		"os-set_image_metadata":   {ruleVolImageMetaSet, http.StatusOK, h.setImageMetadata},
		"os-unset_image_metadata": {ruleVolImageMetaRemove, http.StatusOK, h.unsetImageMetadata},
		"os-retype":               {ruleVolGet, http.StatusAccepted, h.retype},
	}
	a, ok := acts[name]
	if !ok {
		h.fail(w, r, badRequest("There is no such action: %s", name))
		return
	}
	if !httpkit.CallerFrom(r.Context()).Allowed(h.cfg.Policy, a.rule) {
		h.fail(w, r, forbidden(a.rule))
		return
	}
	out, err := a.do(r.Context(), id, args)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if out == nil {
		w.WriteHeader(a.status)
		return
	}
	httpkit.WriteJSON(w, a.status, out)
}

// intArg reads an integer argument of at least 1 (Cinder's volume_size
// schema).
func intArg(args body, action, key string) (int, error) {
	v, ok := args[key]
	if !ok {
		return 0, badRequest("Invalid input for field/attribute %s. Value: %s. '%s' is a required property", action, jsonText(args), key)
	}
	n, isInt := intLike(v)
	if !isInt {
		return 0, badRequest("Invalid input for field/attribute %s. Value: %s. %s is not valid under any of the given schemas", key, jsonValue(v), jsonText(v))
	}
	if n < 1 {
		return 0, badRequest("Invalid input for field/attribute %s. Value: %d. %d is less than the minimum of 1", key, n, n)
	}
	return n, nil
}

// extend is os-extend: available → extending, or from 3.42 an in-use
// volume (Cinder's extend_attached_volume, its own policy) → extending
// with its attachments kept. Cinder's order: the new size, the status,
// the per-volume limit, the quota. Then volume_action extend (Attached
// for an in-use volume: the cell extends it under its attachments, and
// the guest sees the new size through the attached file).
func (h *volumeActionsHandler) extend(ctx context.Context, id string, args body) (any, error) {
	newSize, err := intArg(args, "os-extend", "new_size")
	if err != nil {
		return nil, err
	}
	rid, info := h.reqLog(ctx)
	attached := false
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		v, err := h.getVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		from := voldb.StatusChange{ID: id, From: []string{voldb.StatusAvailable}, To: voldb.StatusExtending, NoAttachments: true, Now: h.cfg.Now().UTC()}
		if !requestVersion(ctx).less(extendInUseVersion) && v.Status == voldb.StatusInUse {
			if !httpkit.CallerFrom(ctx).Allowed(h.cfg.Policy, ruleVolExtendAttached) {
				return forbidden(ruleVolExtendAttached)
			}
			attached = true
			from = voldb.StatusChange{ID: id, From: []string{voldb.StatusInUse}, To: voldb.StatusExtending, AttachStatus: "attached", Now: h.cfg.Now().UTC()}
		}
		if newSize <= v.SizeGB {
			return invalidInput("New size for extend must be greater than current size. (current: %d, extended: %d).", v.SizeGB, newSize)
		}
		ok, err := voldb.SetStatus(ctx, tx, from)
		if err != nil {
			return err
		}
		if !ok || v.Cell == "" {
			return badRequest("Invalid volume: Volume %s status must be '{'status': '%s'}' to extend, currently %s.", id, from.From[0], v.Status)
		}
		lim, err := h.limits(ctx, tx, v.ProjectID)
		if err != nil {
			return err
		}
		if l, ok := lim["per_volume_gigabytes"]; ok && l >= 0 && int64(newSize) > l {
			return overQuota("Requested volume size %dG is larger than maximum allowed limit %dG.", newSize, l)
		}
		if err := h.checkQuota(ctx, tx, v.ProjectID, quotaAsk{typeName: v.TypeName, gigabytes: int64(newSize - v.SizeGB)}); err != nil {
			return err
		}
		return h.cfg.Sender.Send(ctx, tx, v.Cell, wire.MethodVolumeAction, rid,
			&wire.VolumeAction{VolumeID: id, Action: wire.VolumeExtend, SizeGB: newSize, Attached: attached})
	})
	if err != nil {
		return nil, err
	}
	info("volume extend accepted", "volume", id, "size_gb", newSize, "attached", attached)
	return nil, nil
}

// extendInUseVersion is Cinder's VOLUME_EXTEND_INUSE: an in-use volume
// may be extended.
var extendInUseVersion = version{3, 42}

// setBootable is os-set_bootable: the copy's flag (the API owns it).
func (h *volumeActionsHandler) setBootable(ctx context.Context, id string, args body) (any, error) {
	v, ok := args["bootable"]
	if !ok {
		return nil, badRequest("Must specify bootable in request.")
	}
	b, err := strictBool(v)
	if err != nil {
		return nil, err
	}
	return nil, h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if _, err := h.getVolume(ctx, tx, id); err != nil {
			return err
		}
		return voldb.UpdateFields(ctx, tx, id, voldb.Fields{Bootable: &b, Now: h.cfg.Now().UTC()})
	})
}

// readonly is os-update_readonly_flag: the admin metadata "readonly" of
// an available volume.
func (h *volumeActionsHandler) readonly(ctx context.Context, id string, args body) (any, error) {
	v, ok := args["readonly"]
	if !ok {
		return nil, badRequest("Must specify readonly in request.")
	}
	b, err := strictBool(v)
	if err != nil {
		return nil, err
	}
	flag := boolText(b)
	return nil, h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		vol, err := h.getVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		if vol.Status != voldb.StatusAvailable {
			return badRequest("Invalid volume: Volume %s status must be available to update readonly flag, but current status is: %s.", id, vol.Status)
		}
		return voldb.UpdateFields(ctx, tx, id, voldb.Fields{ReadOnly: &flag, Now: h.cfg.Now().UTC()})
	})
}

// volumeStatuses are the statuses os-reset_status accepts.
var volumeStatuses = []string{"creating", "available", "reserved", "attaching", "in-use", "detaching", "maintenance",
	"deleting", "error", "error_deleting", "error_extending", "error_restoring", "extending", "uploading", "downloading",
	"retyping", "awaiting-transfer", "backing-up", "restoring-backup", "reverting", "error_managing"}

// resetStatus is the admin's os-reset_status: the copy's status at once,
// and the cell's (volume_action reset_status) when it has one.
func (h *volumeActionsHandler) resetStatus(ctx context.Context, id string, args body) (any, error) {
	status, hasStatus, err := args.str("status")
	if err != nil {
		return nil, err
	}
	attach, hasAttach, err := args.str("attach_status")
	if err != nil {
		return nil, err
	}
	_, hasMig := args["migration_status"]
	if !hasStatus && !hasAttach && !hasMig {
		return nil, badRequest("Must specify 'status', 'attach_status' or 'migration_status' for update.")
	}
	status = strings.ToLower(status)
	if hasStatus {
		if !slices.Contains(volumeStatuses, status) {
			return nil, badRequest("Must specify a valid status")
		}
		// Cinder's list misses a comma: 'error_deleting' 'detaching' is
		// one string, so only these two are refused.
		if status == "deleting" || status == "error_deletingdetaching" {
			return nil, badRequest("Cannot reset-state to %s", status)
		}
	}
	if hasAttach && attach != "attached" && attach != "detached" {
		return nil, badRequest("Must specify a valid attach status")
	}
	rid, info := h.reqLog(ctx)
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		v, err := h.getVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		if !hasStatus {
			return nil
		}
		if status == voldb.StatusInUse {
			atts, err := voldb.VolumeAttachments(ctx, tx, []string{id})
			if err != nil {
				return err
			}
			if len(atts[id]) == 0 {
				return badRequest("Cannot reset-state to in-use because volume does not have any attachments.")
			}
		}
		if _, err := voldb.SetStatus(ctx, tx, voldb.StatusChange{ID: id, To: status, Now: h.cfg.Now().UTC()}); err != nil {
			return err
		}
		if v.Cell == "" {
			return nil
		}
		return h.cfg.Sender.Send(ctx, tx, v.Cell, wire.MethodVolumeAction, rid,
			&wire.VolumeAction{VolumeID: id, Action: wire.VolumeResetStatus, Status: status})
	})
	if err != nil {
		return nil, err
	}
	info("volume status reset", "volume", id, "status", status)
	return nil, nil
}

// forceDelete is the admin's os-force_delete: a delete with force.
func (h *volumeActionsHandler) forceDelete(ctx context.Context, id string, _ body) (any, error) {
	return nil, h.deleteVolume(ctx, id, false, true)
}

var diskFormats = []string{"raw", "vmdk", "vdi", "qcow2", "vhd", "vhdx", "ploop"}

// uploadImage is os-volume_upload_image: available → uploading, a queued
// image made in the image store, and volume_action upload_image to the
// volume's cell, which writes the bytes (image_write) and goes back to
// available.
func (h *volumeActionsHandler) uploadImage(ctx context.Context, id string, args body) (any, error) {
	c := httpkit.CallerFrom(ctx)
	name, ok, err := args.str("image_name")
	if err != nil {
		return nil, err
	}
	if !ok || name == "" {
		return nil, badRequest("No image_name was specified in request.")
	}
	diskFormat, ok, err := args.str("disk_format")
	if err != nil {
		return nil, err
	}
	if !ok {
		diskFormat = "raw"
	}
	if !slices.Contains(diskFormats, diskFormat) {
		return nil, badRequest("Invalid disk-format '%s' is specified. Allowed disk-formats are %s.", diskFormat, strings.Join(diskFormats, ", "))
	}
	containerFormat, ok, err := args.str("container_format")
	if err != nil {
		return nil, err
	}
	if !ok {
		containerFormat = "bare"
	}
	visibility, protected := "private", false
	if requestVersion(ctx).atLeast(3, 1) {
		if s, ok, err := args.str("visibility"); err != nil {
			return nil, err
		} else if ok {
			if !slices.Contains([]string{"community", "public", "private", "shared"}, s) {
				return nil, badRequest("Invalid input for field/attribute visibility. Value: %s. '%s' is not one of ['community', 'public', 'private', 'shared']", s, s)
			}
			visibility = s
		}
		if v, ok := args["protected"]; ok {
			b, err := strictBool(v)
			if err != nil {
				return nil, err
			}
			protected = b
		}
		if visibility == "public" && !c.Allowed(h.cfg.Policy, ruleVolUploadPublic) {
			return nil, forbidden(ruleVolUploadPublic)
		}
	}
	if h.cfg.Images == nil {
		return nil, fmt.Errorf("os-volume_upload_image: no image store configured")
	}
	rid, info := h.reqLog(ctx)
	var resp map[string]any
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		now := h.cfg.Now().UTC()
		v, err := h.getVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		ok, err := voldb.SetStatus(ctx, tx, voldb.StatusChange{ID: id, From: []string{voldb.StatusAvailable}, To: voldb.StatusUploading, NoAttachments: true, Now: now})
		if err != nil {
			return err
		}
		if !ok || v.Cell == "" {
			return badRequest("Invalid volume: Volume %s status must be available", id)
		}
		img := &Image{ID: uuid.NewString(), Name: name, Status: "queued", DiskFormat: diskFormat, ContainerFormat: containerFormat,
			Visibility: visibility, Protected: protected, Properties: map[string]string{}}
		for k, val := range v.ImageMetadata {
			switch k {
			case "image_id", "image_name", "checksum", "container_format", "disk_format", "min_disk", "min_ram", "size":
			default:
				img.Properties[k] = val
			}
		}
		if err := h.cfg.Images.CreateImage(ctx, tx, img, v.ProjectID); err != nil {
			return err
		}
		if err := h.cfg.Sender.Send(ctx, tx, v.Cell, wire.MethodVolumeAction, rid,
			&wire.VolumeAction{VolumeID: id, Action: wire.VolumeUploadImage, ImageID: img.ID}); err != nil {
			return err
		}
		var vt any
		if v.TypeID != "" {
			vt = map[string]any{"id": v.TypeID, "name": v.TypeName}
		}
		resp = map[string]any{
			"id": v.ID, "updated_at": cinderTime(now), "status": voldb.StatusUploading,
			"display_description": v.Description, "size": v.SizeGB, "volume_type": vt, "image_id": img.ID,
			"container_format": containerFormat, "disk_format": diskFormat, "image_name": name,
			"protected": protected, "visibility": visibility,
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	info("volume upload to image accepted", "volume", id, "image", resp["image_id"])
	return map[string]any{"os-volume_upload_image": resp}, nil
}
