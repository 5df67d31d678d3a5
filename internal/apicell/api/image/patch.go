package image

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// The JSON patch media types Glance accepts, and the JSON Schema draft
// each one's operations follow.
const (
	patchV20 = "application/openstack-images-v2.0-json-patch"
	patchV21 = "application/openstack-images-v2.1-json-patch"
)

var patchOps = []string{"add", "remove", "replace"}

// change is one operation of a patch.
type change struct {
	op    string
	path  []string
	value json.RawMessage
	draft int
}

// updateImage answers PATCH /v2/images/{id}. The operations apply in order
// to a copy; the result is written in one transaction, or nothing is.
func (h *imagesHandler) updateImage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	changes, err := parsePatch(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var img *imagedb.Image
	err = h.retryStale(ctx, func(tx *db.Tx) error {
		cur, err := h.mutableImage(ctx, tx, r.PathValue("id"), "You are not authorized to complete modify_image action.")
		if err != nil {
			return err
		}
		img = cur.Clone()
		for _, ch := range changes {
			if err := applyChange(httpkit.CallerFrom(ctx), cur, img, ch); err != nil {
				return err
			}
		}
		if err := checkQuotas(img); err != nil {
			return err
		}
		if len(changes) == 0 {
			return nil
		}
		return h.store.Update(ctx, tx, img)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteMarshal(w, http.StatusOK, view(img))
}

// retryStale runs f in a transaction, again when the image changed under
// it (a concurrent write), a few times.
func (h *imagesHandler) retryStale(ctx context.Context, f func(*db.Tx) error) error {
	var err error
	for range 5 {
		err = h.cfg.DB.InTx(ctx, f)
		if !errors.Is(err, imagedb.ErrStale) {
			return err
		}
	}
	return err
}

// parsePatch reads and checks a patch as Glance's deserializer does,
// before the image is looked at: media type (415), shape (400), pointer
// (400), read-only and reserved attributes (403), then each value against
// the image schema (400).
func parsePatch(w http.ResponseWriter, r *http.Request) ([]change, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	draft := map[string]int{patchV20: 4, patchV21: 10}[ct]
	if err != nil || draft == 0 {
		e := errorf(http.StatusUnsupportedMediaType, "Image PATCH expects Content-Type one of: %s, %s", patchV20, patchV21)
		e.Header = http.Header{"Accept-Patch": {patchV20 + ", " + patchV21}}
		return nil, e
	}
	body, err := readJSON(w, r)
	if err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil || raws == nil {
		return nil, errorf(http.StatusBadRequest, "Request body must be a JSON array of operation objects.")
	}
	changes := make([]change, 0, len(raws))
	for _, raw := range raws {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return nil, errorf(http.StatusBadRequest, "Operations must be JSON objects.")
		}
		ch, err := parseChange(obj, draft)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

func parseChange(obj map[string]json.RawMessage, draft int) (change, error) {
	ch := change{draft: draft}
	bad := func(format string, args ...any) error { return errorf(http.StatusBadRequest, format, args...) }
	var pointer string
	if draft == 10 {
		rawOp, ok := obj["op"]
		if !ok {
			return ch, bad("Unable to find `op` in JSON Schema change. It must be one of the following: %s.", strings.Join(patchOps, ", "))
		}
		if json.Unmarshal(rawOp, &ch.op) != nil || !slices.Contains(patchOps, ch.op) {
			return ch, bad("Invalid operation: `%s`. It must be one of the following: %s.", strings.Trim(string(rawOp), `"`), strings.Join(patchOps, ", "))
		}
		rawPath, ok := obj["path"]
		if !ok {
			return ch, bad("Unable to find 'path' in JSON Schema change")
		}
		if json.Unmarshal(rawPath, &pointer) != nil {
			return ch, bad("Pointer `%s` does not start with \"/\".", string(rawPath))
		}
	} else {
		for _, op := range patchOps {
			if _, ok := obj[op]; ok {
				if ch.op != "" {
					return ch, bad(`Operation objects must contain only one member named "add", "remove", or "replace".`)
				}
				ch.op = op
			}
		}
		if ch.op == "" {
			return ch, bad(`Operation objects must contain exactly one member named "add", "remove", or "replace".`)
		}
		if json.Unmarshal(obj[ch.op], &pointer) != nil {
			return ch, bad("Pointer `%s` does not start with \"/\".", string(obj[ch.op]))
		}
	}
	path, err := decodePointer(pointer)
	if err != nil {
		return ch, err
	}
	ch.path = path
	depth := 1
	if path[0] == "locations" && ch.op != "replace" {
		depth = 2
	}
	if len(path) != depth {
		return ch, bad("Invalid JSON pointer for this resource: '/%s'", strings.Join(path, "/"))
	}
	if ch.op != "remove" {
		v, ok := obj["value"]
		if !ok {
			return ch, bad(`Operation "%s" requires a member named "value".`, ch.op)
		}
		ch.value = v
	}
	root := path[0]
	switch {
	case slices.Contains(readOnly, root):
		return ch, errorf(http.StatusForbidden, "Attribute '%s' is read-only.", root)
	case root == "locations":
		return ch, errorf(http.StatusForbidden, "It's not allowed to %s locations if locations are invisible.",
			map[string]string{"add": "add", "remove": "remove", "replace": "update"}[ch.op])
	case root != "owner" && isReserved(root):
		return ch, errorf(http.StatusForbidden, "Attribute '%s' is reserved.", root)
	}
	if ch.op == "remove" {
		return ch, nil
	}
	// Check the value against the schema now, on a scratch image.
	if slices.Contains(baseAttrs, root) {
		if err := setAttr(&imagedb.Image{}, root, ch.value); err != nil {
			return ch, err
		}
	} else {
		if err := checkCustomKey(root); err != nil {
			return ch, err
		}
		if _, err := customValue(root, ch.value); err != nil {
			return ch, err
		}
	}
	return ch, nil
}

var (
	adjacentSlash = regexp.MustCompile(`/\s*?/`)
	badEscape     = regexp.MustCompile(`~[^01]`)
)

// decodePointer checks and decodes the limited JSON pointers Glance
// accepts ("/name", "/locations/0", with ~0 and ~1 escapes).
func decodePointer(p string) ([]string, error) {
	bad := func(format string) error { return errorf(http.StatusBadRequest, format, p) }
	switch {
	case !strings.HasPrefix(p, "/"):
		return nil, bad("Pointer `%s` does not start with \"/\".")
	case adjacentSlash.MatchString(p[1:]):
		return nil, bad("Pointer `%s` contains adjacent \"/\".")
	case len(p) > 1 && strings.HasSuffix(p, "/"):
		return nil, bad("Pointer `%s` end with \"/\".")
	case strings.TrimSpace(p[1:]) == "/":
		return nil, bad("Pointer `%s` does not contains valid token.")
	case badEscape.MatchString(p) || strings.HasSuffix(p, "~"):
		return nil, bad("Pointer `%s` contains \"~\" not part of a recognized escape sequence.")
	}
	parts := strings.Split(strings.TrimLeft(p, "/"), "/")
	for i, s := range parts {
		parts[i] = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~"))
	}
	return parts, nil
}

// applyChange applies one operation to img (cur is the image as stored),
// with Glance's rules: base attributes are replaced or added but never
// removed; a custom property must exist to be replaced or removed; only
// admins change the owner or make an image public; the formats change only
// while the image is queued.
func applyChange(c httpkit.Caller, cur, img *imagedb.Image, ch change) error {
	root := ch.path[0]
	if slices.Contains(baseAttrs, root) {
		switch {
		case ch.op == "remove":
			return errorf(http.StatusForbidden, "Property %s may not be removed.", root)
		case ch.op == "add" && ch.draft == 4:
			return errorf(http.StatusConflict, "Property %s already present.", root)
		case root == "owner" && !c.Admin:
			return errorf(http.StatusForbidden, "Owner can't be updated by non admin.")
		case (root == "disk_format" || root == "container_format") && cur.Status != imagedb.StatusQueued:
			return errorf(http.StatusForbidden, "Attribute %s can be only replaced for a queued image.", root)
		}
		if err := setAttr(img, root, ch.value); err != nil {
			return err
		}
		if root == "visibility" {
			if err := checkVisibility(c, img.Visibility); err != nil {
				return err
			}
		}
		return nil
	}
	_, exists := img.Properties[root]
	switch ch.op {
	case "remove":
		if !exists {
			return errorf(http.StatusConflict, "Property %s does not exist.", root)
		}
		delete(img.Properties, root)
	case "replace":
		if !exists {
			return errorf(http.StatusConflict, "Property %s does not exist.", root)
		}
		fallthrough
	default:
		if exists && ch.op == "add" && ch.draft == 4 {
			return errorf(http.StatusConflict, "Property %s already present.", root)
		}
		v, err := customValue(root, ch.value)
		if err != nil {
			return err
		}
		img.Properties[root] = v
	}
	return nil
}
