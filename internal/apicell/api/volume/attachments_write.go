package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/google/uuid"
)

// The writes of Cinder's attachments API (cinder/api/v3/attachments.py,
// its schemas and cinder/volume/api.py attachment_create,
// attachment_update, attachment_delete), for consumers other than the
// Compute API (which attaches through os-volume_attachments). The
// volume's cell holds the attachments: each write is the call
// attachment_write to it (Cinder answers them synchronously), with an
// attachment id made here, so a repeat is recognised. The copy is checked
// first (a refusal asks no cell and writes nothing), the cell checks
// again against its rows, and its answer, the volume's new state, is
// applied to the copy by version before the answer, so the next read
// shows it.
//
// A volume whose cell is down (or a call it does not answer) is a 503
// and nothing is written here. Cinder has no cells: with its volume
// service unreachable, a create with a connector or an update waits for
// the RPC call's timeout and answers a 500 ("Unable to create attachment
// for volume."); here the cell is known to be unreachable, which is the
// 503 Service Unavailable of a service that cannot answer now (as the
// Compute API answers for a down cell), so the client may try again. A
// call that timed out may have been made by the cell all the same: its
// volume_update then brings the attachment into the copy.

const (
	ruleAttCreate   = "volume:attachment_create"
	ruleAttUpdate   = "volume:attachment_update"
	ruleAttDelete   = "volume:attachment_delete"
	ruleAttComplete = "volume:attachment_complete"
)

// attachmentNotFound is Cinder's VolumeAttachmentNotFound.
func attachmentNotFound(id string) error {
	return notFound("Volume attachment could not be found with filter: attachment_id = %s.", id)
}

// getAttachment reads an attachment the caller may see (Cinder's
// project_only read: its volume's project's, any for an admin).
func (h *attachmentsHandler) getAttachment(ctx context.Context, id string) (*voldb.Attachment, error) {
	c := httpkit.CallerFrom(ctx)
	a, err := voldb.GetAttachment(ctx, h.cfg.DB, id)
	if errors.Is(err, voldb.ErrAttachmentNotFound) || (err == nil && !c.Admin && a.ProjectID != c.ProjectID) {
		return nil, attachmentNotFound(id)
	}
	return a, err
}

// allow is Cinder's context.authorize of rule: its 403.
func (h *attachmentsHandler) allow(ctx context.Context, rule string) error {
	if !httpkit.CallerFrom(ctx).Allowed(h.cfg.Policy, rule) {
		return forbidden(rule)
	}
	return nil
}

// uuidLike is oslo's is_uuid_like (Cinder's 'uuid' format): a UUID in
// any of the forms Python's UUID() takes, with or without dashes.
func uuidLike(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil
}

// schemaError is Cinder's validation error of a property at a path
// (ex.path.pop() names the innermost key).
func schemaError(key string, value any, format string, args ...any) error {
	return badRequest("Invalid input for field/attribute %s. Value: %s. %s", key, jsonValue(value), fmt.Sprintf(format, args...))
}

// attRepr is pyRepr of a value decoded into maps: an object's keys
// sorted (Python prints them in the body's order, which a map does not
// keep).
func attRepr(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, pyRepr(k)+": "+attRepr(x[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			parts = append(parts, attRepr(e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return pyRepr(v)
}

// checkObject is Cinder's schema of an object with properties allowed
// and required, at key (top: "" — jsonschema's messages then have no
// path).
func checkObject(key string, v any, allowed, required []string) (map[string]any, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		if key == "" {
			return nil, badRequest("%s is not of type 'object'", attRepr(v))
		}
		return nil, schemaError(key, attRepr(v), "%s is not of type 'object'", attRepr(v))
	}
	fail := func(format string, args ...any) error {
		if key == "" {
			return badRequest(format, args...)
		}
		return schemaError(key, attRepr(obj), format, args...)
	}
	for _, r := range required {
		if _, ok := obj[r]; !ok {
			return nil, fail("'%s' is a required property", r)
		}
	}
	var extra []string
	for k := range obj {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		quoted := make([]string, len(extra))
		for i, k := range extra {
			quoted[i] = "'" + k + "'"
		}
		verb := "was"
		if len(extra) > 1 {
			verb = "were"
		}
		return nil, fail("Additional properties are not allowed (%s %s unexpected)", strings.Join(quoted, ", "), verb)
	}
	return obj, nil
}

// uuidProp reads an optional property of Cinder's uuid type.
func uuidProp(obj map[string]any, key string) (string, error) {
	v, ok := obj[key]
	if !ok {
		return "", nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", schemaError(key, v, "%s is not of type 'string'", attRepr(v))
	}
	if !uuidLike(s) {
		return "", schemaError(key, s, "'%s' is not a 'uuid'", s)
	}
	return s, nil
}

// createRequest is a checked attachment create.
type createRequest struct {
	volumeID, instance, mode string
	connector                json.RawMessage
}

// createBody checks a create's body against Cinder's schema: create
// (3.27) or create_v354 (3.54: mode, rw or ro).
func createBody(r *http.Request) (*createRequest, error) {
	var top any
	if err := decodeBody(r, &top); err != nil {
		return nil, err
	}
	obj, err := checkObject("", top, []string{"attachment"}, []string{"attachment"})
	if err != nil {
		return nil, err
	}
	allowed := []string{"instance_uuid", "connector", "volume_uuid"}
	if requestVersion(r.Context()).atLeast(3, 54) {
		allowed = append(allowed, "mode")
	}
	att, err := checkObject("attachment", obj["attachment"], allowed, []string{"volume_uuid"})
	if err != nil {
		return nil, err
	}
	var req createRequest
	if req.instance, err = uuidProp(att, "instance_uuid"); err != nil {
		return nil, err
	}
	if req.volumeID, err = uuidProp(att, "volume_uuid"); err != nil {
		return nil, err
	}
	if c, ok := att["connector"]; ok && c != nil {
		if _, isObj := c.(map[string]any); !isObj {
			return nil, schemaError("connector", c, "%s is not of type 'object', 'null'", attRepr(c))
		}
		if req.connector, err = json.Marshal(c); err != nil {
			return nil, err
		}
	}
	if m, ok := att["mode"]; ok {
		s, isStr := m.(string)
		if !isStr {
			return nil, schemaError("mode", m, "%s is not of type 'string'", attRepr(m))
		}
		if s != "rw" && s != "ro" {
			return nil, schemaError("mode", s, "'%s' is not one of ['rw', 'ro']", s)
		}
		req.mode = s
	}
	return &req, nil
}

// create is POST /attachments: Cinder's attachment_create, made by the
// volume's cell. 200 with the attachment's detail.
func (h *attachmentsHandler) create(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, err := createBody(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v, err := h.getVolume(ctx, h.cfg.DB, req.volumeID)
	if err == nil {
		err = h.allow(ctx, ruleAttCreate)
	}
	if err == nil {
		err = checkReserve(v, req.instance)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c := httpkit.CallerFrom(ctx)
	// Cinder's readonly admin metadata makes every new attachment ro,
	// whatever the mode asked (its check is the value's truth: the
	// string "False" left by os-update_readonly_flag counts too).
	wr := &wire.AttachmentWrite{Op: wire.AttachmentCreate, AttachmentID: uuid.NewString(), VolumeID: v.ID,
		InstanceUUID: req.instance, Connector: req.connector, Mode: req.mode, ReadOnly: v.ReadOnly != "",
		Multiattach: v.Multiattach, UserID: c.UserID, ProjectID: c.ProjectID}
	st, err := h.write(r, v, wr)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	a, ok := findAttachment(st, wr.AttachmentID)
	if !ok {
		h.fail(w, r, fmt.Errorf("attachment_write create of %s: the answer has no attachment %s", v.ID, wr.AttachmentID))
		return
	}
	h.log.Info("volume attachment created", "request_id", httpkit.RequestID(ctx), "cell", v.Cell, "volume", v.ID,
		"attachment", a.ID, "status", a.Status, "connected", len(req.connector) > 0)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"attachment": attachmentDetail(a)})
}

// checkReserve is Cinder's checks of attachment_create on the copy: a
// volume in an error state, then _attachment_reserve's statuses (in-use
// too for a multiattach volume; in-use or reserved with an attachment of
// the same instance is Cinder's override).
func checkReserve(v *voldb.Volume, instance string) error {
	if strings.Contains(v.Status, "error") {
		return badRequest("Invalid volume: Volume attachments can not be created if the volume is in an error state. The Volume %s currently has a status of: %s ",
			v.ID, v.Status)
	}
	expected := []string{voldb.StatusAvailable, "downloading"}
	if v.Multiattach {
		expected = []string{voldb.StatusAvailable, voldb.StatusInUse, "downloading"}
	}
	if slices.Contains(expected, v.Status) && v.Cell != "" {
		return nil
	}
	if instance != "" && (v.Status == voldb.StatusInUse || v.Status == voldb.AttachReserved) &&
		slices.ContainsFunc(v.Attachments, func(a *voldb.Attachment) bool { return a.InstanceUUID == instance }) {
		return nil
	}
	return badRequest("Invalid volume: Volume %s status must be %s to reserve, but the current status is %s.",
		v.ID, strings.Join(expected, " or "), v.Status)
}

// findAttachment is the attachment id of a volume's state, as the mirror
// holds it.
func findAttachment(st *wire.VolumeState, id string) (*voldb.Attachment, bool) {
	for _, a := range st.Attachments {
		if a.ID == id {
			return mirrorOf(st.ID, a), true
		}
	}
	return nil, false
}

// mirrorOf is an attachment of a volume's state as the mirror reads it.
func mirrorOf(volumeID string, a wire.AttachmentState) *voldb.Attachment {
	mode := a.Mode
	if mode == "" {
		mode = "rw"
	}
	return &voldb.Attachment{ID: a.ID, VolumeID: volumeID, InstanceUUID: a.InstanceUUID, Status: a.Status, Device: a.Device,
		Mode: mode, BDMUUID: a.BDMUUID, Tag: a.Tag, DeleteOnTermination: a.DeleteOnTermination, BootIndex: a.BootIndex,
		AttachedAt: a.AttachedAt, ConnectionInfo: a.ConnectionInfo}
}

// write calls attachment_write on the volume's cell and applies its
// answer to the copy. The cell's refusals become Cinder's faults.
func (h *attachmentsHandler) write(r *http.Request, v *voldb.Volume, wr *wire.AttachmentWrite) (*wire.VolumeState, error) {
	ctx := r.Context()
	if v.Cell == "" {
		// No cell holds the volume (it is being made, or found none):
		// Cinder's reserve refuses its status.
		return nil, badRequest("Invalid volume: Volume %s status must be available to reserve, but the current status is %s.", v.ID, v.Status)
	}
	unavailable := fault(http.StatusServiceUnavailable,
		fmt.Sprintf("The volume service of volume %s (cell %s) is not responding; try again later.", v.ID, v.Cell))
	if h.cfg.DownCells != nil {
		down, err := h.cfg.DownCells.Down(ctx)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(down, func(c string) bool { return cellpath.Contains(c, v.Cell) }) {
			return nil, unavailable
		}
	}
	var ans wire.AttachmentWritten
	err := h.cfg.Calls.Call(ctx, v.Cell, wire.MethodAttachmentWrite, httpkit.RequestID(ctx), wr, &ans)
	var we *wire.Error
	if errors.As(err, &we) {
		switch we.Code {
		case wire.CodeTimeout, wire.CodeNoRoute:
			h.log.Warn("volume cell did not answer attachment_write", "request_id", httpkit.RequestID(ctx), "cell", v.Cell,
				"volume", v.ID, "attachment", wr.AttachmentID, "err", err)
			return nil, unavailable
		case wire.CodeNotFound:
			if wr.Op == wire.AttachmentCreate {
				return nil, volumeNotFound(v.ID)
			}
			return nil, attachmentNotFound(wr.AttachmentID)
		case wire.CodeInvalid:
			return nil, badRequest("Invalid volume: %s", we.Message)
		case wire.CodeConflict:
			if inst, ok := strings.CutPrefix(we.Message, wire.AttachmentOfInstance); ok {
				return nil, novaAttachment(inst)
			}
			return nil, fault(http.StatusConflict, "Resource conflict: "+we.Message)
		case wire.CodeUnknownMethod:
			// A cell of an earlier release makes no attachments.
			return nil, fault(http.StatusConflict, fmt.Sprintf("Resource conflict: the cell %s of volume %s does not make attachments yet.", v.Cell, v.ID))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("attachment_write %s of volume %s: %w", wr.Op, v.ID, err)
	}
	if ans.Volume.ID != v.ID {
		return nil, fmt.Errorf("attachment_write of %s answered the state of volume %q", v.ID, ans.Volume.ID)
	}
	if err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		_, err := voldb.Apply(ctx, tx, []wire.VolumeState{ans.Volume}, nil, h.cfg.Now().UTC())
		return err
	}); err != nil {
		return nil, err
	}
	return &ans.Volume, nil
}

// novaAttachment is Cinder's ConflictNovaUsingAttachment (409).
func novaAttachment(instance string) error {
	return fault(http.StatusConflict, fmt.Sprintf("Detach volume from instance %s using the Compute API", instance))
}

// attachmentVolume reads an attachment (404), its volume (Cinder reads it
// with the caller's context: 404 when not visible) and checks rule.
func (h *attachmentsHandler) attachmentVolume(ctx context.Context, id, rule string) (*voldb.Attachment, *voldb.Volume, error) {
	a, err := h.getAttachment(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	v, err := h.getVolume(ctx, h.cfg.DB, a.VolumeID)
	if err != nil {
		return nil, nil, err
	}
	return a, v, h.allow(ctx, rule)
}

// update is PUT /attachments/{id}: Cinder's attachment_update with the
// connector (schema update: an object of at least one property), made by
// the volume's cell. 200 with the attachment's detail and its
// connection_info.
func (h *attachmentsHandler) update(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	connector, err := updateBody(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	a, v, err := h.attachmentVolume(ctx, id, ruleAttUpdate)
	if err == nil && strings.Contains(v.Status, "error") {
		err = fault(http.StatusConflict, fmt.Sprintf("Resource conflict: Volume attachments can not be updated if the volume is in an error state. The Volume %s currently has a status of: %s ",
			v.ID, v.Status))
	}
	if err == nil && a.BDMUUID != "" {
		err = novaAttachment(a.InstanceUUID)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c := httpkit.CallerFrom(ctx)
	st, err := h.write(r, v, &wire.AttachmentWrite{Op: wire.AttachmentUpdate, AttachmentID: id, VolumeID: v.ID,
		Connector: connector, Multiattach: v.Multiattach, UserID: c.UserID, ProjectID: c.ProjectID})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	na, ok := findAttachment(st, id)
	if !ok {
		h.fail(w, r, attachmentNotFound(id))
		return
	}
	h.log.Info("volume attachment updated", "request_id", httpkit.RequestID(ctx), "cell", v.Cell, "volume", v.ID,
		"attachment", id, "status", na.Status)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"attachment": attachmentDetail(na)})
}

// updateBody checks an update's body against Cinder's schema update.
func updateBody(r *http.Request) (json.RawMessage, error) {
	var top any
	if err := decodeBody(r, &top); err != nil {
		return nil, err
	}
	obj, err := checkObject("", top, []string{"attachment"}, []string{"attachment"})
	if err != nil {
		return nil, err
	}
	att, err := checkObject("attachment", obj["attachment"], []string{"connector"}, []string{"connector"})
	if err != nil {
		return nil, err
	}
	c, isObj := att["connector"].(map[string]any)
	if !isObj {
		return nil, schemaError("connector", att["connector"], "%s is not of type 'object'", attRepr(att["connector"]))
	}
	if len(c) == 0 {
		return nil, schemaError("connector", "{}", "{} does not have enough properties")
	}
	return json.Marshal(c)
}

// delete is DELETE /attachments/{id}: Cinder's attachment_delete, made
// by the volume's cell. 200 with the summaries of the volume's
// attachments left.
//
// An attachment the Compute API made (it has a block device mapping in
// the cell) is refused with Cinder's 409 ConflictNovaUsingAttachment, as
// Cinder's attachment_deletion_allowed refuses a user's delete of an
// attachment Nova uses (bug #2004555): deleting it here would leave the
// volume on the instance's hypervisor and a dangling mapping in the
// cell. The detach is the Compute API's (os-volume_attachments DELETE),
// which does the host's work and takes the mapping with it.
func (h *attachmentsHandler) delete(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	a, err := h.getAttachment(ctx, id)
	if err == nil {
		err = h.allow(ctx, ruleAttDelete)
	}
	if err == nil && a.BDMUUID != "" {
		err = novaAttachment(a.InstanceUUID)
	}
	var v *voldb.Volume
	if err == nil {
		v, err = voldb.Get(ctx, h.cfg.DB, a.VolumeID)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c := httpkit.CallerFrom(ctx)
	st, err := h.write(r, v, &wire.AttachmentWrite{Op: wire.AttachmentDelete, AttachmentID: id, VolumeID: v.ID,
		UserID: c.UserID, ProjectID: c.ProjectID})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	left := make([]map[string]any, 0, len(st.Attachments))
	for _, x := range st.Attachments {
		left = append(left, attachmentSummary(mirrorOf(st.ID, x)))
	}
	h.log.Info("volume attachment deleted", "request_id", httpkit.RequestID(ctx), "cell", v.Cell, "volume", v.ID,
		"attachment", id, "status", st.Status)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"attachments": left})
}

// action is POST /attachments/{id}/action: os-complete (3.44), the
// attachment attached and its volume in-use, made by the volume's cell.
// 204.
func (h *attachmentsHandler) action(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	var top any
	err := decodeBody(r, &top)
	if err == nil {
		obj, _ := top.(map[string]any)
		if _, ok := obj["os-complete"]; !ok {
			name, _, _ := firstKey(obj)
			err = badRequest("There is no such action: %s", name)
		}
	}
	if err == nil && !requestVersion(ctx).atLeast(3, 44) {
		err = notFound("The resource could not be found.")
	}
	if err == nil {
		_, err = checkObject("", top, []string{"os-complete"}, []string{"os-complete"})
	}
	var a *voldb.Attachment
	var v *voldb.Volume
	if err == nil {
		a, v, err = h.attachmentVolume(ctx, id, ruleAttComplete)
	}
	if err == nil && a.BDMUUID != "" {
		err = novaAttachment(a.InstanceUUID)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c := httpkit.CallerFrom(ctx)
	st, err := h.write(r, v, &wire.AttachmentWrite{Op: wire.AttachmentComplete, AttachmentID: id, VolumeID: v.ID,
		UserID: c.UserID, ProjectID: c.ProjectID})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("volume attachment completed", "request_id", httpkit.RequestID(ctx), "cell", v.Cell, "volume", v.ID,
		"attachment", id, "status", st.Status)
	w.WriteHeader(http.StatusNoContent)
}

// firstKey is the first key of an action body in order, as the action's
// name ("" none).
func firstKey(obj map[string]any) (string, any, bool) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return "", nil, false
	}
	slices.Sort(keys)
	return keys[0], obj[keys[0]], true
}
