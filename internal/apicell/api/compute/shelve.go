package compute

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// Shelve, as Nova's (nova/api/openstack/compute/shelve.py and
// nova/compute/api.py): shelve creates a queued private image
// "<name>-shelved" in the API cell's image store and names it in the
// copy, in the transaction that starts the action; the instance's cell
// snapshots into it (snapshot_done) and ends SHELVED, then offloads as its
// compute.shelved_offload_time says. shelveOffload (admin) offloads a
// SHELVED server at once. unshelve powers a SHELVED server on where it is,
// or boots an offloaded one from the image; the copy deletes the image
// when the unshelved server's ACTIVE state arrives (apidb.ApplyUpdate),
// and when the server's deletion does. Every value of the three actions
// is accepted below 2.77 (Nova's schemas are {}); from 2.77 unshelve
// takes null or an availability zone (unshelve below); 202 without a
// body.

// shelveHandler is the shelve, shelveOffload and unshelve actions.
type shelveHandler struct {
	*base
	actions *actionsHandler
}

func (h *shelveHandler) register(rt *router) {
	rt.action("shelve", h.shelve)
	rt.action("shelveOffload", h.shelveOffload)
	rt.action("unshelve", h.unshelve)
}

// shelve is the shelve action.
func (h *shelveHandler) shelve(w http.ResponseWriter, r *http.Request, in *apidb.Instance, _ json.RawMessage) {
	vb, err := isVolumeBacked(r.Context(), h.cfg.DB, in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if vb {
		// Nova's shelve of a volume-backed server takes no snapshot: it
		// offloads at once (shelve_offload_instance), its volumes stay
		// attached. The action names no image, which the cell's shelve
		// reads as "offload now"; unshelve needs none.
		h.actions.startAction(w, r, in, "shelve", nil, nil)
		return
	}
	id := uuid.NewString()
	params, _ := json.Marshal(wire.ActionParams{ImageRef: id})
	h.actions.startActionWith(w, r, in, "shelve", params, nil, func(ctx context.Context, tx *db.Tx) error {
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		// An image left named by an earlier shelve (a server reset out of
		// SHELVED) is replaced; its data file goes at the image store's
		// next start.
		if cur.ShelvedImageID != "" {
			if err := dropImageRecord(ctx, tx, cur.ShelvedImageID); err != nil {
				return err
			}
		}
		// Nova's compute_utils.create_image: a snapshot of the server's
		// image. The image belongs to the server's project (Nova shares it
		// with that project when someone else shelves).
		if err := (&imagedb.Store{}).Create(ctx, tx, snapshotImage(ctx, tx, cur, id, cur.Name+"-shelved", cur.ProjectID, nil)); err != nil {
			return err
		}
		return apidb.SetShelvedImage(ctx, tx, cur.UUID, id)
	})
}

// shelveOffload is the shelveOffload action: a SHELVED server leaves its
// host at once.
func (h *shelveHandler) shelveOffload(w http.ResponseWriter, r *http.Request, in *apidb.Instance, _ json.RawMessage) {
	h.actions.startAction(w, r, in, "shelve_offload", nil, nil)
}

// unshelve is the unshelve action; the cell boots an offloaded server from
// its shelved image. When that image is gone (its owner deleted it), the
// cell puts the server in ERROR instead, as Nova's conductor does after
// its 202.
//
// From 2.77 the body is null or {"availability_zone": ZONE} (Nova's
// unshelve_v277; {} is refused), and a zone is checked as Nova's
// compute API checks it, after the lock and the state (409s): the server
// must be SHELVED_OFFLOADED (409 otherwise: a shelved server still has a
// host, whose zone it keeps), and the zone one a cell reports an enabled
// host in (400 "The requested availability zone is not available"). The
// server's cell then schedules it among its own hosts in that zone: a
// server never changes cell on unshelve, as in Nova's cells v2, whose
// conductor restricts the request to the instance's cell. A zone with no
// room in that cell leaves the server SHELVED_OFFLOADED with the action's
// error (Nova's NoValidHost); once unshelved, its availability_zone is
// the new zone.
func (h *shelveHandler) unshelve(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	ctx := r.Context()
	var zone string
	if atLeast(r, v277) {
		var err error
		if zone, err = unshelveZone(arg); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	p := wire.ActionParams{AvailabilityZone: zone}
	if in.ShelvedImageID != "" {
		// Looked at whatever the state: the cell, which holds the truth,
		// uses it only for an offloaded instance.
		_, err := (&imagedb.Store{}).GetWithoutDetails(ctx, h.cfg.DB, in.ShelvedImageID)
		if err != nil && !errors.Is(err, imagedb.ErrNotFound) {
			h.fail(w, r, err)
			return
		}
		p.ImageRef, p.ImageMissing = in.ShelvedImageID, err != nil
	}
	var params json.RawMessage
	if p != (wire.ActionParams{}) {
		params, _ = json.Marshal(p)
	}
	var extra func(ctx context.Context, tx *db.Tx) error
	if zone != "" {
		extra = func(ctx context.Context, tx *db.Tx) error {
			cur, err := apidb.Get(ctx, tx, in.UUID)
			if err != nil {
				return err
			}
			if cur.VMState != vmstate.ShelvedOffloaded {
				return conflict("Specifying an availability zone or a host when unshelving server \"%s\" with status \"%s\" is not supported. "+
					"The server status must be SHELVED_OFFLOADED.", cur.UUID, cur.VMState)
			}
			return zoneAvailable(ctx, tx, h.zones, zone, h.cfg.DefaultAvailabilityZone)
		}
	}
	h.actions.startActionWith(w, r, in, "unshelve", params, nil, extra)
}

// v277 lets unshelve name an availability zone.
const v277 = 77

// unshelveZone reads the unshelve action's value from 2.77 (Nova's
// unshelve_v277): null, or an object with exactly availability_zone, a
// name ("" when null).
func unshelveZone(arg json.RawMessage) (string, error) {
	if isNull(arg) {
		return "", nil
	}
	v, err := readObjectBytes(arg)
	if err != nil {
		var x any
		_ = json.Unmarshal(arg, &x)
		return "", invalid("unshelve", x, "%s is not of type 'object', 'null'", pyRepr(x))
	}
	z, ok := v["availability_zone"]
	if ok {
		if err := checkName("availability_zone", z); err != nil {
			return "", err
		}
	}
	if err := noOtherKeys(v, "unshelve", "availability_zone"); err != nil {
		return "", err
	}
	if !ok {
		return "", invalid("unshelve", v, "'availability_zone' is a required property")
	}
	return z.(string), nil
}

// snapshotImage is the queued private image a snapshot of cur fills (Nova's
// compute_utils.create_image with image_type snapshot): the formats and
// properties of the server's image, extra, and Nova's snapshot properties.
func snapshotImage(ctx context.Context, tx *db.Tx, cur *apidb.Instance, id, name, owner string, extra map[string]string) *imagedb.Image {
	disk, container := "qcow2", "bare"
	props := map[string]string{}
	if base, err := (&imagedb.Store{}).Get(ctx, tx, cur.ImageRef); err == nil {
		disk, container = base.DiskFormat, base.ContainerFormat
		maps.Copy(props, base.Properties)
	}
	maps.Copy(props, extra)
	props["image_type"] = "snapshot"
	props["instance_uuid"] = cur.UUID
	props["base_image_ref"] = cur.ImageRef
	props["user_id"] = httpkit.CallerFrom(ctx).UserID
	return &imagedb.Image{ID: id, Name: name, Status: imagedb.StatusQueued, Visibility: imagedb.Private, Owner: owner,
		DiskFormat: disk, ContainerFormat: container, MinRAM: 0, MinDisk: int(cur.Flavor.RootGB), Properties: props}
}

// dropImageRecord deletes a shelved image the Compute API is done with;
// one already gone, or protected by its owner, stays as it is. Its data
// file goes at the image store's next start.
func dropImageRecord(ctx context.Context, tx *db.Tx, id string) error {
	err := (&imagedb.Store{}).Delete(ctx, tx, id)
	if errors.Is(err, imagedb.ErrNotFound) || errors.Is(err, imagedb.ErrProtected) {
		return nil
	}
	return err
}
