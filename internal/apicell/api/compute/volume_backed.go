package compute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
	"github.com/google/uuid"
)

// isVolumeBacked is Nova's compute_utils.is_volume_backed_instance as the
// API cell sees it: a server with a root attachment (boot index 0, its
// boot volume), or with no image_ref. A server booted from a volume has
// none (and no attachment is read); one booted from an image whose
// mappings give it a boot volume (servers_create_imagebdm.go) keeps the
// image as its image_ref, as Nova's does, and is told by its attachment.
func isVolumeBacked(ctx context.Context, q db.Querier, in *apidb.Instance) (bool, error) {
	if in.ImageRef == "" {
		return true, nil
	}
	byInstance, err := voldb.AttachmentsByInstances(ctx, q, []string{in.UUID})
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(byInstance[in.UUID], (*voldb.Attachment).IsRoot), nil
}

// errNoRootBDM is Nova's NovaException of a volume-backed instance with no
// root block device mapping (an internal error, 500).
var errNoRootBDM = errors.New("unable to find root block device mapping for volume-backed instance")

// bootVolume is the boot volume of a volume-backed server (Nova's
// compute_utils.get_root_bdm and its volume), from the API cell's mirror
// of the volumes: the volume of the attachment with boot index 0.
func bootVolume(ctx context.Context, q db.Querier, in *apidb.Instance) (*voldb.Volume, error) {
	byInstance, err := voldb.AttachmentsByInstances(ctx, q, []string{in.UUID})
	if err != nil {
		return nil, err
	}
	for _, a := range byInstance[in.UUID] {
		if a.IsRoot() {
			return voldb.Get(ctx, q, a.VolumeID)
		}
	}
	return nil, errNoRootBDM
}

// checkRescueVolumeBacked is the part of Nova's API.rescue that concerns a
// volume-backed server, after its lock and state are checked: below 2.87
// it cannot be rescued; from 2.87 only when the rescue image (rescueRef,
// or with none the image metadata of its root volume, Nova's
// instance.image_meta) has the hw_rescue_bus and hw_rescue_device
// properties. Every host here counts as having COMPUTE_RESCUE_BFV (the
// drivers rescue any instance). A rescue image that cannot be read, or
// is a volume-backed server's snapshot (img_block_device_mapping), is Nova's
// UnsupportedRescueImage. Every refusal is a 400.
func checkRescueVolumeBacked(ctx context.Context, q db.Querier, in *apidb.Instance, rescueRef string, allowBFV bool) error {
	var props map[string]string
	if rescueRef != "" {
		c := httpkit.CallerFrom(ctx)
		img, err := (&imagedb.Store{}).GetWithProperties(ctx, q, rescueRef)
		if errors.Is(err, imagedb.ErrNotFound) || (err == nil && !img.VisibleTo(c.ProjectID, c.Admin)) {
			return bad("Requested rescue image '%s' is not supported", rescueRef)
		}
		if err != nil {
			return err
		}
		// Nova's ImageMetaProps reads the legacy block_device_mapping
		// property as img_block_device_mapping.
		if img.Properties["img_block_device_mapping"] != "" || img.Properties["block_device_mapping"] != "" {
			return bad("Requested rescue image '%s' is not supported", rescueRef)
		}
		props = img.Properties
	} else {
		vol, err := bootVolume(ctx, q, in)
		if err != nil {
			return err
		}
		props = vol.ImageMetadata
	}
	if err := checkVolumesInUseConflict(ctx, q, in); err != nil {
		return err
	}
	_, bus := props["hw_rescue_bus"]
	_, dev := props["hw_rescue_device"]
	if allowBFV && bus && dev {
		return nil
	}
	return bad("Instance %s cannot be rescued: Cannot rescue a volume-backed instance", in.UUID)
}

// checkVolumesInUse is Nova's _check_volume_status (rebuild, rescue):
// every volume attached to the server must be in-use. A volume that is not
// gives InvalidVolume's text as invalid (rebuild answers it 400, rescue
// 409); err is a failure to read.
func checkVolumesInUse(ctx context.Context, q db.Querier, in *apidb.Instance) (invalid string, err error) {
	byInstance, err := voldb.AttachmentsByInstances(ctx, q, []string{in.UUID})
	if err != nil {
		return "", err
	}
	for _, a := range byInstance[in.UUID] {
		v, err := voldb.Get(ctx, q, a.VolumeID)
		if err != nil {
			return "", err
		}
		if v.Status != voldb.StatusInUse {
			return fmt.Sprintf("Invalid volume: volume '%s' status must be 'in-use'. Currently in '%s' status", v.ID, v.Status), nil
		}
	}
	return "", nil
}

// checkVolumesInUseConflict is checkVolumesInUse as rescue answers it: a
// volume not in-use is a 409.
func checkVolumesInUseConflict(ctx context.Context, q db.Querier, in *apidb.Instance) error {
	msg, err := checkVolumesInUse(ctx, q, in)
	if err != nil || msg == "" {
		return err
	}
	return conflict("%s", msg)
}

// ruleCreateImageVolumeBacked is Nova's extra policy on createImage of a
// volume-backed server.
const ruleCreateImageVolumeBacked = "os_compute_api:servers:create_image:allow_volume_backed"

// snapshotImageTopKeys are the keys of a volume's image metadata that are
// fields of the image rather than properties (Nova's
// get_image_from_system_metadata).
var snapshotImageTopKeys = []string{"image_id", "image_name", "checksum", "container_format", "disk_format", "min_disk", "min_ram", "size"}

// createImageVolumeBacked is Nova's snapshot_volume_backed, as the
// createImage of a volume-backed server runs it: the extra policy, the
// state (active, stopped, paused, suspended, no task), the snapshot quota
// (403 "Quota exceeded for resources: snapshots"), then in one
// transaction a snapshot of each attached volume, forced (its copy
// creating, and volume_action snapshot_create to the volume's cell, as
// Block Storage's snapshot create), and an active image of size 0 (raw,
// bare: Nova's glance force_activate; here with no data recorded, so its
// size and checksum show null) whose properties hold the mapping (block_device_mapping, the
// JSON list Nova writes, bdm_v2 True) and root_device_name. The server's
// own state does not change and its cell is told nothing. It answers as
// createImage does.
func (h *movesHandler) createImageVolumeBacked(w http.ResponseWriter, r *http.Request, in *apidb.Instance, p *createImageArgs) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	if err := h.authorize(ctx, ruleCreateImageVolumeBacked, policy.Target{"project_id": in.ProjectID}); err != nil {
		h.fail(w, r, err)
		return
	}
	spec := vmstate.Actions["create_image"]
	id := uuid.NewString()
	var snaps []string
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if err := spec.Check(cur.UUID, cur.VMState, cur.TaskState); err != nil {
			return fault(http.StatusConflict, err.Error())
		}
		byInstance, err := voldb.AttachmentsByInstances(ctx, tx, []string{cur.UUID})
		if err != nil {
			return err
		}
		atts := byInstance[cur.UUID]
		slices.SortStableFunc(atts, func(a, b *voldb.Attachment) int {
			if a.BootIndex != b.BootIndex && a.BootIndex >= 0 && b.BootIndex >= 0 {
				return a.BootIndex - b.BootIndex
			}
			if (a.BootIndex < 0) != (b.BootIndex < 0) {
				if a.BootIndex < 0 {
					return 1
				}
				return -1
			}
			return strings.Compare(a.Device, b.Device)
		})
		if len(atts) > 0 {
			if err := h.checkSnapshotQuota(ctx, tx, c.ProjectID, len(atts)); err != nil {
				return err
			}
		}
		now := h.cfg.Now().UTC()
		var root *voldb.Volume
		mapping := make([]map[string]any, 0, len(atts))
		for _, a := range atts {
			v, err := voldb.Get(ctx, tx, a.VolumeID)
			if err != nil {
				return err
			}
			if a.IsRoot() {
				root = v
			}
			sid, err := h.forceSnapshot(ctx, tx, v, "snapshot for "+p.name, c.UserID, now)
			if err != nil {
				return err
			}
			snaps = append(snaps, sid)
			// Nova's snapshot_from_bdm(...).get_image_mapping(): every
			// field of a block device mapping but the database's and
			// connection_info, the template's copied.
			var boot any
			if a.BootIndex >= 0 {
				boot = a.BootIndex
			}
			mapping = append(mapping, map[string]any{"source_type": "snapshot", "destination_type": "volume", "snapshot_id": sid,
				"disk_bus": nil, "device_type": "disk", "boot_index": boot, "delete_on_termination": a.DeleteOnTermination,
				"volume_size": v.SizeGB, "device_name": a.Device, "guest_format": nil, "volume_id": nil, "image_id": nil,
				"no_device": nil, "tag": nil, "volume_type": nil, "encrypted": nil, "encryption_secret_uuid": nil,
				"encryption_format": nil, "encryption_options": nil})
		}
		// Nova's initialize_instance_snapshot_metadata: the server's image
		// (for a volume-backed one, its root volume's image metadata), the
		// name, private (shared with the server's project when another
		// project snapshots it), the extra properties.
		props := map[string]string{}
		minDisk, minRAM := int(cur.Flavor.RootGB), 0
		if root != nil {
			for k, v := range root.ImageMetadata {
				if !slices.Contains(snapshotImageTopKeys, k) {
					props[k] = v
				}
			}
			if n, err := strconv.Atoi(root.ImageMetadata["min_disk"]); err == nil && n > minDisk {
				minDisk = n
			}
			if n, err := strconv.Atoi(root.ImageMetadata["min_ram"]); err == nil {
				minRAM = n
			}
		}
		vis := imagedb.Private
		if c.ProjectID != cur.ProjectID {
			vis = imagedb.Shared
			props["instance_owner"] = cur.ProjectID
		}
		maps.Copy(props, p.metadata)
		delete(props, "block_device_mapping")
		delete(props, "bdm_v2")
		delete(props, "root_device_name")
		if dev, ok := rootDeviceName(cur).(string); ok {
			props["root_device_name"] = dev
		}
		if len(mapping) > 0 {
			props["block_device_mapping"] = pyJSONList(mapping)
			props["bdm_v2"] = "True"
		}
		// Nova's image API activates an image of size 0 at once (an
		// upload of no data, as raw and bare), so that it can be booted.
		img := &imagedb.Image{ID: id, Name: p.name, Status: imagedb.StatusActive, Visibility: vis, Owner: c.ProjectID,
			MinRAM: minRAM, MinDisk: minDisk, DiskFormat: "raw", ContainerFormat: "bare", Properties: props}
		return (&imagedb.Store{}).Create(ctx, tx, img)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("volume-backed server snapshotted", "request_id", httpkit.RequestID(ctx), "instance", in.UUID, "image", id, "snapshots", snaps)
	if apiVersion(ctx).AtLeast(Version{2, 45}) {
		httpkit.WriteJSON(w, http.StatusAccepted, map[string]any{"image_id": id})
		return
	}
	w.Header().Set("Location", httpkit.Origin(r)+"/image/v2/images/"+id)
	w.WriteHeader(http.StatusAccepted)
}

// checkSnapshotQuota is Nova's check before the snapshots of a
// volume-backed server: under the project's volume quota lock, n more
// snapshots must fit maxTotalSnapshots (-1: unlimited), else OverQuota,
// which createImage answers 403.
func (h *movesHandler) checkSnapshotQuota(ctx context.Context, tx *db.Tx, project string, n int) error {
	if err := voldb.LockQuota(ctx, tx, project); err != nil {
		return err
	}
	if h.cfg.VolumeQuotas == nil {
		return nil
	}
	lim, err := h.cfg.VolumeQuotas.Limits(ctx, tx, project)
	if err != nil {
		return err
	}
	l, ok := lim["snapshots"]
	if !ok || l < 0 {
		return nil
	}
	use, err := voldb.Usage(ctx, tx, project)
	if err != nil {
		return err
	}
	if int64(n)+use["snapshots"] > l {
		return forbidden2("Quota exceeded for resources: snapshots")
	}
	return nil
}

// forceSnapshot is Cinder's create_snapshot_force of v as Block Storage's
// snapshot create makes it: the volume available or in-use and in a cell
// (else Cinder's 400, which Nova answers 400), the snapshot's copy
// creating in the volume's cell, and volume_action snapshot_create to that
// cell, in tx. It gives the snapshot's id.
func (h *movesHandler) forceSnapshot(ctx context.Context, tx *db.Tx, v *voldb.Volume, name, user string, now time.Time) (string, error) {
	if v.Status == voldb.StatusMaintenance {
		return "", bad("Invalid volume: The snapshot cannot be created when the volume is in maintenance mode.")
	}
	ok, err := voldb.SetStatus(ctx, tx, voldb.StatusChange{ID: v.ID, From: []string{voldb.StatusAvailable, voldb.StatusInUse}, To: v.Status, Now: v.UpdatedAt})
	if err != nil {
		return "", err
	}
	if !ok {
		return "", bad("Invalid volume: Volume %s status must be available, in-use, but current status is: %s.", v.ID, v.Status)
	}
	if v.Cell == "" {
		return "", bad("Invalid volume: The snapshot cannot be created because volume has not been scheduled to any host.")
	}
	id := uuid.NewString()
	s := &voldb.Snapshot{ID: id, VolumeID: v.ID, ProjectID: v.ProjectID, UserID: user, Name: name, Description: v.Description,
		SizeGB: v.SizeGB, Status: voldb.StatusCreating, Progress: "0%", Cell: v.Cell, CreatedAt: now}
	if err := voldb.CreateSnapshot(ctx, tx, s); err != nil {
		return "", err
	}
	if err := h.cfg.Sender.Send(ctx, tx, v.Cell, wire.MethodVolumeAction, httpkit.RequestID(ctx),
		&wire.VolumeAction{VolumeID: v.ID, Action: wire.SnapshotCreate, SnapshotID: id, CreatedAt: now, Force: true}); err != nil {
		return "", err
	}
	return id, nil
}

// pyJSONList is a list of objects as Python's json.dumps writes it (", "
// and ": " separators; keys sorted here, as a dict's order is Python's
// own).
func pyJSONList(items []map[string]any) string {
	var b strings.Builder
	b.WriteString("[")
	for i, m := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		keys := slices.Sorted(maps.Keys(m))
		b.WriteString("{")
		for j, k := range keys {
			if j > 0 {
				b.WriteString(", ")
			}
			kb, _ := json.Marshal(k)
			vb, _ := json.Marshal(m[k])
			b.Write(kb)
			b.WriteString(": ")
			b.Write(vb)
		}
		b.WriteString("}")
	}
	b.WriteString("]")
	return b.String()
}
