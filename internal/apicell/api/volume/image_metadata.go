package volume

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"slices"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// A volume's image metadata (Cinder's volume_image_metadata extension:
// the os-show_image_metadata, os-set_image_metadata and
// os-unset_image_metadata actions). The API cell owns it on its copy, as
// the user metadata; the cells never read it.

// imageMetadataKeyRE is Cinder's parameter_types.image_metadata key
// pattern.
var imageMetadataKeyRE = regexp.MustCompile(`^[a-zA-Z0-9-_:. /]{1,255}$`)

// mysqlTextMax is the most a value of Cinder's format mysql_text holds.
const mysqlTextMax = 65535

// showImageMetadata answers {"metadata": the volume's image metadata}.
func (h *volumeActionsHandler) showImageMetadata(ctx context.Context, id string, _ body) (any, error) {
	v, err := h.getVolume(ctx, h.cfg.DB, id)
	if err != nil {
		return nil, err
	}
	md := v.ImageMetadata
	if md == nil {
		md = map[string]string{}
	}
	return map[string]any{"metadata": md}, nil
}

// setImageMetadata merges {"metadata": {...}} into the volume's image
// metadata (Cinder's schema set_image_metadata, then update_volume_metadata
// with its policy and its status rule) and answers the metadata after.
func (h *volumeActionsHandler) setImageMetadata(ctx context.Context, id string, args body) (any, error) {
	const action = "os-set_image_metadata"
	for _, k := range slices.Sorted(maps.Keys(args)) {
		if k != "metadata" {
			return nil, badRequest("Invalid input for field/attribute %s. Value: %s. Additional properties are not allowed ('%s' was unexpected)", action, jsonText(args), k)
		}
	}
	raw, ok := args["metadata"]
	if !ok {
		return nil, badRequest("Invalid input for field/attribute %s. Value: %s. 'metadata' is a required property", action, jsonText(args))
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, badRequest("Invalid input for field/attribute metadata. Value: %s. %s is not of type 'object'", jsonText(raw), jsonText(raw))
	}
	md := make(map[string]string, len(obj))
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !imageMetadataKeyRE.MatchString(k) {
			return nil, badRequest("Invalid input for field/attribute metadata. Value: %s. Additional properties are not allowed ('%s' was unexpected)", jsonText(raw), k)
		}
		s, ok := obj[k].(string)
		if !ok {
			return nil, badRequest("Invalid input for field/attribute %s. Value: %s. %s is not of type 'string'", k, jsonText(obj[k]), jsonText(obj[k]))
		}
		if len(s) > mysqlTextMax {
			return nil, badRequest("Invalid input for field/attribute %s. Value: %s. '%s' is not a 'mysql_text'", k, s, s)
		}
		md[k] = s
	}
	if !httpkit.CallerFrom(ctx).Allowed(h.cfg.Policy, ruleVolMetaUpdate) {
		return nil, forbidden(ruleVolMetaUpdate)
	}
	var out map[string]string
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		v, err := h.getVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		if v.Status == voldb.StatusMaintenance || v.Status == voldb.StatusUploading {
			return badRequest("Invalid volume: Updating volume metadata is not allowed for volumes in %s status.", v.Status)
		}
		out, err = voldb.ChangeImageMetadata(ctx, tx, id, h.cfg.Now().UTC(), func(cur map[string]string) (map[string]string, error) {
			next := maps.Clone(cur)
			if next == nil {
				next = map[string]string{}
			}
			maps.Copy(next, md)
			return next, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata": out}, nil
}

// errNoImageMetadataKey is an unset of a key the volume's image metadata
// does not have.
var errNoImageMetadataKey = errors.New("no such image metadata key")

// unsetImageMetadata deletes one key of the volume's image metadata
// (Cinder's GlanceMetadataNotFound, 404, when it has no such key).
func (h *volumeActionsHandler) unsetImageMetadata(ctx context.Context, id string, args body) (any, error) {
	const action = "os-unset_image_metadata"
	for _, k := range slices.Sorted(maps.Keys(args)) {
		if k != "key" {
			return nil, badRequest("Invalid input for field/attribute %s. Value: %s. Additional properties are not allowed ('%s' was unexpected)", action, jsonText(args), k)
		}
	}
	raw, ok := args["key"]
	if !ok {
		return nil, badRequest("Invalid input for field/attribute %s. Value: %s. 'key' is a required property", action, jsonText(args))
	}
	key, ok := raw.(string)
	switch {
	case !ok:
		return nil, badRequest("Invalid input for field/attribute key. Value: %s. %s is not of type 'string'", jsonText(raw), jsonText(raw))
	case key == "":
		return nil, badRequest("Invalid input for field/attribute key. Value: . '' is too short")
	case len(key) > 255:
		return nil, badRequest("Invalid input for field/attribute key. Value: %s. '%s' is too long", key, key)
	}
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		v, err := h.getVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, ok := v.ImageMetadata[key]; !ok {
			return notFound("Glance metadata for volume/snapshot %s cannot be found.", id)
		}
		if !httpkit.CallerFrom(ctx).Allowed(h.cfg.Policy, ruleVolMetaDelete) {
			return forbidden(ruleVolMetaDelete)
		}
		if v.Status == voldb.StatusMaintenance || v.Status == voldb.StatusUploading {
			return badRequest("Invalid volume: Deleting volume metadata is not allowed for volumes in %s status.", v.Status)
		}
		_, err = voldb.ChangeImageMetadata(ctx, tx, id, h.cfg.Now().UTC(), func(cur map[string]string) (map[string]string, error) {
			if _, ok := cur[key]; !ok {
				return nil, errNoImageMetadataKey
			}
			next := maps.Clone(cur)
			delete(next, key)
			return next, nil
		})
		if errors.Is(err, errNoImageMetadataKey) {
			return notFound("Glance metadata for volume/snapshot %s cannot be found.", id)
		}
		return err
	})
	return nil, err
}
