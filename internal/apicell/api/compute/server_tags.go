package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// tagsHandler is /servers/{id}/tags (2.26), kept in the API cell's copy.
type tagsHandler struct {
	*base
	servers *serversHandler
}

func (h *tagsHandler) register(rt *router) {
	rt.handle("GET /v2.1/servers/{id}/tags", "os_compute_api:os-server-tags:index", h.listServerTags)
	rt.handle("PUT /v2.1/servers/{id}/tags", "os_compute_api:os-server-tags:update_all", h.replaceServerTags)
	rt.handle("DELETE /v2.1/servers/{id}/tags", "os_compute_api:os-server-tags:delete_all", h.deleteServerTags)
	rt.handle("GET /v2.1/servers/{id}/tags/{tag}", "os_compute_api:os-server-tags:show", h.showServerTag)
	rt.handle("PUT /v2.1/servers/{id}/tags/{tag}", "os_compute_api:os-server-tags:update", h.addServerTag)
	rt.handle("DELETE /v2.1/servers/{id}/tags/{tag}", "os_compute_api:os-server-tags:delete", h.deleteServerTag)
}

// Nova's limits on server tags (objects.instance.MAX_TAG_COUNT and
// objects.tag.MAX_TAG_LENGTH).
const (
	maxTagCount  = 50
	maxTagLength = 60
)

// tagError is why a tag fails Nova's parameter_types.tag (a string of 1
// to 60 characters without "," or "/"), as jsonschema says it; "" if it
// passes.
func tagError(v any) string {
	s, ok := v.(string)
	switch {
	case !ok:
		return fmt.Sprintf("%s is not of type 'string'", pyRepr(v))
	case strings.ContainsAny(s, ",/"):
		return fmt.Sprintf("%s does not match '^[^,/]*$'", pyRepr(s))
	case s == "":
		return "'' should be non-empty"
	case utf8.RuneCountInString(s) > maxTagLength:
		return fmt.Sprintf("%s is too long", pyRepr(s))
	}
	return ""
}

// checkServerTags checks a list of tags as Nova's schemas do (the tags of
// PUT /servers/{id}/tags and of a create from 2.52): an array of at most 50
// tags. An item's error names its index, as Nova's does.
func checkServerTags(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, invalid("tags", v, "%s is not of type 'array'", pyRepr(v))
	}
	out := make([]string, 0, len(list))
	for i, t := range list {
		if msg := tagError(t); msg != "" {
			return nil, invalid(fmt.Sprint(i), t, "%s", msg)
		}
		out = append(out, t.(string))
	}
	if len(list) > maxTagCount {
		return nil, invalid("tags", v, "%s is too long", pyRepr(v))
	}
	return out, nil
}

// parseCreateTags reads the "tags" of a create request (2.52), for
// validateCreate; createTags writes them.
func parseCreateTags(raw json.RawMessage) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, bad("Invalid input for field/attribute tags. Value: %s. is not of type 'array'", raw)
	}
	return checkServerTags(v)
}

// tagsState is the state check of Nova's tag changes: vm_state active,
// paused, suspended or stopped.
func tagsState(in *apidb.Instance, action string) error {
	switch in.VMState {
	case vmstate.Active, vmstate.Paused, vmstate.Suspended, vmstate.Stopped:
		return nil
	}
	return conflict("Cannot '%s' instance %s while it is in vm_state %s", action, in.UUID, in.VMState)
}

// tagsServer finds the server of a tags request: by its instance mapping
// (404), then its project, then the policy on its project, then the
// instance (404 if deleted). Nova answers 403 for another project's
// server here; cellcloud answers 404, as on every other route, so that a
// server's existence does not leak across projects.
func (h *tagsHandler) tagsServer(r *http.Request, rule string) (*apidb.Instance, error) {
	if !atLeast(r, 26) {
		return nil, notFound("The resource could not be found.")
	}
	c := httpkit.CallerFrom(r.Context())
	id := r.PathValue("id")
	in, err := apidb.Get(r.Context(), h.cfg.DB, id)
	if isNotFound(err) {
		return nil, notFound("Instance %s has no mapping to a cell.", id)
	}
	if err != nil {
		return nil, err
	}
	if !c.Admin && in.ProjectID != c.ProjectID {
		return nil, notFound("Instance %s could not be found.", id)
	}
	if err := h.authorize(r.Context(), "os_compute_api:os-server-tags:"+rule, policy.Target{"project_id": in.ProjectID}); err != nil {
		return nil, err
	}
	if in.Deleted {
		return nil, notFound("Instance %s could not be found.", id)
	}
	return in, nil
}

// changeTags runs f in a transaction that holds the server's row, after
// the state check on the current copy.
func (h *tagsHandler) changeTags(r *http.Request, uuid, action string, f func(tx *db.Tx) error) error {
	ctx := r.Context()
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := apidb.GetForUpdate(ctx, tx, uuid)
		if err != nil {
			return err
		}
		if cur.Deleted {
			return notFound("Instance %s could not be found.", uuid)
		}
		if err := tagsState(cur, action); err != nil {
			return err
		}
		return f(tx)
	})
	return gone(uuid, err)
}

// listServerTags is GET /servers/{id}/tags.
func (h *tagsHandler) listServerTags(w http.ResponseWriter, r *http.Request) {
	in, err := h.tagsServer(r, "index")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	tags, err := apidb.ListTags(r.Context(), h.cfg.DB, in.UUID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

// showServerTag is GET /servers/{id}/tags/{tag}: 204 if the server has it.
func (h *tagsHandler) showServerTag(w http.ResponseWriter, r *http.Request) {
	in, err := h.tagsServer(r, "show")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	tag := r.PathValue("tag")
	ok, err := apidb.HasTag(r.Context(), h.cfg.DB, in.UUID, tag)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !ok {
		h.fail(w, r, notFound("Server %s has no tag '%s'", in.UUID, tag))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// replaceServerTags is PUT /servers/{id}/tags with {"tags": [...]}.
func (h *tagsHandler) replaceServerTags(w http.ResponseWriter, r *http.Request) {
	if !atLeast(r, 26) {
		h.fail(w, r, notFound("The resource could not be found."))
		return
	}
	body, err := readObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var tags []string
	if raw, ok := body["tags"]; ok {
		if tags, err = checkServerTags(raw); err != nil {
			h.fail(w, r, err)
			return
		}
	} else {
		h.fail(w, r, bad("'tags' is a required property"))
		return
	}
	if err := noOtherKeys(body, "", "tags"); err != nil {
		h.fail(w, r, err)
		return
	}
	in, err := h.tagsServer(r, "update_all")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var out []string
	err = h.changeTags(r, in.UUID, "update tags", func(tx *db.Tx) error {
		out, err = apidb.SetTags(r.Context(), tx, in.UUID, tags)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"tags": out})
}

// addServerTag is PUT /servers/{id}/tags/{tag}: 201 with the tag's
// location when added, 204 when the server already had it.
func (h *tagsHandler) addServerTag(w http.ResponseWriter, r *http.Request) {
	if !atLeast(r, 26) {
		h.fail(w, r, notFound("The resource could not be found."))
		return
	}
	// The body, if any, must be null (Nova's schema for this call).
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		h.fail(w, r, tooLarge())
		return
	}
	if s := strings.TrimSpace(string(b)); s != "" && s != "null" {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			h.fail(w, r, bad("Malformed request body"))
			return
		}
		h.fail(w, r, bad("%s is not of type 'null'", pyRepr(v)))
		return
	}
	in, err := h.tagsServer(r, "update")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	tag := r.PathValue("tag")
	added := false
	err = h.changeTags(r, in.UUID, "update tag", func(tx *db.Tx) error {
		if msg := tagError(tag); msg != "" {
			return bad("Tag '%s' is invalid. It must be a non empty string without characters '/' and ','. Validation error message: %s", tag, msg)
		}
		cur, err := apidb.ListTags(r.Context(), tx, in.UUID)
		if err != nil {
			return err
		}
		if len(cur) >= maxTagCount {
			return bad("The number of tags exceeded the per-server limit %d", maxTagCount)
		}
		if slices.Contains(cur, tag) {
			return nil
		}
		added = true
		return apidb.AddTags(r.Context(), tx, []string{in.UUID}, []string{tag})
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !added {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	prefix := httpkit.Origin(r) + "/v2.1"
	if p, _ := r.Context().Value(keyPathProject).(string); p != "" {
		prefix += "/" + p
	}
	w.Header().Set("Location", prefix+"/servers/"+in.UUID+"/tags/"+url.PathEscape(tag))
	w.WriteHeader(http.StatusCreated)
}

// deleteServerTag is DELETE /servers/{id}/tags/{tag}.
func (h *tagsHandler) deleteServerTag(w http.ResponseWriter, r *http.Request) {
	in, err := h.tagsServer(r, "delete")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	tag := r.PathValue("tag")
	err = h.changeTags(r, in.UUID, "delete tag", func(tx *db.Tx) error {
		ok, err := apidb.DeleteTag(r.Context(), tx, in.UUID, tag)
		if err == nil && !ok {
			return notFound("Instance %s has no tag '%s'", in.UUID, tag)
		}
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteServerTags is DELETE /servers/{id}/tags.
func (h *tagsHandler) deleteServerTags(w http.ResponseWriter, r *http.Request) {
	in, err := h.tagsServer(r, "delete_all")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	err = h.changeTags(r, in.UUID, "delete tags", func(tx *db.Tx) error {
		return apidb.DeleteAllTags(r.Context(), tx, in.UUID)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// createTags gives each new server the tags of a create request (2.52),
// inside the create's transaction; call it right after apidb.Create. The
// tags are checked as Nova's create schema does (checkServerTags): a bad
// one is a 400 and, since the transaction then rolls back, nothing is
// written.
func createTags(ctx context.Context, tx *db.Tx, uuids []string, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	list := make([]any, len(tags))
	for i, t := range tags {
		list[i] = t
	}
	if _, err := checkServerTags(list); err != nil {
		return err
	}
	return apidb.AddTags(ctx, tx, uuids, tags)
}
