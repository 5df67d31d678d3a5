package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/google/uuid"
)

// volumesHandler is /volumes: create (blank, from a snapshot, a volume or
// an image), list, detail, show, update and delete. The API cell's copy
// (voldb) answers the reads; a create writes the copy and sends
// volume_create in one transaction, a delete sets "deleting" and sends
// volume_action in one (docs: the volumes contract).
type volumesHandler struct{ *base }

func (h *volumesHandler) register(rt *router) {
	if !h.volumesServed() {
		return
	}
	rt.handle("POST /v3/{project_id}/volumes", ruleVolCreate, h.create)
	rt.handle("GET /v3/{project_id}/volumes", ruleVolGetAll, h.list)
	rt.handle("GET /v3/{project_id}/volumes/detail", ruleVolGetAll, h.detail)
	rt.handle("GET /v3/{project_id}/volumes/summary", ruleVolGetAll, h.summary)
	rt.handle("GET /v3/{project_id}/volumes/{id}", ruleVolGet, h.show)
	rt.handle("PUT /v3/{project_id}/volumes/{id}", ruleVolUpdate, h.update)
	rt.handle("DELETE /v3/{project_id}/volumes/{id}", ruleVolDelete, h.delete)
}

// deletableStatuses are the statuses a volume is deleted from without
// force (Cinder's volume/api.py delete).
var deletableStatuses = []string{voldb.StatusAvailable, voldb.StatusError, voldb.StatusErrorRestoring, voldb.StatusErrorExtending, voldb.StatusErrorManaging}

// getVolume reads a volume the caller may see: its project's, or any for
// an admin; anything else is Cinder's 404.
func (b *base) getVolume(ctx context.Context, q db.Querier, id string) (*voldb.Volume, error) {
	c := httpkit.CallerFrom(ctx)
	v, err := voldb.Get(ctx, q, id)
	if errors.Is(err, voldb.ErrNotFound) || (err == nil && !c.Admin && v.ProjectID != c.ProjectID) {
		return nil, volumeNotFound(id)
	}
	return v, err
}

// getSnapshot reads a snapshot the caller may see.
func (b *base) getSnapshot(ctx context.Context, q db.Querier, id string) (*voldb.Snapshot, error) {
	c := httpkit.CallerFrom(ctx)
	s, err := voldb.GetSnapshot(ctx, q, id)
	if errors.Is(err, voldb.ErrSnapshotNotFound) || (err == nil && !c.Admin && s.ProjectID != c.ProjectID) {
		return nil, snapshotNotFound(id)
	}
	return s, err
}

// reqLog is the request id of ctx and an Info logger that adds it.
func (b *base) reqLog(ctx context.Context) (string, func(msg string, args ...any)) {
	rid := httpkit.RequestID(ctx)
	return rid, func(msg string, args ...any) { b.log.Info(msg, append([]any{"request_id", rid}, args...)...) }
}

// createKeys are the keys of a volume create (3.53 refuses others).
var createKeys = []string{"name", "description", "display_name", "display_description", "volume_type", "metadata",
	"snapshot_id", "source_volid", "consistencygroup_id", "size", "availability_zone", "multiattach", "image_id", "imageRef",
	"group_id", "backup_id", "scheduler_hints"}

// volumeCreate is a parsed create request.
type volumeCreate struct {
	name, description, typeRef, az string
	hasType, hasAZ                 bool
	metadata                       map[string]string
	snapshotID, sourceID, imageRef string
	size                           any
	hints                          *volumeHints
}

func parseCreate(r *http.Request) (*volumeCreate, error) {
	var top map[string]any
	if err := decodeBody(r, &top); err != nil {
		return nil, err
	}
	for k := range top {
		if k != "volume" && k != "OS-SCH-HNT:scheduler_hints" {
			return nil, badRequest("Invalid input for field/attribute None. Value: %s. Additional properties are not allowed ('%s' was unexpected)", jsonText(top), k)
		}
	}
	raw, ok := top["volume"].(map[string]any)
	if !ok {
		return nil, badRequest("Missing required element 'volume' in request body.")
	}
	vb := body(raw)
	if requestVersion(r.Context()).atLeast(3, 53) {
		for k := range vb {
			if !slices.Contains(createKeys, k) {
				return nil, badRequest("Invalid input for field/attribute volume. Value: %s. Additional properties are not allowed ('%s' was unexpected)", jsonText(raw), k)
			}
		}
	}
	c := &volumeCreate{size: vb["size"]}
	var err error
	for _, f := range []struct {
		dst  *string
		keys []string
		has  *bool
	}{
		{dst: &c.name, keys: []string{"display_name", "name"}},
		{dst: &c.description, keys: []string{"display_description", "description"}},
		{dst: &c.typeRef, keys: []string{"volume_type"}, has: &c.hasType},
		{dst: &c.az, keys: []string{"availability_zone"}, has: &c.hasAZ},
		{dst: &c.snapshotID, keys: []string{"snapshot_id"}},
		{dst: &c.sourceID, keys: []string{"source_volid"}},
		{dst: &c.imageRef, keys: []string{"image_id", "imageRef"}},
	} {
		for _, k := range f.keys { // the later key wins, as Cinder's pop order does
			s, ok, e := vb.str(k)
			if e != nil {
				return nil, e
			}
			if ok {
				*f.dst = s
				if f.has != nil {
					*f.has = true
				}
			}
		}
	}
	c.name, c.description = strings.TrimSpace(c.name), strings.TrimSpace(c.description)
	if c.metadata, _, err = vb.metadata("metadata"); err != nil {
		return nil, err
	}
	if c.hints, err = parseHints(top, raw); err != nil {
		return nil, err
	}
	return c, nil
}

// sizeOf is the size asked for, checked as Cinder's volume/api.py create
// checks it: absent or 0 is "not given" (the flow decides); anything
// else must be an integer above 0.
func sizeOf(v any) (int, bool, error) {
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case string:
		if x == "" {
			return 0, false, nil
		}
	case bool:
		if !x {
			return 0, false, nil
		}
	case json.Number:
		if n, ok := intLike(x); ok && n == 0 {
			return 0, false, nil
		}
	}
	n, ok := intLike(v)
	if !ok || n <= 0 {
		return 0, false, invalidInput("Invalid volume size provided for create request: %s (size argument must be an integer (or string representation of an integer) and greater than zero).", jsonValue(v))
	}
	return n, true, nil
}

// zones are the storage zones known: the configured one and those the
// cells report.
func (b *base) zones(ctx context.Context) []string {
	zs := []string{b.cfg.StorageZone}
	if b.cfg.Zones != nil {
		for _, z := range b.cfg.Zones(ctx) {
			if !slices.Contains(zs, z) {
				zs = append(zs, z)
			}
		}
	}
	return zs
}

// findType is the type idOrName (Cinder's get_by_name_or_id), or its 404.
func (b *base) findType(ctx context.Context, q db.Querier, ref string) (*voltypes.Type, error) {
	return b.findTypeAs(ctx, q, ref, httpkit.CallerFrom(ctx).Admin)
}

// findTypeAs is findType with every type visible when admin (Cinder's
// elevated context).
func (b *base) findTypeAs(ctx context.Context, q db.Querier, ref string, admin bool) (*voltypes.Type, error) {
	c := httpkit.CallerFrom(ctx)
	t, err := b.cfg.Types.Type(ctx, q, ref, c.ProjectID, admin)
	if errors.Is(err, notfound.Err) {
		if _, perr := uuid.Parse(ref); perr == nil {
			return nil, notFound("Volume type %s could not be found.", ref)
		}
		return nil, notFound("Volume type with name %s could not be found.", ref)
	}
	return t, err
}

// resolveImage is Cinder's _image_uuid_from_ref: the last segment of ref,
// an image by id, else by name.
func (b *base) resolveImage(ctx context.Context, q db.Querier, ref string) (*Image, error) {
	c := httpkit.CallerFrom(ctx)
	if b.cfg.Images == nil {
		return nil, badRequest("Invalid image identifier or unable to access requested image.")
	}
	id := ref[strings.LastIndex(ref, "/")+1:]
	if _, err := uuid.Parse(id); err == nil {
		img, err := b.cfg.Images.Image(ctx, q, id, c.ProjectID, c.Admin)
		if err == nil {
			return img, nil
		}
		if !errors.Is(err, notfound.Err) {
			return nil, err
		}
	}
	imgs, err := b.cfg.Images.ImagesNamed(ctx, q, id, c.ProjectID, c.Admin)
	if err != nil {
		return nil, err
	}
	switch len(imgs) {
	case 0:
		return nil, badRequest("Invalid image identifier or unable to access requested image.")
	case 1:
		return imgs[0], nil
	}
	return nil, fault(http.StatusConflict, fmt.Sprintf("Multiple matches found for '%s', use an ID to be more specific.", id))
}

// imageMetadata is what Cinder copies of an image into the volume's
// image metadata.
func imageMetadata(img *Image) map[string]string {
	md := map[string]string{}
	for k, v := range img.Properties {
		md[k] = v
	}
	md["image_id"], md["image_name"], md["checksum"] = img.ID, img.Name, img.Checksum
	md["container_format"], md["disk_format"] = img.ContainerFormat, img.DiskFormat
	md["min_disk"], md["min_ram"], md["size"] = strconv.Itoa(img.MinDisk), strconv.Itoa(img.MinRAM), strconv.FormatInt(img.Size, 10)
	return md
}

const gib = 1 << 30

func (h *volumesHandler) create(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	rid, info := h.reqLog(ctx)
	req, err := parseCreate(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if req.imageRef != "" && !c.Allowed(h.cfg.Policy, ruleVolCreateFromImg) {
		h.fail(w, r, forbidden(ruleVolCreateFromImg))
		return
	}
	id := uuid.NewString()
	var created *voldb.Volume
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		now := h.cfg.Now().UTC()
		var typ *voltypes.Type
		if req.hasType && req.typeRef != "" {
			t, err := h.findType(ctx, tx, req.typeRef)
			if err != nil {
				return err
			}
			typ = t
		}
		var snap *voldb.Snapshot
		var snapVol, src *voldb.Volume
		if req.snapshotID != "" {
			s, err := h.getSnapshot(ctx, tx, req.snapshotID)
			if err != nil {
				return err
			}
			if snapVol, err = voldb.Get(ctx, tx, s.VolumeID); errors.Is(err, voldb.ErrNotFound) {
				return snapshotNotFound(req.snapshotID)
			} else if err != nil {
				return err
			}
			snap = s
		}
		if req.sourceID != "" {
			v, err := h.getVolume(ctx, tx, req.sourceID)
			if err != nil {
				return err
			}
			src = v
		}
		var img *Image
		if req.imageRef != "" {
			i, err := h.resolveImage(ctx, tx, req.imageRef)
			if err != nil {
				return err
			}
			img = i
		}
		size, given, err := sizeOf(req.size)
		if err != nil {
			return err
		}
		// A type asked for must be the source's (volume/api.py create,
		// before the flow's checks).
		if typ != nil && src != nil && typ.ID != src.TypeID {
			return invalidInput("Invalid volume_type provided: %s (requested type is not compatible; either match source volume, or omit type argument).", typ.ID)
		}
		if typ != nil && snapVol != nil && typ.ID != snapVol.TypeID {
			return invalidInput("Invalid volume_type provided: %s (requested type is not compatible; recommend omitting the type argument).", typ.ID)
		}
		if n := btoi(snap != nil) + btoi(img != nil) + btoi(src != nil); n > 1 {
			return invalidInput("May specify only one of imageRef, snapshot, source volume")
		}
		if snap != nil && (snap.Status != voldb.StatusAvailable || snap.Cell == "") {
			return badRequest("Invalid snapshot: Originating snapshot status must be one of 'available' values")
		}
		if src != nil && ((src.Status != voldb.StatusAvailable && src.Status != voldb.StatusInUse) || src.Cell == "") {
			return badRequest("Invalid volume: Originating source volume status must be one of 'available, in-use' values")
		}
		if !given {
			switch {
			case src != nil:
				size = src.SizeGB
			case snap != nil:
				size = snap.SizeGB
			default:
				shown := "None"
				if req.size != nil {
					shown = jsonValue(req.size)
				}
				return invalidInput("Volume size '%s' must be an integer and greater than 0", shown)
			}
		}
		if src != nil && size < src.SizeGB {
			return invalidInput("Volume size '%d'GB cannot be smaller than original volume size  %dGB. They must be >= original volume size.", size, src.SizeGB)
		}
		if snap != nil && size < snap.SizeGB {
			return invalidInput("Volume size '%d'GB cannot be smaller than the snapshot size %dGB. They must be >= original snapshot size.", size, snap.SizeGB)
		}
		if img != nil {
			if img.Status != "active" {
				return invalidInput("Image %s is not active.", img.ID)
			}
			if inGiB := (img.Size + gib - 1) / gib; inGiB > int64(size) {
				return invalidInput("Size of specified image %dGB is larger than volume size %dGB.", inGiB, size)
			}
			if size < img.MinDisk {
				return invalidInput("Volume size %dGB cannot be smaller than the image minDisk size %dGB.", size, img.MinDisk)
			}
		}
		// The zone: asked for, else the source's, else the default.
		az := req.az
		if !req.hasAZ {
			switch {
			case snapVol != nil:
				az = snapVol.AvailabilityZone
			case src != nil:
				az = src.AvailabilityZone
			default:
				az = h.cfg.StorageZone
			}
		}
		if !slices.Contains(h.zones(ctx), az) {
			return badRequest("Availability zone '%s' is invalid.", az)
		}
		if snapVol != nil && snapVol.AvailabilityZone != "" && snapVol.AvailabilityZone != az {
			return invalidInput("Volume must be in the same availability zone as the snapshot")
		}
		if src != nil && src.AvailabilityZone != "" && src.AvailabilityZone != az {
			return invalidInput("Volume must be in the same availability zone as the source volume")
		}
		// The type: asked for (it must be the source's), else the source's,
		// else the default.
		typeID, typeName := "", ""
		switch {
		case src != nil:
			typeID, typeName = src.TypeID, src.TypeName
		case snapVol != nil:
			typeID, typeName = snapVol.TypeID, snapVol.TypeName
		default:
			if typ == nil {
				t, err := h.cfg.Types.Default(ctx, tx)
				if err != nil {
					return fmt.Errorf("default volume type: %w", err)
				}
				typ = t
			}
			typeID, typeName = typ.ID, typ.Name
		}
		var specs map[string]string
		if typ != nil {
			specs = typ.ExtraSpecs
		} else if t, err := h.cfg.Types.Type(ctx, tx, typeID, c.ProjectID, true); err == nil {
			specs = t.ExtraSpecs
		}
		if err := h.checkQuota(ctx, tx, c.ProjectID, quotaAsk{typeName: typeName, volumes: 1, gigabytes: int64(size), perVolume: int64(size)}); err != nil {
			return err
		}
		v := &voldb.Volume{ID: id, ProjectID: c.ProjectID, UserID: c.UserID, Name: req.name, Description: req.description,
			SizeGB: size, Status: voldb.StatusCreating, TypeID: typeID, TypeName: typeName, AvailabilityZone: az,
			Metadata: req.metadata, Multiattach: specs["multiattach"] == "<is> True", CreatedAt: now}
		spec := wire.VolumeSpec{ID: id, ProjectID: c.ProjectID, UserID: c.UserID, SizeGB: size, AvailabilityZone: az,
			TypeID: typeID, TypeName: typeName, ExtraSpecs: specs, CreatedAt: now}
		target, msg := h.cfg.Cell, wire.VolumeCreate{}
		switch {
		case snap != nil:
			v.SnapshotID, v.Bootable, v.ImageMetadata = snap.ID, snapVol.Bootable, snapVol.ImageMetadata
			spec.SnapshotID, target, msg.TargetCell = snap.ID, snap.Cell, snap.Cell
		case src != nil:
			v.SourceVolID, v.Bootable, v.ImageMetadata = src.ID, src.Bootable, src.ImageMetadata
			spec.SourceVolumeID, target, msg.TargetCell = src.ID, src.Cell, src.Cell
		case img != nil:
			v.ImageID, v.Bootable, v.ImageMetadata = img.ID, true, imageMetadata(img)
			spec.ImageID, spec.ImageSize = img.ID, img.Size
		}
		msg.Volume = spec
		follow := true
		if req.hints.given {
			cell, ok, err := req.hints.cell(ctx, tx)
			if err != nil {
				return err
			}
			switch {
			case !ok || (cell != "" && msg.TargetCell != "" && cell != msg.TargetCell):
				// No backend passes the hints' filters: Cinder's volume
				// goes to error, and so does this one, in no cell.
				info("the volume's scheduler hints name no cell it can be made in", "volume", id)
				v.Status, follow = voldb.StatusError, false
			case cell != "":
				target, msg.TargetCell = cell, cell
			}
		}
		if err := voldb.Create(ctx, tx, v); err != nil {
			return err
		}
		if !follow {
			created = v
			return nil
		}
		if err := h.cfg.Sender.Send(ctx, tx, target, wire.MethodVolumeCreate, rid, &msg); err != nil {
			return err
		}
		created = v
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	info("volume create accepted", "volume", id, "size_gb", created.SizeGB, "zone", created.AvailabilityZone,
		"snapshot", created.SnapshotID, "source_volid", created.SourceVolID, "image", created.ImageID)
	httpkit.WriteJSON(w, http.StatusAccepted, map[string]any{"volume": h.volumeDetail(r, created)})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// volumeFilterKeys are the keys a non-admin may filter a volume list by:
// from 3.31 Cinder's resource_filters.json (others are a 400), before it
// query_volume_filters (others are dropped).
var (
	volumeFilterKeys    = []string{"name", "status", "metadata", "bootable", "migration_status", "availability_zone", "group_id", "size", "created_at", "updated_at"}
	volumeFilterKeysOld = []string{"name", "status", "metadata", "availability_zone", "bootable", "group_id"}
)

// volumeFilter reads a volume list's filters as Cinder does for the
// request's version and caller; none reports a filter nothing matches.
func volumeFilter(r *http.Request, filters map[string]string) (f voldb.Filter, none bool, err error) {
	c := httpkit.CallerFrom(r.Context())
	ver := requestVersion(r.Context())
	f.ProjectID = c.ProjectID
	all := c.Admin && truthy(filters["all_tenants"])
	if all {
		f.ProjectID = filters["project_id"]
	}
	delete(filters, "all_tenants")
	delete(filters, "project_id")
	// Keys of a later version are dropped before anything else.
	for k, v := range map[string]version{"glance_metadata": {3, 4}, "group_id": {3, 10}, "created_at": {3, 60}, "updated_at": {3, 60}} {
		if !ver.atLeast(v.major, v.minor) {
			delete(filters, k)
		}
	}
	if !ver.atLeast(3, 34) {
		delete(filters, "name~")
		delete(filters, "description~")
	}
	if !c.Admin {
		var invalid []string
		for k := range filters {
			base := strings.TrimSuffix(k, "~")
			allowed := volumeFilterKeysOld
			if ver.atLeast(3, 31) {
				allowed = volumeFilterKeys
			}
			if !slices.Contains(allowed, base) {
				invalid = append(invalid, k)
			}
		}
		if len(invalid) > 0 {
			if ver.atLeast(3, 31) {
				slices.Sort(invalid)
				return f, false, badRequest("Invalid filters %s are found in query options.", strings.Join(invalid, ","))
			}
			for _, k := range invalid {
				delete(filters, k)
			}
		}
	}
	for k, v := range filters {
		switch k {
		case "name", "display_name":
			f.Name = v
		case "name~", "display_name~":
			f.NameLike = v
		case "description~", "display_description~":
			f.DescriptionLike = v
		case "status":
			f.Status = v
		case "availability_zone":
			f.AvailabilityZone = v
		case "user_id":
			f.UserID = v
		case "bootable":
			var b bool
			if ver.atLeast(3, 2) {
				switch v {
				case "T", "True", "1", "true":
					b = true
				case "F", "False", "0", "false":
				default:
					return f, false, invalidInput("%s = %s", k, v)
				}
			} else {
				b = v != "False" && v != "false" && v != "FALSE"
			}
			f.Bootable = &b
		case "size":
			n, err := strconv.Atoi(v)
			if err != nil {
				return f, true, nil
			}
			f.Size = &n
		case "metadata":
			md, err := parseMetadataFilter(v)
			if err != nil {
				return f, false, err
			}
			f.Metadata = md
		case "created_at", "updated_at":
			tfs, err := parseTimeFilter(k, v)
			if err != nil {
				return f, false, err
			}
			if k == "created_at" {
				f.CreatedAt = tfs
			} else {
				f.UpdatedAt = tfs
			}
		case "group_id", "migration_status", "glance_metadata":
			// No volume is in a group, migrating, or has such metadata
			// to match yet.
			if v != "" {
				return f, true, nil
			}
		}
	}
	return f, false, nil
}

func (h *volumesHandler) list(w http.ResponseWriter, r *http.Request)   { h.listVolumes(w, r, false) }
func (h *volumesHandler) detail(w http.ResponseWriter, r *http.Request) { h.listVolumes(w, r, true) }

func (h *volumesHandler) listVolumes(w http.ResponseWriter, r *http.Request, detail bool) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	lp, err := parseList(r, voldb.ValidVolumeSortKey)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f, none, err := volumeFilter(r, lp.filters)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var vols []*voldb.Volume
	count := 0
	if !none {
		if vols, err = voldb.List(ctx, h.cfg.DB, f, lp.page); err != nil {
			h.fail(w, r, listError(err, lp.page.Marker))
			return
		}
		if lp.withCount {
			if count, err = voldb.Count(ctx, h.cfg.DB, f); err != nil {
				h.fail(w, r, err)
				return
			}
		}
	}
	out := make([]map[string]any, 0, len(vols))
	for _, v := range vols {
		if detail {
			out = append(out, h.volumeDetail(r, v))
		} else {
			out = append(out, h.volumeSummary(r, v))
		}
	}
	resp := map[string]any{"volumes": out}
	if len(vols) > 0 && lp.limit <= len(vols) {
		resp["volumes_links"] = nextLink(r, c.ProjectID, "volumes", vols[len(vols)-1].ID)
	}
	if lp.withCount {
		resp["count"] = count
	}
	httpkit.WriteJSON(w, http.StatusOK, resp)
}

// summary is GET /volumes/summary (3.12): the count and total size of the
// volumes the filters select, and from 3.36 every metadata key with its
// distinct values.
func (h *volumesHandler) summary(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ver := requestVersion(ctx)
	if !ver.atLeast(3, 12) {
		h.fail(w, r, notFound("The resource could not be found."))
		return
	}
	filters := map[string]string{}
	for k, vs := range r.URL.Query() {
		filters[k] = vs[0]
	}
	f, none, err := volumeFilter(r, filters)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var vols []*voldb.Volume
	if !none {
		if vols, err = voldb.List(ctx, h.cfg.DB, f, voldb.Page{}); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	size := 0
	meta := map[string][]string{}
	for _, v := range vols {
		size += v.SizeGB
		for k, val := range v.Metadata {
			if !slices.Contains(meta[k], val) {
				meta[k] = append(meta[k], val)
			}
		}
	}
	sum := map[string]any{"total_size": size, "total_count": len(vols)}
	if ver.atLeast(3, 36) {
		for _, vals := range meta {
			slices.Sort(vals)
		}
		sum["metadata"] = meta
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volume-summary": sum})
}

func (h *volumesHandler) show(w http.ResponseWriter, r *http.Request) {
	v, err := h.getVolume(r.Context(), h.cfg.DB, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volume": h.volumeDetail(r, v)})
}

// updateKeys are the keys of a volume update.
var updateKeys = []string{"name", "description", "display_name", "display_description", "metadata"}

func (h *volumesHandler) update(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	var top map[string]any
	if err := decodeBody(r, &top); err != nil {
		h.fail(w, r, err)
		return
	}
	raw, ok := top["volume"].(map[string]any)
	if !ok {
		h.fail(w, r, badRequest("Missing required element 'volume' in request body."))
		return
	}
	for k := range raw {
		if !slices.Contains(updateKeys, k) {
			h.fail(w, r, badRequest("Invalid input for field/attribute volume. Value: %s. Additional properties are not allowed ('%s' was unexpected)", jsonText(raw), k))
			return
		}
	}
	if len(raw) == 0 && requestVersion(ctx).atLeast(3, 53) {
		h.fail(w, r, badRequest("Invalid input for field/attribute volume. Value: {}. {} does not have enough properties"))
		return
	}
	vb := body(raw)
	var f voldb.Fields
	for _, k := range []string{"display_name", "name"} {
		s, ok, err := vb.str(k)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if ok {
			s = strings.TrimSpace(s)
			f.Name = &s
		}
	}
	for _, k := range []string{"display_description", "description"} {
		s, ok, err := vb.str(k)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if ok {
			s = strings.TrimSpace(s)
			f.Description = &s
		}
	}
	md, hasMD, err := vb.metadata("metadata")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if hasMD {
		f.Metadata, f.ReplaceMetadata = md, true
	}
	var out *voldb.Volume
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		v, err := h.getVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		if v.Status == voldb.StatusMaintenance {
			return badRequest("Invalid volume: The volume cannot be updated during maintenance.")
		}
		f.Now = h.cfg.Now().UTC()
		if err := voldb.UpdateFields(ctx, tx, id, f); err != nil {
			return err
		}
		out, err = voldb.Get(ctx, tx, id)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volume": h.volumeDetail(r, out)})
}

func (h *volumesHandler) delete(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	q := r.URL.Query()
	cascade := truthy(q.Get("cascade"))
	force := requestVersion(ctx).atLeast(3, 23) && truthy(q.Get("force"))
	if force && !c.Allowed(h.cfg.Policy, ruleVolForceDelete) {
		h.fail(w, r, forbidden(ruleVolForceDelete))
		return
	}
	if err := h.deleteVolume(ctx, r.PathValue("id"), cascade, force); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// deleteVolume is Cinder's volume/api.py delete: a copy with no cell is
// deleted here alone (when its status allows it); any other is set to
// "deleting" by a conditional update and its cell is sent volume_action
// delete, in one transaction.
func (b *base) deleteVolume(ctx context.Context, id string, cascade, force bool) error {
	rid, info := b.reqLog(ctx)
	refused := "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer."
	if force {
		refused = "Invalid volume: Volume  must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer."
	}
	var local bool
	err := b.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		now := b.cfg.Now().UTC()
		v, err := b.getVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		if v.Cell == "" {
			// Never reached a cell (or found none): no cell has anything
			// to delete. One still being created may yet reach one, so it
			// waits.
			if !slices.Contains(deletableStatuses, v.Status) {
				return badRequest("%s", refused)
			}
			if !cascade && !force {
				if n, err := voldb.CountSnapshots(ctx, tx, id); err != nil {
					return err
				} else if n > 0 {
					return badRequest("%s", refused)
				}
			}
			local, err = voldb.Destroy(ctx, tx, id, now)
			return err
		}
		ch := voldb.StatusChange{ID: id, To: voldb.StatusDeleting, Detached: true, NoAttachments: true, Now: now}
		if !force {
			ch.From = deletableStatuses
		}
		switch {
		case !cascade:
			ch.NoSnapshots = true
		case !force:
			ch.SnapshotsFrom = []string{voldb.StatusAvailable, voldb.StatusError, voldb.StatusDeleting}
		}
		ok, err := voldb.SetStatus(ctx, tx, ch)
		if err != nil {
			return err
		}
		if !ok {
			return badRequest("%s", refused)
		}
		if cascade {
			if err := voldb.SetVolumeSnapshotsStatus(ctx, tx, id, voldb.StatusDeleting, now); err != nil {
				return err
			}
		}
		return b.cfg.Sender.Send(ctx, tx, v.Cell, wire.MethodVolumeAction, rid,
			&wire.VolumeAction{VolumeID: id, Action: wire.VolumeDelete, Cascade: cascade})
	})
	if err != nil {
		return err
	}
	info("volume delete accepted", "volume", id, "cascade", cascade, "force", force, "local", local)
	return nil
}
