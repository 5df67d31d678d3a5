package compute

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// volumeAttachmentsHandler is /servers/{id}/os-volume_attachments: the
// volumes attached to a server, read from the volume copy's mirror of the
// attachments (voldb), which the server's cell keeps up to date with its
// volume_update; attached by the call attach_volume to the server's cell
// (which holds both the block device mapping and the attachment and
// answers the device), and detached by the durable detach_volume sent in
// the transaction that sets the copy's volume "detaching". The attachment
// "id" of the routes is the volume id, as Nova's.
type volumeAttachmentsHandler struct {
	*base
	servers *serversHandler
}

// The rules of os-volume_attachments (nova/policies/volumes_attachments.py).
const (
	ruleVolAttIndex  = "os_compute_api:os-volumes-attachments:index"
	ruleVolAttShow   = "os_compute_api:os-volumes-attachments:show"
	ruleVolAttCreate = "os_compute_api:os-volumes-attachments:create"
	ruleVolAttUpdate = "os_compute_api:os-volumes-attachments:update"
	ruleVolAttSwap   = "os_compute_api:os-volumes-attachments:swap"
	ruleVolAttDelete = "os_compute_api:os-volumes-attachments:delete"
)

// The states a volume may be attached or detached in (Nova's
// check_instance_state of attach_volume and detach_volume).
var (
	attachVolumeState = vmstate.Action{Name: "attach_volume", VMStates: []string{vmstate.Active, vmstate.Paused, vmstate.Stopped,
		vmstate.Resized, vmstate.SoftDeleted, vmstate.Shelved, vmstate.ShelvedOffloaded}}
	detachVolumeState = vmstate.Action{Name: "detach_volume", VMStates: []string{vmstate.Active, vmstate.Paused, vmstate.Stopped,
		vmstate.Resized, vmstate.SoftDeleted, vmstate.Shelved, vmstate.ShelvedOffloaded}}
)

// maxDiskDevices is the most disk devices the cell gives an instance
// (vda … vdz: libvirt's virtio count, Nova's TooManyDiskDevices).
const maxDiskDevices = 26

func (h *volumeAttachmentsHandler) register(rt *router) {
	rt.handle("GET /v2.1/servers/{id}/os-volume_attachments", "", h.index)
	rt.handle("POST /v2.1/servers/{id}/os-volume_attachments", "", h.create)
	rt.handle("GET /v2.1/servers/{id}/os-volume_attachments/{volume_id}", "", h.show)
	rt.handle("PUT /v2.1/servers/{id}/os-volume_attachments/{volume_id}", "", h.update)
	rt.handle("DELETE /v2.1/servers/{id}/os-volume_attachments/{volume_id}", "", h.delete)
}

// loadFor is Nova's common.get_instance then context.can(rule) on the
// server's project.
func (h *volumeAttachmentsHandler) loadFor(r *http.Request, rule string) (*apidb.Instance, error) {
	in, err := h.servers.loadServer(r)
	if err != nil {
		return nil, err
	}
	if err := h.authorize(r.Context(), rule, policy.Target{"project_id": in.ProjectID}); err != nil {
		return nil, err
	}
	return in, nil
}

// volumeAttachmentView is Nova's _translate_attachment_detail_view for
// the request's microversion: tag from 2.70, delete_on_termination from
// 2.79, and from 2.89 attachment_id and bdm_uuid instead of id; device is
// left out when the mapping has none.
func volumeAttachmentView(r *http.Request, a *voldb.Attachment) map[string]any {
	v := map[string]any{"volumeId": a.VolumeID, "serverId": a.InstanceUUID}
	if !atLeast(r, 89) {
		v["id"] = a.VolumeID
	}
	if a.Device != "" {
		v["device"] = a.Device
	}
	if atLeast(r, 70) {
		v["tag"] = nullable(a.Tag)
	}
	if atLeast(r, 79) {
		v["delete_on_termination"] = a.DeleteOnTermination
	}
	if atLeast(r, 89) {
		v["attachment_id"] = a.ID
		v["bdm_uuid"] = a.BDMUUID
	}
	return v
}

// notAttached is Nova's 404 for a volume the server has no mapping of
// (server is the id of the URL).
func notAttached(server, volume string) error {
	return notFound("Instance %s is not attached to volume %s", server, volume)
}

// index is GET /servers/{id}/os-volume_attachments: the server's
// attachments, paged by limit and offset (Nova's common.limited).
func (h *volumeAttachmentsHandler) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	if atLeast(r, 75) {
		if err := checkQuery(q, "limit", "offset"); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	limit, err := queryLimit(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if limit == 0 {
		limit = 1000 // common.limited: a limit of 0 is max_limit
	}
	offset, err := queryOffset(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	in, err := h.loadFor(r, ruleVolAttIndex)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	byInstance, err := voldb.AttachmentsByInstances(ctx, h.cfg.DB, []string{in.UUID})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	atts := byInstance[in.UUID]
	atts = atts[min(offset, len(atts)):]
	atts = atts[:min(limit, len(atts))]
	out := make([]map[string]any, 0, len(atts))
	for _, a := range atts {
		out = append(out, volumeAttachmentView(r, a))
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volumeAttachments": out})
}

// show is GET /servers/{id}/os-volume_attachments/{volume_id}.
func (h *volumeAttachmentsHandler) show(w http.ResponseWriter, r *http.Request) {
	in, err := h.loadFor(r, ruleVolAttShow)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	vol := r.PathValue("volume_id")
	a, err := voldb.InstanceVolumeAttachment(r.Context(), h.cfg.DB, in.UUID, vol)
	if errors.Is(err, voldb.ErrAttachmentNotFound) {
		err = notAttached(r.PathValue("id"), vol)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volumeAttachment": volumeAttachmentView(r, a)})
}

// devicePattern is the device of a body (Nova's match_device pattern,
// matched as jsonschema does, by search).
var devicePattern = regexp.MustCompile(`(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$`)

const devicePatternText = `(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$`

// checkDevice is the schema of device: a string matching the pattern,
// or null.
func checkDevice(v any) error {
	if v == nil {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		return invalid("device", v, "%s is not of type 'string', 'null'", pyRepr(v))
	}
	if !devicePattern.MatchString(s) {
		return invalid("device", v, "%s does not match '%s'", pyRepr(s), devicePatternText)
	}
	return nil
}

// checkUUIDField is parameter_types' uuid format of a field.
func checkUUIDField(field string, v any) error {
	s, ok := v.(string)
	if !ok {
		return invalid(field, v, "%s is not of type 'string'", pyRepr(v))
	}
	if !uuidRE.MatchString(s) {
		return invalid(field, v, "%s is not a 'uuid'", pyRepr(v))
	}
	return nil
}

// boolValue is a checked boolean field's value (oslo's strict
// bool_from_string of a string).
func boolValue(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		ok, _ := strictBool(b)
		return ok
	}
	return false
}

// volumeAttachmentBody is a checked body of POST or PUT.
type volumeAttachmentBody struct {
	raw      map[string]any
	volumeID string
}

// parseVolumeAttachment checks {"volumeAttachment": {...}} against the
// schema whose properties are allowed (create, create_v249, create_v279,
// update, update_v285).
func parseVolumeAttachment(w http.ResponseWriter, r *http.Request, allowed []string) (*volumeAttachmentBody, error) {
	body, err := readObject(w, r)
	if err != nil {
		return nil, err
	}
	att, err := objectField(body, "volumeAttachment", allowed, []string{"volumeId"}, func(m map[string]any) error {
		for _, k := range []string{"volumeId", "serverId", "id"} {
			if v, ok := m[k]; ok && slices.Contains(allowed, k) {
				if err := checkUUIDField(k, v); err != nil {
					return err
				}
			}
		}
		if v, ok := m["device"]; ok && slices.Contains(allowed, "device") {
			if err := checkDevice(v); err != nil {
				return err
			}
		}
		if v, ok := m["tag"]; ok && slices.Contains(allowed, "tag") {
			if msg := tagError(v); msg != "" {
				return invalid("tag", v, "%s", msg)
			}
		}
		if v, ok := m["delete_on_termination"]; ok && slices.Contains(allowed, "delete_on_termination") {
			if err := checkBoolean("delete_on_termination", v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &volumeAttachmentBody{raw: att, volumeID: att["volumeId"].(string)}, nil
}

// checkShelvedVersion is Nova's _check_request_version: below 2.20 a
// shelved server has no volume attached or detached (409).
func checkShelvedVersion(r *http.Request, in *apidb.Instance, method string) error {
	if (in.VMState == vmstate.Shelved || in.VMState == vmstate.ShelvedOffloaded) && !atLeast(r, 20) {
		return conflict("Cannot '%s' instance %s while it is in vm_state %s", method, r.PathValue("id"), in.VMState)
	}
	return nil
}

// checkVolumeState is Nova's check_instance_lock and check_instance_state
// of attach_volume or detach_volume, on the API cell's copy.
func checkVolumeState(ctx context.Context, in *apidb.Instance, st vmstate.Action) error {
	if err := checkLocked(ctx, in); err != nil {
		return err
	}
	if err := st.Check(in.UUID, in.VMState, in.TaskState); err != nil {
		return fault(http.StatusConflict, err.Error())
	}
	if in.Cell == "" {
		return conflict("Instance %s is not ready yet", in.UUID)
	}
	return nil
}

// visibleVolume is the volume as Nova reads it from Cinder with the
// caller's token: another project's is not found (an admin sees all).
func (h *volumeAttachmentsHandler) visibleVolume(ctx context.Context, q db.Querier, id string) (*voldb.Volume, error) {
	v, err := voldb.Get(ctx, q, id)
	c := httpkit.CallerFrom(ctx)
	if errors.Is(err, voldb.ErrNotFound) || (err == nil && !c.Admin && v.ProjectID != c.ProjectID) {
		return nil, notFound("Volume %s could not be found.", id)
	}
	return v, err
}

// cinderBadRequest is a Cinder 400 as Nova's cinderclient words it
// (InvalidInput's reason: the fault's message, its code and Cinder's
// request id, the API's here).
func cinderBadRequest(ctx context.Context, msg string) string {
	return "Invalid input received: " + msg + " (HTTP 400) (Request-ID: " + httpkit.RequestID(ctx) + ")"
}

// create is POST /servers/{id}/os-volume_attachments: Nova's checks on the
// API cell's copies, then the call attach_volume to the server's cell,
// which checks again against its own rows, reserves the device and
// answers it with the volume's new state, which the copy takes before the
// answer (showAttach). 200 with the attachment (below 2.101, Nova waits
// for the device).
func (h *volumeAttachmentsHandler) create(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	allowed := []string{"volumeId", "device"}
	if atLeast(r, 49) {
		allowed = append(allowed, "tag")
	}
	if atLeast(r, 79) {
		allowed = append(allowed, "delete_on_termination")
	}
	body, err := parseVolumeAttachment(w, r, allowed)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	in, err := h.loadFor(r, ruleVolAttCreate)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	device, _ := body.raw["device"].(string)
	tag, _ := body.raw["tag"].(string)
	dot := boolValue(body.raw["delete_on_termination"])
	if err := checkShelvedVersion(r, in, "attach_volume"); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkVolumeState(ctx, in, attachVolumeState); err != nil {
		h.fail(w, r, err)
		return
	}
	v, err := h.visibleVolume(ctx, h.cfg.DB, body.volumeID)
	var move *wire.VolumeMove
	if err == nil {
		move, err = h.checkAttachable(r, in, v, tag)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c := httpkit.CallerFrom(ctx)
	req := &wire.AttachVolume{InstanceUUID: in.UUID, VolumeID: v.ID, AttachmentID: uuid.NewString(), BDMUUID: uuid.NewString(),
		Device: device, Tag: tag, DeleteOnTermination: dot, UserID: c.UserID, ProjectID: c.ProjectID, Move: move}
	var ans wire.AttachVolumeAnswer
	if err := h.callInstanceCell(r, in, wire.MethodAttachVolume, req, &ans); err != nil {
		h.fail(w, r, h.attachRefused(ctx, err, in, v, device))
		return
	}
	if err := h.showAttach(ctx, v, &ans); err != nil {
		h.log.Warn("showing the attach on the volume's copy", "request_id", httpkit.RequestID(ctx), "volume", v.ID, "err", err)
	}
	h.log.Info("volume attached", "request_id", httpkit.RequestID(ctx), "cell", in.Cell, "instance", in.UUID,
		"volume", v.ID, "attachment", req.AttachmentID, "device", ans.Device)
	out := map[string]any{"id": v.ID, "serverId": r.PathValue("id"), "volumeId": v.ID, "device": nullable(ans.Device)}
	if atLeast(r, 70) {
		out["tag"] = nullable(tag)
	}
	if atLeast(r, 79) {
		out["delete_on_termination"] = dot
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volumeAttachment": out})
}

// showAttach makes the copy of volume v show the attach the server's
// cell answered, before the API answers: Nova returns once Cinder has
// reserved the volume, so a delete or another attach that follows is
// refused, while the cell's volume_update of the attach may arrive late.
// The answer's state is applied by version: the queued update changes
// nothing when it comes, and an older one (late, repeated or reordered)
// cannot undo it. A move, or a cell of an earlier release, answers no
// state: the copy is then reserved (attaching, its version kept) if it is
// still as the checks saw it (the volume's cell and version), and the
// cells' next state replaces it (for a move: the server's cell's takeover
// with moved_from, or the volume's cell's row when the move fails).
// Nothing is written before the call: a reservation lost with this
// process (killed before the answer) would leave the copy attaching with
// no cell state ever to replace it. The volume's cell serialises moves
// (its row locked by the first volume_export; a second move is refused
// there and undone by its cell).
func (h *volumeAttachmentsHandler) showAttach(ctx context.Context, v *voldb.Volume, ans *wire.AttachVolumeAnswer) error {
	if ans.Volume != nil && ans.Volume.ID != v.ID {
		return fmt.Errorf("attach_volume of %s answered the state of volume %q", v.ID, ans.Volume.ID)
	}
	return h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		now := h.cfg.Now().UTC()
		if ans.Volume != nil {
			_, err := voldb.Apply(ctx, tx, []wire.VolumeState{*ans.Volume}, nil, now)
			return err
		}
		_, err := voldb.ReserveAttaching(ctx, tx, v.ID, v.Cell, v.Version, now)
		return err
	})
}

// checkAttachable is the rest of Nova's attach_volume before the
// conductor, then check_attach_and_reserve_volume, on the copies: not
// attached already, what a shelved-offloaded server or a multiattach
// volume cannot have, the same cell (a cell attaches only its own
// volumes) or a volume that can move to the server's cell (movable; the
// move is returned), and Cinder's reserve (available).
func (h *volumeAttachmentsHandler) checkAttachable(r *http.Request, in *apidb.Instance, v *voldb.Volume, tag string) (*wire.VolumeMove, error) {
	err := h.checkAttachableCopy(r, in, v, tag)
	if err == nil || !errors.Is(err, errOtherCell) {
		return nil, err
	}
	move, merr := h.movable(r.Context(), in, v)
	if merr != nil || move == nil {
		if merr == nil {
			merr = crossZone(in, v)
		}
		return nil, merr
	}
	return move, nil
}

// errOtherCell is a volume of a cell other than the server's.
var errOtherCell = errors.New("the volume is in another cell")

// crossZone is Nova's refusal of a volume in another zone
// (cross_az_attach = False), which a volume of another cell that cannot
// move gets.
func crossZone(in *apidb.Instance, v *voldb.Volume) error {
	return bad("Invalid volume: Instance %s and volume %s are not in the same availability_zone. Instance is in %s. Volume is in %s",
		in.UUID, v.ID, in.AvailabilityZone, v.AvailabilityZone)
}

// movable is the move of a volume of another cell to the server's, when
// it can move (nil when not): in the same availability zone as the
// server, available with no attachment, no snapshot (Cinder refuses to
// migrate a volume that has some) and not multiattach. The server's cell
// checks it serves the volume's storage zone, and the volume's cell
// checks its own row when the move begins.
func (h *volumeAttachmentsHandler) movable(ctx context.Context, in *apidb.Instance, v *voldb.Volume) (*wire.VolumeMove, error) {
	if v.AvailabilityZone != in.AvailabilityZone || v.Status != voldb.StatusAvailable || len(v.Attachments) > 0 || v.Multiattach {
		return nil, nil
	}
	n, err := voldb.CountSnapshots(ctx, h.cfg.DB, v.ID)
	if err != nil || n > 0 {
		return nil, err
	}
	return &wire.VolumeMove{From: v.Cell, Version: v.Version, SizeGB: v.SizeGB, AvailabilityZone: v.AvailabilityZone,
		TypeID: v.TypeID, TypeName: v.TypeName, ProjectID: v.ProjectID, UserID: v.UserID}, nil
}

// checkAttachableCopy is checkAttachable's checks of the copies; a volume
// of another cell is errOtherCell.
func (h *volumeAttachmentsHandler) checkAttachableCopy(r *http.Request, in *apidb.Instance, v *voldb.Volume, tag string) error {
	if len(v.Attachments) > 0 {
		if !v.Multiattach {
			ids := make([]string, 0, len(v.Attachments))
			for _, a := range v.Attachments {
				ids = append(ids, a.InstanceUUID)
			}
			return bad("Invalid volume: volume %s is already attached to instances: %s", v.ID, strings.Join(ids, " "))
		}
		for _, a := range v.Attachments {
			if a.InstanceUUID == in.UUID {
				return bad("Invalid volume: volume %s already attached", v.ID)
			}
		}
	}
	if in.VMState == vmstate.ShelvedOffloaded {
		if tag != "" {
			return bad("Tagged volume attachment is not supported for shelved-offloaded instances.")
		}
		if v.Multiattach {
			return bad("Attaching multiattach volumes is not supported for shelved-offloaded instances.")
		}
	}
	if v.Multiattach && !atLeast(r, 60) {
		return bad("Multiattach volumes are only supported starting with compute API version 2.60.")
	}
	if v.Cell != "" && v.Cell != in.Cell {
		return errOtherCell
	}
	if v.Status != voldb.StatusAvailable || v.Cell == "" {
		return reserveRefused(r.Context(), v.ID, v.Status)
	}
	return nil
}

// reserveRefusal is Cinder's attachment_create refusal of a volume not
// available (its _attachment_reserve's InvalidVolume, a 400) as Nova's
// cinder API raises it: InvalidInput, whose text this is. An attach
// answers it as it is (reserveRefused); a create's _validate_bdm wraps it
// in InvalidVolume (bootReserveRefused).
func reserveRefusal(ctx context.Context, volume, status string) string {
	return cinderBadRequest(ctx, "Invalid volume: Volume "+volume+
		" status must be available or downloading to reserve, but the current status is "+status+".")
}

// reserveRefused is the attach's answer to reserveRefusal (400).
func reserveRefused(ctx context.Context, volume, status string) error {
	return bad("%s", reserveRefusal(ctx, volume, status))
}

// attachRefused turns the cell's refusal of attach_volume (code
// conflict, the reason in the message) into Nova's status and text; any
// other error is returned as it is (the one table words it).
func (h *volumeAttachmentsHandler) attachRefused(ctx context.Context, err error, in *apidb.Instance, v *voldb.Volume, device string) error {
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeConflict {
		return err
	}
	switch we.Message {
	case wire.AttachReasonInstanceNotFound:
		return notFound("Instance %s could not be found.", in.UUID)
	case wire.AttachReasonInstanceState:
		return conflict("Cannot 'attach_volume' instance %s while it is in vm_state %s", in.UUID, in.VMState)
	case wire.AttachReasonVolumeNotFound:
		return notFound("Volume %s could not be found.", v.ID)
	case wire.AttachReasonVolumeStatus:
		// The cell's row is newer than the copy: the copy's status, read
		// again, is the best known.
		status := v.Status
		if cur, err := voldb.Get(ctx, h.cfg.DB, v.ID); err == nil {
			status = cur.Status
		}
		return reserveRefused(ctx, v.ID, status)
	case wire.AttachReasonAlreadyAttached:
		return bad("Invalid volume: volume %s already attached", v.ID)
	case wire.AttachReasonDeviceInUse:
		return conflict("The supplied device path (%s) is in use.", device)
	case wire.AttachReasonVolumeZone:
		return crossZone(in, v)
	case wire.AttachReasonTooManyDevices:
		return forbidden2("The maximum allowed number of disk devices (" + strconv.Itoa(maxDiskDevices) + ") to attach to a single instance has been exceeded.")
	}
	return err
}

// update is PUT /servers/{id}/os-volume_attachments/{volume_id}: below
// 2.85, or naming another volume, the swap, which only the service role
// may ask (Cinder's volume migration, which this cloud does not have);
// from 2.85 for the same volume, the immutable fields must equal the
// current ones and delete_on_termination may change.
func (h *volumeAttachmentsHandler) update(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	allowed := []string{"volumeId"}
	onlySwap := !atLeast(r, 85)
	if !onlySwap {
		allowed = append(allowed, "device", "tag", "delete_on_termination", "serverId", "id")
	}
	body, err := parseVolumeAttachment(w, r, allowed)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("volume_id")
	if onlySwap || id != body.volumeID {
		err = h.authorize(ctx, ruleVolAttSwap, policy.Target{})
		if err == nil {
			err = h.swap(ctx, id)
		}
	} else {
		err = h.authorize(ctx, ruleVolAttUpdate, policy.Target{"project_id": in.ProjectID})
		if err == nil {
			err = h.updateRegular(r, in, id, body.raw)
		}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// swap is Nova's _update_volume_swap as far as it goes here: the old
// volume must exist and be migrating, which no volume of this cloud does
// (no volume migration), so it ends in Nova's 409.
func (h *volumeAttachmentsHandler) swap(ctx context.Context, old string) error {
	if _, err := h.visibleVolume(ctx, h.cfg.DB, old); err != nil {
		return err
	}
	return conflict("volume %s is not migrating; this API should only be called by Cinder", old)
}

// updateRegular is Nova's _update_volume_regular: each field given but
// delete_on_termination must equal the mapping's (as the copy's mirror
// shows it). A change of delete_on_termination is made by the server's
// cell, which holds the mapping: the call update_volume_attachment, whose
// answer (the volume's new state) is applied to the copy by version
// before the 202, so the next read shows it (the cell's volume_update
// that follows changes nothing then, and an older one cannot undo it).
// A flag that would not change asks nothing of the cell.
func (h *volumeAttachmentsHandler) updateRegular(r *http.Request, in *apidb.Instance, volume string, att map[string]any) error {
	ctx := r.Context()
	a, err := voldb.InstanceVolumeAttachment(ctx, h.cfg.DB, in.UUID, volume)
	if errors.Is(err, voldb.ErrAttachmentNotFound) {
		return notFound("No volume Block Device Mapping with id %s.", volume)
	}
	if err != nil {
		return err
	}
	if v, ok := att["id"]; ok && v != volume {
		return bad("The id property is not mutable")
	}
	if v, ok := att["serverId"]; ok && v != in.UUID {
		return bad("The serverId property is not mutable")
	}
	if v, ok := att["device"]; ok && v != nullable(a.Device) {
		return bad("The device property is not mutable")
	}
	if v, ok := att["tag"]; ok && v != nullable(a.Tag) {
		return bad("The tag property is not mutable")
	}
	v, ok := att["delete_on_termination"]
	if !ok || boolValue(v) == a.DeleteOnTermination {
		return nil
	}
	dot := boolValue(v)
	if in.Cell == "" {
		return conflict("Instance %s is not ready yet", in.UUID)
	}
	c := httpkit.CallerFrom(ctx)
	req := &wire.UpdateVolumeAttachment{InstanceUUID: in.UUID, VolumeID: volume, DeleteOnTermination: dot,
		UserID: c.UserID, ProjectID: c.ProjectID}
	var ans wire.UpdateVolumeAttachmentAnswer
	if err := h.callInstanceCell(r, in, wire.MethodUpdateVolumeAttachment, req, &ans); err != nil {
		if errors.Is(err, wire.ErrUnknownMethod) {
			// A cell of an earlier release cannot change the mapping.
			return conflict("Changing delete_on_termination of volume %s attached to instance %s is not supported by the server's cell yet.", volume, in.UUID)
		}
		return notFoundAs(err, "No volume Block Device Mapping with id %s.", volume)
	}
	if ans.Volume.ID != volume {
		return fmt.Errorf("update_volume_attachment of %s answered the state of volume %q", volume, ans.Volume.ID)
	}
	if err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		_, err := voldb.Apply(ctx, tx, []wire.VolumeState{ans.Volume}, nil, h.cfg.Now().UTC())
		return err
	}); err != nil {
		return err
	}
	h.log.Info("volume attachment updated", "request_id", httpkit.RequestID(ctx), "cell", in.Cell, "instance", in.UUID,
		"volume", volume, "delete_on_termination", dot, "version", ans.Volume.Version)
	return nil
}

// delete is DELETE /servers/{id}/os-volume_attachments/{volume_id}: Nova's
// checks, then, in one transaction, Cinder's begin_detaching on the copy
// (in-use and attached → detaching, without changing its version) and
// detach_volume to the server's cell. 202.
func (h *volumeAttachmentsHandler) delete(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	in, err := h.loadFor(r, ruleVolAttDelete)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	vol := r.PathValue("volume_id")
	err = checkShelvedVersion(r, in, "detach_volume")
	if err == nil {
		err = h.detach(ctx, r, in, vol)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("volume detach accepted", "request_id", httpkit.RequestID(ctx), "cell", in.Cell, "instance", in.UUID, "volume", vol)
	w.WriteHeader(http.StatusAccepted)
}

func (h *volumeAttachmentsHandler) detach(ctx context.Context, r *http.Request, in *apidb.Instance, vol string) error {
	return h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if _, err := h.visibleVolume(ctx, tx, vol); err != nil {
			return err
		}
		a, err := voldb.InstanceVolumeAttachment(ctx, tx, in.UUID, vol)
		if errors.Is(err, voldb.ErrAttachmentNotFound) {
			return notAttached(r.PathValue("id"), vol)
		}
		if err != nil {
			return err
		}
		if a.IsRoot() {
			return bad("Cannot detach a root device volume")
		}
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if err := checkVolumeState(ctx, cur, detachVolumeState); err != nil {
			return err
		}
		ok, err := voldb.SetStatus(ctx, tx, voldb.StatusChange{ID: vol, From: []string{voldb.StatusInUse},
			AttachStatus: voldb.AttachAttached, To: voldb.StatusDetaching, Now: h.cfg.Now().UTC()})
		if err != nil {
			return err
		}
		if !ok {
			return bad("Invalid volume: %s", cinderBadRequest(ctx,
				"Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach."))
		}
		c := httpkit.CallerFrom(ctx)
		return h.cfg.Sender.Send(ctx, tx, cur.Cell, wire.MethodDetachVolume, httpkit.RequestID(ctx),
			&wire.DetachVolume{InstanceUUID: cur.UUID, VolumeID: vol, UserID: c.UserID, ProjectID: c.ProjectID})
	})
}

// loadVolumesAttached fills in the VolumesAttached of each instance (an
// empty list when it has none) with one query.
func loadVolumesAttached(ctx context.Context, q db.Querier, insts []*apidb.Instance) error {
	if len(insts) == 0 {
		return nil
	}
	uuids := make([]string, 0, len(insts))
	for _, in := range insts {
		uuids = append(uuids, in.UUID)
	}
	byInstance, err := voldb.AttachmentsByInstances(ctx, q, uuids)
	if err != nil {
		return err
	}
	for _, in := range insts {
		in.VolumesAttached = []apidb.AttachedVolume{}
		for _, a := range byInstance[in.UUID] {
			in.VolumesAttached = append(in.VolumesAttached, apidb.AttachedVolume{ID: a.VolumeID, DeleteOnTermination: a.DeleteOnTermination})
		}
	}
	return nil
}

// volumesAttachedView is os-extended-volumes:volumes_attached: each
// attached volume's id, and from 2.3 its delete_on_termination.
func (h *serversHandler) volumesAttachedView(r *http.Request, in *apidb.Instance) []any {
	if in.VolumesAttached == nil {
		if err := loadVolumesAttached(r.Context(), h.cfg.DB, []*apidb.Instance{in}); err != nil {
			h.log.Error("load server volumes attached", "request_id", httpkit.RequestID(r.Context()), "uuid", in.UUID, "err", err)
			return []any{}
		}
	}
	out := make([]any, 0, len(in.VolumesAttached))
	for _, v := range in.VolumesAttached {
		item := map[string]any{"id": v.ID}
		if atLeast(r, 3) {
			item["delete_on_termination"] = v.DeleteOnTermination
		}
		out = append(out, item)
	}
	return out
}
