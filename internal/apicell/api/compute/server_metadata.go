package compute

import (
	"maps"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// metadataHandler is /servers/{id}/metadata, kept in the API cell's copy.
type metadataHandler struct {
	*base
	servers *serversHandler
	quota   *quotaChecker
}

func (h *metadataHandler) register(rt *router) {
	rt.handle("GET /v2.1/servers/{id}/metadata", "os_compute_api:server-metadata:index", h.listServerMetadata)
	rt.handle("POST /v2.1/servers/{id}/metadata", "os_compute_api:server-metadata:create", h.createServerMetadata)
	rt.handle("PUT /v2.1/servers/{id}/metadata", "os_compute_api:server-metadata:update_all", h.replaceServerMetadata)
	rt.handle("GET /v2.1/servers/{id}/metadata/{key}", "os_compute_api:server-metadata:show", h.showServerMetadatum)
	rt.handle("PUT /v2.1/servers/{id}/metadata/{key}", "os_compute_api:server-metadata:update", h.updateServerMetadatum)
	rt.handle("DELETE /v2.1/servers/{id}/metadata/{key}", "os_compute_api:server-metadata:delete", h.deleteServerMetadatum)
}

// metadataKeyPattern is the key pattern of Nova's parameter_types.metadata.
const metadataKeyPattern = `^[a-zA-Z0-9-_:. ]{1,255}$`

var metadataKeyRE = regexp.MustCompile(`^[a-zA-Z0-9\-_:. ]{1,255}$`)

// checkMetadata checks a metadata object as Nova's parameter_types.metadata:
// keys of 1 to 255 of [a-zA-Z0-9-_:. ], string values of at most 255
// characters. Value errors name the key, as Nova's do.
func checkMetadata(field string, v any) (map[string]string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalid(field, v, "%s is not of type 'object'", pyRepr(v))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]string, len(m))
	var unmatched []string
	for _, k := range keys {
		if !metadataKeyRE.MatchString(k) {
			unmatched = append(unmatched, pyRepr(k))
			continue
		}
		s, ok := m[k].(string)
		if !ok {
			return nil, invalid(k, m[k], "%s is not of type 'string'", pyRepr(m[k]))
		}
		if utf8.RuneCountInString(s) > 255 {
			return nil, invalid(k, s, "%s is too long", pyRepr(s))
		}
		out[k] = s
	}
	if len(unmatched) > 0 {
		verb := "does"
		if len(unmatched) > 1 {
			verb = "do"
		}
		return nil, invalid(field, m, "%s %s not match any of the regexes: %s", strings.Join(unmatched, ", "), verb, pyRepr(metadataKeyPattern))
	}
	return out, nil
}

// metadataBody reads {"<key>": {...metadata...}} and nothing else. With
// one, the object must hold exactly one item (Nova's metadata_update).
func metadataBody(w http.ResponseWriter, r *http.Request, key string, one bool) (map[string]string, error) {
	body, err := readObject(w, r)
	if err != nil {
		return nil, err
	}
	var meta map[string]string
	raw, ok := body[key]
	if ok {
		if meta, err = checkMetadata(key, raw); err != nil {
			return nil, err
		}
		if one && len(meta) == 0 {
			return nil, invalid(key, raw, "%s should be non-empty", pyRepr(raw))
		}
		if one && len(meta) > 1 {
			return nil, invalid(key, raw, "%s has too many properties", pyRepr(raw))
		}
	} else {
		return nil, bad("'%s' is a required property", key)
	}
	if err := noOtherKeys(body, "", key); err != nil {
		return nil, err
	}
	return meta, nil
}

// metadataState is Nova's check_instance_state for metadata changes:
// vm_state active, paused, suspended or stopped, no task, and launched.
func metadataState(in *apidb.Instance, action string) error {
	switch in.VMState {
	case vmstate.Active, vmstate.Paused, vmstate.Suspended, vmstate.Stopped:
	default:
		return conflict("Cannot '%s' instance %s while it is in vm_state %s", action, in.UUID, in.VMState)
	}
	if in.TaskState != "" {
		return conflict("Cannot '%s' instance %s while it is in task_state %s", action, in.UUID, in.TaskState)
	}
	if in.LaunchedAt.IsZero() {
		return conflict("Instance %s is in an invalid state for '%s'", in.UUID, action)
	}
	return nil
}

func metadataView(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// changeMetadata applies change to the server's metadata in one
// transaction, after the lock, state and quota checks (Nova's
// update_instance_metadata); it returns the metadata written.
func (h *metadataHandler) changeMetadata(r *http.Request, uuid, action string, change func(map[string]string) error) (map[string]string, error) {
	ctx := r.Context()
	var out map[string]string
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := apidb.GetForUpdate(ctx, tx, uuid)
		if err != nil {
			return err
		}
		if cur.Deleted {
			return notFound("Instance %s could not be found.", uuid)
		}
		meta := maps.Clone(cur.Metadata)
		if meta == nil {
			meta = map[string]string{}
		}
		if err := change(meta); err != nil {
			return err
		}
		if err := checkLocked(ctx, cur); err != nil {
			return err
		}
		if err := metadataState(cur, action); err != nil {
			return err
		}
		// Only an update counts the items (a delete in Nova does not).
		if action == "update metadata" {
			if err := h.quota.checkMetadataItems(ctx, tx, cur.ProjectID, cur.UserID, len(meta)); err != nil {
				return err
			}
		}
		out = meta
		return apidb.SetMetadata(ctx, tx, uuid, meta, h.cfg.Now())
	})
	return out, gone(uuid, err)
}

// listServerMetadata is GET /servers/{id}/metadata.
func (h *metadataHandler) listServerMetadata(w http.ResponseWriter, r *http.Request) {
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"metadata": metadataView(in.Metadata)})
}

// showServerMetadatum is GET /servers/{id}/metadata/{key}.
func (h *metadataHandler) showServerMetadatum(w http.ResponseWriter, r *http.Request) {
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	key := r.PathValue("key")
	v, ok := in.Metadata[key]
	if !ok {
		h.fail(w, r, notFound("Metadata item was not found"))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
}

// createServerMetadata is POST /servers/{id}/metadata: the items given are
// added or replaced, the others kept.
func (h *metadataHandler) createServerMetadata(w http.ResponseWriter, r *http.Request) {
	h.writeMetadata(w, r, false)
}

// replaceServerMetadata is PUT /servers/{id}/metadata: the metadata becomes
// what is given.
func (h *metadataHandler) replaceServerMetadata(w http.ResponseWriter, r *http.Request) {
	h.writeMetadata(w, r, true)
}

func (h *metadataHandler) writeMetadata(w http.ResponseWriter, r *http.Request, replace bool) {
	given, err := metadataBody(w, r, "metadata", false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	meta, err := h.changeMetadata(r, in.UUID, "update metadata", func(m map[string]string) error {
		if replace {
			clear(m)
		}
		maps.Copy(m, given)
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"metadata": meta})
}

// updateServerMetadatum is PUT /servers/{id}/metadata/{key} with
// {"meta": {key: value}}.
func (h *metadataHandler) updateServerMetadatum(w http.ResponseWriter, r *http.Request) {
	given, err := metadataBody(w, r, "meta", true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	key := r.PathValue("key")
	if _, ok := given[key]; !ok {
		h.fail(w, r, bad("Request body and URI mismatch"))
		return
	}
	_, err = h.changeMetadata(r, in.UUID, "update metadata", func(m map[string]string) error {
		m[key] = given[key]
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"meta": given})
}

// deleteServerMetadatum is DELETE /servers/{id}/metadata/{key}.
func (h *metadataHandler) deleteServerMetadatum(w http.ResponseWriter, r *http.Request) {
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	key := r.PathValue("key")
	if _, ok := in.Metadata[key]; !ok {
		h.fail(w, r, notFound("Metadata item was not found"))
		return
	}
	_, err = h.changeMetadata(r, in.UUID, "delete metadata", func(m map[string]string) error {
		if _, ok := m[key]; !ok {
			return notFound("Metadata item was not found")
		}
		delete(m, key)
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
