package volume

import (
	"maps"
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
)

// shownStatus is the status Cinder shows for a stored one.
func shownStatus(s string) string {
	switch s {
	case "managing":
		return "creating"
	case voldb.StatusErrorManaging:
		return voldb.StatusError
	case "error_managing_deleting":
		return voldb.StatusDeleting
	}
	return s
}

// volumeSummary is a volume in GET /volumes.
func (b *base) volumeSummary(r *http.Request, v *voldb.Volume) map[string]any {
	c := httpkit.CallerFrom(r.Context())
	return map[string]any{"id": v.ID, "name": nullable(v.Name), "links": links(r, c.ProjectID, "volumes", v.ID)}
}

// volumeMetadataView is the metadata Cinder shows: the user's, with the
// visible admin metadata (readonly) added.
func volumeMetadataView(v *voldb.Volume) map[string]string {
	md := maps.Clone(v.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	if v.ReadOnly != "" {
		md["readonly"] = v.ReadOnly
	}
	return md
}

// volumeDetail is a volume in the detail list, show, create and update
// (a name or description never given is null, as Cinder's None; the copy
// does not tell it from an empty one),
// as Cinder's v3 view builder and the view extensions write it for the
// request's microversion (≤ 3.60) and the caller's rules.
func (b *base) volumeDetail(r *http.Request, v *voldb.Volume) map[string]any {
	c := httpkit.CallerFrom(r.Context())
	ver := requestVersion(r.Context())
	d := map[string]any{
		"id":                  v.ID,
		"status":              shownStatus(v.Status),
		"size":                v.SizeGB,
		"availability_zone":   v.AvailabilityZone,
		"created_at":          cinderTime(v.CreatedAt),
		"updated_at":          cinderTime(v.UpdatedAt),
		"name":                nullable(v.Name),
		"description":         nullable(v.Description),
		"volume_type":         nullable(v.TypeName),
		"snapshot_id":         nullable(v.SnapshotID),
		"source_volid":        nullable(v.SourceVolID),
		"metadata":            volumeMetadataView(v),
		"links":               links(r, c.ProjectID, "volumes", v.ID),
		"user_id":             v.UserID,
		"bootable":            strings.ToLower(boolText(v.Bootable)),
		"encrypted":           false,
		"replication_status":  nil,
		"consistencygroup_id": nil,
		"multiattach":         v.Multiattach,
		"attachments":         attachmentsView(v.Attachments),
	}
	if c.Admin {
		d["migration_status"] = nil
	}
	if c.Allowed(b.cfg.Policy, ruleVolHostAttr) {
		d["os-vol-host-attr:host"] = nullable(v.Cell)
	}
	if c.Allowed(b.cfg.Policy, ruleVolMigAttr) {
		d["os-vol-mig-status-attr:migstat"] = nil
		d["os-vol-mig-status-attr:name_id"] = nil
	}
	if c.Allowed(b.cfg.Policy, ruleVolTenantAttr) {
		d["os-vol-tenant-attr:tenant_id"] = v.ProjectID
	}
	if len(v.ImageMetadata) > 0 && c.Allowed(b.cfg.Policy, ruleVolImageMetaShow) {
		d["volume_image_metadata"] = v.ImageMetadata
	}
	if ver.atLeast(3, 13) {
		d["group_id"] = nil
	}
	if ver.atLeast(3, 21) && c.Allowed(b.cfg.Policy, ruleVolProviderID) {
		d["provider_id"] = nil
	}
	if ver.atLeast(3, 48) {
		// shared_targets null is shown as true below 3.69.
		d["shared_targets"] = true
		d["service_uuid"] = nil
	}
	return d
}

// attachmentsView is the volume view's attachments (Cinder's
// _get_attachments): those attached, each with the volume's id as its id;
// host_name is the attached host, which the mirror does not hold (null).
func attachmentsView(atts []*voldb.Attachment) []any {
	out := []any{}
	for _, a := range atts {
		if a.Status != voldb.AttachAttached {
			continue
		}
		out = append(out, map[string]any{
			"server_id": a.InstanceUUID, "attachment_id": a.ID, "attached_at": cinderTime(a.AttachedAt), "host_name": nil,
			"volume_id": a.VolumeID, "device": a.Device, "id": a.VolumeID,
		})
	}
	return out
}

// boolText is Python's str(bool).
func boolText(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// snapshotView is a snapshot (summary and detail are the same), as
// Cinder's v3 view and the extended attributes extension write it.
func (b *base) snapshotView(r *http.Request, s *voldb.Snapshot) map[string]any {
	c := httpkit.CallerFrom(r.Context())
	ver := requestVersion(r.Context())
	md := s.Metadata
	if md == nil {
		md = map[string]string{}
	}
	d := map[string]any{
		"id":          s.ID,
		"created_at":  cinderTime(s.CreatedAt),
		"updated_at":  cinderTime(s.UpdatedAt),
		"name":        nullable(s.Name),
		"description": nullable(s.Description),
		"volume_id":   s.VolumeID,
		"status":      s.Status,
		"size":        s.SizeGB,
		"metadata":    md,
	}
	if c.Allowed(b.cfg.Policy, ruleSnapAttrs) {
		d["os-extended-snapshot-attributes:progress"] = s.Progress
		d["os-extended-snapshot-attributes:project_id"] = s.ProjectID
	}
	if ver.atLeast(3, 14) {
		d["group_snapshot_id"] = nil
	}
	if ver.atLeast(3, 41) {
		d["user_id"] = s.UserID
	}
	return d
}
