package compute

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The rebuild action, as Nova's: the body is checked against the schema
// of the request's microversion (2.1, 2.19 description, 2.54 key_name,
// 2.57 user_data without personality, 2.63 trusted_image_certificates);
// what it changes is written to the API cell's copy with the action, so
// the 202 and every read after it show the new image, name, key...; the
// 202 body is Nova's rebuild view (below 2.75: without the extended
// attributes, statuses, zone, usage, volumes and security groups).

// rebuildFields are the fields of the rebuild body at a microversion.
func rebuildFields(v Version) []string {
	f := []string{"name", "imageRef", "adminPass", "metadata", "preserve_ephemeral", "OS-DCF:diskConfig", "accessIPv4", "accessIPv6"}
	if !v.AtLeast(Version{2, 57}) {
		f = append(f, "personality")
	}
	if v.AtLeast(Version{2, 19}) {
		f = append(f, "description")
	}
	if v.AtLeast(Version{2, 54}) {
		f = append(f, "key_name")
	}
	if v.AtLeast(Version{2, 57}) {
		f = append(f, "user_data")
	}
	if v.AtLeast(Version{2, 63}) {
		f = append(f, "trusted_image_certificates")
	}
	return f
}

// rebuildRequest is a checked rebuild body.
type rebuildRequest struct {
	imageRef  string
	adminPass string
	// diskConfig is OS-DCF:diskConfig as given ("": the new image's).
	diskConfig string
	change     apidb.RebuildChange
	// metadataItems is how many metadata items the rebuild sets (-1: none
	// given), for the quota.
	metadataItems int
}

// readRebuild checks a rebuild body as Nova's schema of v does.
func readRebuild(v Version, arg json.RawMessage) (*rebuildRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(arg))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, bad("Malformed request body")
	}
	body, ok := raw.(map[string]any)
	if !ok {
		return nil, invalid("rebuild", raw, "%s is not of type 'object'", pyRepr(raw))
	}
	allowed := rebuildFields(v)
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return nil, bad("Invalid input for field/attribute rebuild. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	if _, ok := body["imageRef"]; !ok {
		return nil, invalid("rebuild", body, "'imageRef' is a required property")
	}
	out := &rebuildRequest{metadataItems: -1}
	c := &out.change
	str := func(k string) (string, error) {
		s, ok := body[k].(string)
		if !ok {
			return "", invalid(k, body[k], "%s is not of type 'string'", pyRepr(body[k]))
		}
		return s, nil
	}
	// Each field in the order of Nova's schema.
	for _, k := range allowed {
		val, given := body[k]
		if !given {
			continue
		}
		var err error
		switch k {
		case "name":
			if err = checkName(k, val); err == nil {
				s := val.(string)
				c.Name = &s
			}
		case "imageRef":
			var s string
			if s, err = str(k); err == nil && !uuidRE.MatchString(s) {
				err = invalid(k, s, "%s is not a 'uuid'", pyRepr(s))
			}
			out.imageRef = strings.ToLower(s)
		case "adminPass":
			out.adminPass, err = str(k)
		case "metadata":
			var m map[string]string
			if m, err = checkMetadata(k, val); err == nil {
				c.Metadata, out.metadataItems = m, len(m)
			}
		case "preserve_ephemeral":
			err = checkBoolean(k, val)
		case "OS-DCF:diskConfig":
			if err = checkEnum(k, val, "AUTO", "MANUAL"); err == nil {
				out.diskConfig = val.(string)
			}
		case "accessIPv4", "accessIPv6":
			format := map[string]string{"accessIPv4": "ipv4", "accessIPv6": "ipv6"}[k]
			if err = checkIP(k, val, format); err == nil {
				s := val.(string)
				if k == "accessIPv4" {
					c.AccessIPv4 = &s
				} else {
					c.AccessIPv6 = &s
				}
			}
		case "personality":
			err = checkPersonality(val)
		case "description":
			if err = checkServerDescription(val); err == nil {
				c.SetDescription = true
				if s, ok := val.(string); ok {
					c.Description = &s
				}
			}
		case "key_name":
			// Nova's name_or_none: null takes the key pair away.
			c.SetKeyName = true
			if val != nil {
				var s string
				if s, err = str(k); err == nil {
					err = checkString(k, s, 1, 255)
				}
				c.KeyName = s
			}
		case "user_data":
			// null takes the user data away.
			c.SetUserData = true
			if val != nil {
				var s string
				if s, err = str(k); err == nil {
					err = checkUserData(s)
				}
				c.UserData = s
			}
		case "trusted_image_certificates":
			b, _ := json.Marshal(val)
			err = checkTrustedCerts(b)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkPersonality is Nova's parameter_types.personality: a list of
// {"path": string, "contents": base64 string}, nothing else. (The files
// are not injected: no driver here has a disk to write them to.)
func checkPersonality(v any) error {
	items, ok := v.([]any)
	if !ok {
		return invalid("personality", v, "%s is not of type 'array'", pyRepr(v))
	}
	for _, it := range items {
		f, ok := it.(map[string]any)
		if !ok {
			return invalid("personality", it, "%s is not of type 'object'", pyRepr(it))
		}
		for k, x := range f {
			switch k {
			case "path":
				if _, ok := x.(string); !ok {
					return invalid("path", x, "%s is not of type 'string'", pyRepr(x))
				}
			case "contents":
				s, ok := x.(string)
				if !ok {
					return invalid("contents", x, "%s is not of type 'string'", pyRepr(x))
				}
				if _, err := base64.StdEncoding.DecodeString(s); err != nil {
					return invalid("contents", s, "%s is not a 'base64'", pyRepr(s))
				}
			default:
				return bad("Invalid input for field/attribute personality. Additional properties are not allowed ('%s' was unexpected)", k)
			}
		}
	}
	return nil
}

// rebuild re-creates the server from an image (the same or another) on its
// host. Everything the body changes is written with the action, so a
// refused rebuild changes nothing. It answers 202 with the rebuild view.
func (h *movesHandler) rebuild(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	ctx := r.Context()
	v := apiVersion(ctx)
	req, err := readRebuild(v, arg)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	img, err := checkImage(ctx, h.cfg.DB, req.imageRef, in.Flavor)
	volumeBacked := false
	if err == nil {
		volumeBacked, err = isVolumeBacked(ctx, h.cfg.DB, in)
	}
	if err == nil && !volumeBacked {
		err = checkFlavorDisk(img, in.Flavor)
	}
	if err == nil {
		req.change.AutoDiskConfig, err = autoDiskConfig(req.diskConfig, img.ID, img.AutoDiskConfig)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if c := req.change; c.SetKeyName && c.KeyName != "" {
		_, err := apidb.GetKeyPair(ctx, h.cfg.DB, httpkit.CallerFrom(ctx).UserID, c.KeyName)
		if errors.Is(err, apidb.ErrNotFound) {
			err = bad("Invalid key_name provided.")
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
	}
	req.change.ImageRef = req.imageRef
	if volumeBacked {
		// Nova below 2.93: the image in a volume-backed server's root
		// volume cannot change; the same image is a plain rebuild, and the
		// server keeps its image_ref ("", or the image with the mappings
		// it was booted from; its cell keeps it too).
		// (Nova's 400 for trusted_image_certificates on a volume-backed
		// server cannot arise: readRebuild refuses any certificates.)
		vol, err := bootVolume(ctx, h.cfg.DB, in)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if vol.ImageMetadata["image_id"] != req.imageRef {
			h.log.Debug("rebuild of a volume-backed server with another image refused", "request_id", httpkit.RequestID(ctx),
				"instance", in.UUID, "image", req.imageRef, "volume_image", vol.ImageMetadata["image_id"])
			h.fail(w, r, bad("Image %s is unacceptable: Unable to rebuild with a different image for a volume-backed server.", req.imageRef))
			return
		}
		req.change.ImageRef = in.ImageRef
	}
	if msg, err := checkVolumesInUse(ctx, h.cfg.DB, in); err != nil || msg != "" {
		if err == nil {
			err = bad("%s", msg)
		}
		h.fail(w, r, err)
		return
	}
	params, _ := json.Marshal(wire.ActionParams{ImageRef: req.imageRef})
	pass := req.adminPass
	if pass == "" {
		pass = randomString(12)
	}
	rec := &statusRecorder{ResponseWriter: w}
	h.actions.startActionWith(rec, r, in, "rebuild", params, nil, func(ctx context.Context, tx *db.Tx) error {
		if req.metadataItems >= 0 {
			if err := h.quota.checkMetadataItems(ctx, tx, in.ProjectID, in.UserID, req.metadataItems); err != nil {
				return err
			}
		}
		return apidb.Rebuild(ctx, tx, in.UUID, req.change, h.cfg.Now())
	})
	if rec.status != http.StatusAccepted {
		return
	}
	cur, err := apidb.Get(ctx, h.cfg.DB, in.UUID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	view, err := h.servers.rebuildView(r, cur)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	view["adminPass"] = pass
	httpkit.WriteJSON(w, http.StatusAccepted, map[string]any{"server": view})
}
