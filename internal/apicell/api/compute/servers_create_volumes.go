package compute

// Boot from volume on POST /servers: the volume mappings of
// block_device_mapping_v2 checked against the API cell's copies of the
// volumes, snapshots and images, as Nova's compute API does
// (_check_and_transform_bdm, _validate_vol_az_for_create, _validate_bdm,
// block_device.get_bdm_image_metadata), then recorded with the build:
// existing volumes reserved, the copies of the volumes the cell makes
// written (creating) under the project's volume quota, and each instance's
// wire.BlockDevice list. A build with existing volumes or snapshots goes
// only to their one cell (Nova's cross_az_attach = False).

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// VolumeTypeStore finds the Block Storage API's volume types (package
// voltypes implements it): the type a mapping names (2.67 volume_type)
// and the default type of the volumes a boot makes.
type VolumeTypeStore interface {
	// Type finds a type by id or name visible to project (admin: all),
	// with the notfound convention.
	Type(ctx context.Context, q db.Querier, idOrName, project string, admin bool) (*voltypes.Type, error)
	Default(ctx context.Context, q db.Querier) (*voltypes.Type, error)
}

// VolumeQuotaStore reads a project's volume quota limits by Cinder key
// (package voltypes implements it); -1 is unlimited.
type VolumeQuotaStore interface {
	Limits(ctx context.Context, q db.Querier, project string) (map[string]int64, error)
}

// ruleCreateAttachVolume is Nova's policy on a create with block device
// mappings.
const ruleCreateAttachVolume = "os_compute_api:servers:create:attach_volume"

// gib is a GiB in bytes.
const gib = 1 << 30

// volumeReserved is Cinder's status of a volume an attachment reserves.
const volumeReserved = "reserved"

// bootVolumes is what a create's volume mappings resolved to.
type bootVolumes struct {
	// cell is the one cell of the existing volumes and snapshots named
	// ("": none named); zone is their zone.
	cell, zone string
	// maps are the volume mappings (destination volume), each resolved.
	maps []*bootMapping
}

// bootMapping is one volume mapping with what it names.
type bootMapping struct {
	req *bdmRequest
	// vol is the existing volume (source volume); snap and snapVol the
	// snapshot and its volume (source snapshot); img the image (source
	// image).
	vol, snapVol *voldb.Volume
	snap         *voldb.Snapshot
	img          *imagedb.Image
	// size, typeID and typeName are the new volume's (source other than
	// volume).
	size             int
	typeID, typeName string
}

// isNew says whether the cell makes the mapping's volume.
func (m *bootMapping) isNew() bool { return m.req.source != "volume" }

// resolveBootVolumes checks the volume mappings of req against the
// copies, in Nova's order, and keeps them in req.vols. A volume-backed
// server's image properties and disk config come from its boot volume
// (or the boot image of an image-to-volume mapping).
func (h *serversHandler) resolveBootVolumes(ctx context.Context, req *createRequest, flavor wire.Flavor) error {
	if len(req.bdms) == 0 {
		return nil
	}
	c := httpkit.CallerFrom(ctx)
	d := h.cfg.DB
	out := &bootVolumes{}
	// The boot image metadata of a server without an image
	// (get_bdm_image_metadata).
	minDisk := req.imageMinDisk
	if req.imageRef == "" {
		props, md, err := h.bootImageMeta(ctx, req, flavor)
		if err != nil {
			return err
		}
		minDisk = md
		req.imageProps = props
		if req.legacyBDM {
			req.bdms = legacyBoot(req.bdms, createRootDeviceName(props), false, "")
		}
		if req.autoDiskConfig, err = autoDiskConfig(req.diskConfig, "", props["auto_disk_config"]); err != nil {
			return err
		}
	}
	// _validate_flavor_image_nostatus: a root volume of a size asked for
	// holds the image's min_disk.
	for _, b := range req.bdms {
		if b.bootIndex == 0 && b.isVolume() && b.volumeSize > 0 && minDisk*gib > int64(b.volumeSize)*gib {
			return bad("Volume is smaller than the minimum size specified in image metadata. Volume size is %d bytes, minimum size is %d bytes.",
				int64(b.volumeSize)*gib, minDisk*gib)
		}
	}
	// _check_and_transform_bdm: an image boot's volumes (the request's)
	// cannot take the root device name ("vda", or the image's, which as
	// Nova compares it never matches); no volume for several instances.
	if req.imageRef != "" {
		for _, b := range req.bdms {
			if !b.fromImage && !b.legacy && b.isVolume() && strings.TrimPrefix(b.deviceName, "/dev/") == req.rootDeviceName {
				return bad("The volume cannot be assigned the same device name as the root device %s", req.rootDeviceName)
			}
		}
	}
	if req.count > 1 || req.minCount > 1 {
		for _, b := range req.bdms {
			if b.source == "volume" {
				return bad("Cannot attach one or more volumes to multiple instances")
			}
		}
	}
	// _get_volumes_for_bdms, then _validate_vol_az_for_create: every
	// volume named (and snapshot) in one cell.
	for i := range req.bdms {
		b := &req.bdms[i]
		if b.source != "volume" {
			continue
		}
		v, err := voldb.Get(ctx, d, b.id)
		if errors.Is(err, voldb.ErrNotFound) || (err == nil && !c.Admin && v.ProjectID != c.ProjectID) {
			return bad("Volume %s could not be found.", b.id)
		}
		if err != nil {
			return err
		}
		out.maps = append(out.maps, &bootMapping{req: b, vol: v})
	}
	// _validate_bdm: the boot sequence first.
	var boots []int64
	for _, b := range req.bdms {
		if b.bootIndex >= 0 {
			boots = append(boots, b.bootIndex)
		}
	}
	slices.Sort(boots)
	if len(boots) == 0 || !sequence(boots) {
		return bad("Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.")
	}
	for i := range req.bdms {
		b := &req.bdms[i]
		if !b.isVolume() {
			if err := checkDiskBus(b); err != nil {
				return err
			}
			continue
		}
		var m *bootMapping
		if b.source == "volume" {
			m = out.mapOf(b)
		} else {
			m = &bootMapping{req: b}
			out.maps = append(out.maps, m)
		}
		if err := h.resolveMapping(ctx, req, m); err != nil {
			return err
		}
		if err := checkDiskBus(b); err != nil {
			return err
		}
	}
	if err := out.oneCell(req); err != nil {
		return err
	}
	// The order of the mappings as given.
	slices.SortStableFunc(out.maps, func(a, b *bootMapping) int { return indexOf(req.bdms, a.req) - indexOf(req.bdms, b.req) })
	req.vols = out
	return nil
}

func sequence(sorted []int64) bool {
	for i, n := range sorted {
		if n != int64(i) {
			return false
		}
	}
	return true
}

func indexOf(bdms []bdmRequest, b *bdmRequest) int {
	for i := range bdms {
		if &bdms[i] == b {
			return i
		}
	}
	return len(bdms)
}

func (v *bootVolumes) mapOf(b *bdmRequest) *bootMapping {
	for _, m := range v.maps {
		if m.req == b {
			return m
		}
	}
	m := &bootMapping{req: b}
	v.maps = append(v.maps, m)
	return m
}

// checkDiskBus is Nova's InvalidBDMDiskBus, whose text is its parent's
// (the class misspells msg_fmt).
func checkDiskBus(b *bdmRequest) error {
	if b.diskBus != "" && !slices.Contains(bdmDiskBuses, b.diskBus) {
		return bad("Block Device Mapping is Invalid.")
	}
	return nil
}

// resolveMapping is _validate_bdm for one volume mapping: the type asked
// for, then what the mapping names, and its size.
func (h *serversHandler) resolveMapping(ctx context.Context, req *createRequest, m *bootMapping) error {
	c := httpkit.CallerFrom(ctx)
	d := h.cfg.DB
	b := m.req
	var typ *voltypes.Type
	if b.volumeType != "" {
		t, err := h.volumeType(ctx, b.volumeType)
		if err != nil {
			return err
		}
		typ = t
	}
	switch b.source {
	case "image":
		img, err := (&imagedb.Store{}).GetWithProperties(ctx, d, b.id)
		if errors.Is(err, imagedb.ErrNotFound) || (err == nil && !img.VisibleTo(c.ProjectID, c.Admin)) {
			return bad("Block Device Mapping is Invalid: failed to get image %s.", b.id)
		}
		if err != nil {
			return err
		}
		if b.volumeSize == 0 {
			return bad("Images with destination_type 'volume' need to have a non-zero size specified")
		}
		// Cinder's create from an image: an active image.
		if img.Status != imagedb.StatusActive {
			return bad("Image %s is not active.", b.id)
		}
		m.img, m.size = img, b.volumeSize
	case "volume":
		v := m.vol
		// check_attach_and_reserve_volume (multiattach below 2.60; the
		// reserve is Cinder's attachment_create, made in the create's
		// transaction).
		if v.Multiattach && !apiVersion(ctx).AtLeast(Version{2, 60}) {
			return bad("Multiattach volumes are only supported starting with compute API version 2.60.")
		}
		if v.Status != voldb.StatusAvailable || v.Cell == "" {
			return bootReserveRefused(ctx, v.ID, v.Status)
		}
		m.size = v.SizeGB
	case "snapshot":
		s, err := voldb.GetSnapshot(ctx, d, b.id)
		if err == nil && !c.Admin && s.ProjectID != c.ProjectID {
			err = voldb.ErrSnapshotNotFound
		}
		var sv *voldb.Volume
		if err == nil {
			sv, err = voldb.Get(ctx, d, s.VolumeID)
		}
		if errors.Is(err, notfound.Err) {
			return bad("Block Device Mapping is Invalid: failed to get snapshot %s.", b.id)
		}
		if err != nil {
			return err
		}
		// Cinder's create from a snapshot: an available snapshot.
		if s.Status != voldb.StatusAvailable || s.Cell == "" {
			return bad("Invalid snapshot: Originating snapshot status must be one of 'available' values")
		}
		m.snap, m.snapVol, m.size = s, sv, b.volumeSize
		if m.size == 0 {
			m.size = s.SizeGB
		}
		if typ == nil {
			m.typeID, m.typeName = sv.TypeID, sv.TypeName
		}
	case "blank":
		if b.volumeSize == 0 {
			return bad("Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size")
		}
		m.size = b.volumeSize
	}
	if m.isNew() && m.typeID == "" {
		if typ == nil {
			t, err := h.defaultVolumeType(ctx)
			if err != nil {
				return err
			}
			typ = t
		}
		m.typeID, m.typeName = typ.ID, typ.Name
	}
	return nil
}

// volumeType is the type a mapping names (2.67): Nova's
// _check_requested_volume_type, by id or name among the types.
func (h *serversHandler) volumeType(ctx context.Context, idOrName string) (*voltypes.Type, error) {
	c := httpkit.CallerFrom(ctx)
	if h.cfg.VolumeTypes == nil {
		if idOrName == voltypes.DefaultTypeID || idOrName == voltypes.DefaultTypeName {
			return h.defaultVolumeType(ctx)
		}
		return nil, bad("Volume type %s could not be found.", idOrName)
	}
	t, err := h.cfg.VolumeTypes.Type(ctx, h.cfg.DB, idOrName, c.ProjectID, c.Admin)
	if errors.Is(err, notfound.Err) {
		return nil, bad("Volume type %s could not be found.", idOrName)
	}
	return t, err
}

// defaultVolumeType is the type of the volumes made without one
// (Cinder's default type; without a type store, __DEFAULT__).
func (h *serversHandler) defaultVolumeType(ctx context.Context) (*voltypes.Type, error) {
	if h.cfg.VolumeTypes == nil {
		return &voltypes.Type{ID: voltypes.DefaultTypeID, Name: voltypes.DefaultTypeName}, nil
	}
	t, err := h.cfg.VolumeTypes.Default(ctx, h.cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("default volume type: %w", err)
	}
	return t, nil
}

// bootImageMeta is get_bdm_image_metadata for a server without an
// image: the boot mapping's image, or its volume's (a snapshot's
// volume's) image metadata, which must be bootable; then the image checks
// of the create that apply (active, the flavor's memory).
func (h *serversHandler) bootImageMeta(ctx context.Context, req *createRequest, flavor wire.Flavor) (props map[string]string, minDisk int64, err error) {
	c := httpkit.CallerFrom(ctx)
	d := h.cfg.DB
	for _, b := range req.bdms {
		// A legacy mapping boots from the device whose letter is a.
		if (!req.legacyBDM && b.bootIndex != 0) || (req.legacyBDM && deviceLetter(b.deviceName) != "a") {
			continue
		}
		volumeID := ""
		switch b.source {
		case "snapshot":
			s, err := voldb.GetSnapshot(ctx, d, b.id)
			if errors.Is(err, notfound.Err) || (err == nil && !c.Admin && s.ProjectID != c.ProjectID) {
				return nil, 0, bad("Block Device Mapping is Invalid: failed to get snapshot %s.", b.id)
			}
			if err != nil {
				return nil, 0, err
			}
			volumeID = s.VolumeID
		case "volume":
			volumeID = b.id
		case "image":
			img, err := (&imagedb.Store{}).GetWithProperties(ctx, d, b.id)
			if errors.Is(err, imagedb.ErrNotFound) || (err == nil && !img.VisibleTo(c.ProjectID, c.Admin)) {
				return nil, 0, bad("Block Device Mapping is Invalid: failed to get image %s.", b.id)
			}
			if err != nil {
				return nil, 0, err
			}
			if img.Status != imagedb.StatusActive {
				return nil, 0, bad("Image %s is not active.", b.id)
			}
			if int64(img.MinRAM) > flavor.RAMMB {
				return nil, 0, bad("Flavor's memory is too small for requested image.")
			}
			return img.Properties, int64(img.MinDisk), nil
		}
		if volumeID == "" {
			return nil, 0, nil
		}
		v, err := voldb.Get(ctx, d, volumeID)
		if errors.Is(err, voldb.ErrNotFound) || (err == nil && b.source == "volume" && !c.Admin && v.ProjectID != c.ProjectID) {
			return nil, 0, bad("Block Device Mapping is Invalid: failed to get volume %s.", volumeID)
		}
		if err != nil {
			return nil, 0, err
		}
		if !v.Bootable {
			return nil, 0, bad("Block Device %s is not bootable.", volumeID)
		}
		props = map[string]string{}
		for k, val := range v.ImageMetadata {
			switch k {
			case "image_id", "image_name", "checksum", "container_format", "disk_format", "min_disk", "min_ram", "size":
				continue
			}
			props[k] = val
		}
		if n, err := strconv.ParseInt(v.ImageMetadata["min_ram"], 10, 64); err == nil && n > flavor.RAMMB {
			return nil, 0, bad("Flavor's memory is too small for requested image.")
		}
		minDisk, _ = strconv.ParseInt(v.ImageMetadata["min_disk"], 10, 64)
		return props, minDisk, nil
	}
	return nil, 0, nil
}

// devicePrefixRE and deviceDigitsRE are what Nova's get_device_letter
// strips: the bus prefix (xvd, vd, sd, hd) and the digits.
var (
	devicePrefixRE = regexp.MustCompile(`^((x?v|s|h)d)`)
	deviceDigitsRE = regexp.MustCompile(`\d+`)
)

// deviceLetter is Nova's block_device.get_device_letter.
func deviceLetter(name string) string {
	return deviceDigitsRE.ReplaceAllString(devicePrefixRE.ReplaceAllString(strings.TrimPrefix(name, "/dev/"), ""), "")
}

// oneCell is _validate_vol_az_for_create with cross_az_attach = False:
// the existing volumes and snapshots named are in one cell (and zone),
// the zone asked for is theirs, and a cell the build is sent to already
// holds them.
func (v *bootVolumes) oneCell(req *createRequest) error {
	var cells, zones []string
	for _, m := range v.maps {
		var cell, zone string
		switch {
		case m.vol != nil:
			cell, zone = m.vol.Cell, m.vol.AvailabilityZone
		case m.snap != nil:
			cell, zone = m.snap.Cell, m.snapVol.AvailabilityZone
		default:
			continue
		}
		zones = append(zones, zone)
		if !slices.Contains(cells, cell) {
			cells = append(cells, cell)
		}
	}
	if len(cells) == 0 {
		return nil
	}
	if len(cells) > 1 {
		return bad("The availability zone between the server and its attached volumes do not match: Volumes are in different availability zones: %s.",
			strings.Join(zones, ","))
	}
	v.cell, v.zone = cells[0], zones[0]
	if req.az != "" && req.az != v.zone {
		return bad("The availability zone between the server and its attached volumes do not match: Server and volumes are not in the same availability zone. Server is in: %s. Volumes are in: %s.",
			req.az, v.zone)
	}
	for _, t := range []string{req.forcedCell, req.requestedCell} {
		if t != "" && !cellpath.Contains(t, v.cell) && !cellpath.Contains(v.cell, t) {
			return bad("The availability zone between the server and its attached volumes do not match: Server and volumes are not in the same availability zone. Server is in: %s. Volumes are in: %s.",
				req.az, v.zone)
		}
	}
	return nil
}

// bootReserveRefused is Cinder's attachment_create refusal of a volume
// that is not available as Nova's create answers it: _validate_bdm makes
// the InvalidInput an InvalidVolume (400).
func bootReserveRefused(ctx context.Context, volume, status string) error {
	return bad("Invalid volume: %s", reserveRefusal(ctx, volume, status))
}

// pinToVolumes sends a build with existing volumes only to their cell
// (its target cell, or one below it the build already targets); an
// admin's target_cell elsewhere is refused as a zone the volumes are not
// in.
func (v *bootVolumes) pinToVolumes(b *wire.BuildInstances) error {
	if v == nil || v.cell == "" {
		return nil
	}
	switch {
	case b.TargetCell == "" || cellpath.Contains(b.TargetCell, v.cell):
		b.TargetCell = v.cell
	case !cellpath.Contains(v.cell, b.TargetCell):
		return bad("The availability zone between the server and its attached volumes do not match: Server and volumes are not in the same availability zone. Server is in: %s. Volumes are in: %s.",
			b.TargetCell, v.zone)
	}
	return nil
}

// recordBootVolumes is the volumes' part of the create's transaction, for
// the n instances that fit the compute quota: the existing volumes
// reserved, the volume quota checked under its lock for the volumes to
// make and their copies written, and each instance's block devices.
func (h *serversHandler) recordBootVolumes(ctx context.Context, tx *db.Tx, req *createRequest, specs []wire.InstanceSpec, now time.Time) error {
	if req.vols == nil || len(req.vols.maps) == 0 {
		return nil
	}
	c := httpkit.CallerFrom(ctx)
	var news []*voldb.Volume
	for i := range specs {
		spec := &specs[i]
		spec.BlockDevices = nil
		for _, m := range req.vols.maps {
			b := m.req
			bd := wire.BlockDevice{UUID: uuid.NewString(), SourceType: b.source, DestinationType: b.dest, AttachmentID: uuid.NewString(),
				VolumeSize: m.size, BootIndex: int(b.bootIndex), DeviceName: b.deviceName, DeleteOnTermination: b.deleteOnTermination,
				Tag: b.tag, GuestFormat: b.guestFormat, DiskBus: b.diskBus, DeviceType: b.devType}
			if !m.isNew() {
				bd.VolumeID = m.vol.ID
				ok, err := voldb.SetStatus(ctx, tx, voldb.StatusChange{ID: m.vol.ID, From: []string{voldb.StatusAvailable}, To: volumeReserved, Now: now})
				if err != nil {
					return err
				}
				if !ok {
					cur, err := voldb.Get(ctx, tx, m.vol.ID)
					if errors.Is(err, voldb.ErrNotFound) {
						return bad("Volume %s could not be found.", m.vol.ID)
					}
					if err != nil {
						return err
					}
					return bootReserveRefused(ctx, cur.ID, cur.Status)
				}
				spec.BlockDevices = append(spec.BlockDevices, bd)
				continue
			}
			nv := &voldb.Volume{ID: uuid.NewString(), ProjectID: c.ProjectID, UserID: c.UserID, SizeGB: m.size, Status: voldb.StatusCreating,
				TypeID: m.typeID, TypeName: m.typeName, AvailabilityZone: h.newVolumeZone(req), CreatedAt: now, UpdatedAt: now}
			switch b.source {
			case "blank":
				// Nova's name of the blank volumes it makes.
				nv.Name = spec.UUID + "-blank-vol"
			case "image":
				nv.ImageID, nv.Bootable, nv.ImageMetadata = m.img.ID, true, volumeImageMetadata(m.img)
				bd.ImageID, bd.ImageSize = m.img.ID, m.img.Size
			case "snapshot":
				nv.SnapshotID, nv.Bootable, nv.ImageMetadata = m.snap.ID, m.snapVol.Bootable, m.snapVol.ImageMetadata
				bd.SnapshotID = m.snap.ID
			}
			bd.VolumeID, bd.New, bd.VolumeTypeID, bd.VolumeType = nv.ID, true, m.typeID, m.typeName
			news = append(news, nv)
			spec.BlockDevices = append(spec.BlockDevices, bd)
		}
	}
	if len(news) == 0 {
		return nil
	}
	if err := h.checkVolumeQuota(ctx, tx, c.ProjectID, news); err != nil {
		return err
	}
	for _, nv := range news {
		if err := voldb.Create(ctx, tx, nv); err != nil {
			return err
		}
	}
	return nil
}

// newVolumeZone is the zone of the volumes a boot makes: that of the
// existing volumes named, else the zone asked for, else the default.
func (h *serversHandler) newVolumeZone(req *createRequest) string {
	switch {
	case req.vols.zone != "":
		return req.vols.zone
	case req.az != "":
		return req.az
	}
	return h.cfg.DefaultAvailabilityZone
}

// volumeImageMetadata is Cinder's volume_image_metadata of a volume made
// from img.
func volumeImageMetadata(img *imagedb.Image) map[string]string {
	md := map[string]string{}
	for k, v := range img.Properties {
		md[k] = v
	}
	md["image_id"], md["image_name"], md["checksum"] = img.ID, img.Name, img.Checksum
	md["container_format"], md["disk_format"] = img.ContainerFormat, img.DiskFormat
	md["min_disk"], md["min_ram"], md["size"] = strconv.Itoa(img.MinDisk), strconv.Itoa(img.MinRAM), strconv.FormatInt(img.Size, 10)
	return md
}

// checkVolumeQuota takes the project's volume quota lock in tx and checks
// the volumes to make one after the other, as Cinder's creates would
// (per_volume_gigabytes, then volumes, gigabytes and the type's), counting
// the use from the copy. Cinder's OverLimit reaches Nova's create as
// OverQuota with Cinder's message, which servers.py answers 403.
func (h *serversHandler) checkVolumeQuota(ctx context.Context, tx *db.Tx, project string, news []*voldb.Volume) error {
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
	use, err := voldb.Usage(ctx, tx, project)
	if err != nil {
		return err
	}
	for _, nv := range news {
		size := int64(nv.SizeGB)
		if l, ok := lim["per_volume_gigabytes"]; ok && l >= 0 && size > l {
			return forbidden2(fmt.Sprintf("Requested volume size %dG is larger than maximum allowed limit %dG.", size, l))
		}
		for _, d := range []struct {
			key   string
			n     int64
			count bool
		}{{"volumes", 1, true}, {"gigabytes", size, false}, {"volumes_" + nv.TypeName, 1, true}, {"gigabytes_" + nv.TypeName, size, false}} {
			l, ok := lim[d.key]
			if !ok || l < 0 || use[d.key]+d.n <= l {
				continue
			}
			if d.count {
				return forbidden2(fmt.Sprintf("Maximum number of volumes allowed (%d) exceeded for quota '%s'.", l, d.key))
			}
			return forbidden2(fmt.Sprintf("Requested volume or snapshot exceeds allowed %s quota. Requested %dG, quota is %dG and %dG has been consumed.",
				d.key, d.n, l, use[d.key]))
		}
		use["volumes"]++
		use["gigabytes"] += size
		use["volumes_"+nv.TypeName]++
		use["gigabytes_"+nv.TypeName] += size
	}
	return nil
}
