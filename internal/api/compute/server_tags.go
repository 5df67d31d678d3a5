package compute

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cellcloud/cellcloud/internal/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/policy"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

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

// tagsServer finds the server of a tags request: by its instance mapping
// (404), then its project, then the policy on its project, then the
// instance (404 if deleted). Nova answers 403 for another project's
// server here; cellcloud answers 404, as on every other route, so that a
// server's existence does not leak across projects.
func (a *API) tagsServer(r *http.Request, rule string) (*apidb.Instance, error) {
	if !atLeast(r, 26) {
		return nil, notFound("The resource could not be found.")
	}
	c := caller(r.Context())
	id := r.PathValue("id")
	in, err := apidb.Get(r.Context(), a.cfg.DB, id)
	if isNotFound(err) {
		return nil, notFound("Instance %s has no mapping to a cell.", id)
	}
	if err != nil {
		return nil, err
	}
	if !c.Admin && in.ProjectID != c.ProjectID {
		return nil, notFound("Instance %s could not be found.", id)
	}
	if err := a.authorize(r.Context(), "os_compute_api:os-server-tags:"+rule, policy.Target{"project_id": in.ProjectID}); err != nil {
		return nil, err
	}
	if in.Deleted {
		return nil, notFound("Instance %s could not be found.", id)
	}
	return in, nil
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

// changeTags runs f in a transaction that holds the server's row, after
// the state check on the current copy.
func (a *API) changeTags(r *http.Request, uuid, action string, f func(tx *db.Tx) error) error {
	ctx := r.Context()
	err := a.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
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
	return a.gone(uuid, err)
}

// listServerTags is GET /servers/{id}/tags.
func (a *API) listServerTags(w http.ResponseWriter, r *http.Request) {
	in, err := a.tagsServer(r, "index")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tags, err := apidb.ListTags(r.Context(), a.cfg.DB, in.UUID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

// showServerTag is GET /servers/{id}/tags/{tag}: 204 if the server has it.
func (a *API) showServerTag(w http.ResponseWriter, r *http.Request) {
	in, err := a.tagsServer(r, "show")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tag := r.PathValue("tag")
	ok, err := apidb.HasTag(r.Context(), a.cfg.DB, in.UUID, tag)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !ok {
		a.fail(w, r, notFound("Server %s has no tag '%s'", in.UUID, tag))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// replaceServerTags is PUT /servers/{id}/tags with {"tags": [...]}.
func (a *API) replaceServerTags(w http.ResponseWriter, r *http.Request) {
	if !atLeast(r, 26) {
		a.fail(w, r, notFound("The resource could not be found."))
		return
	}
	body, err := readObject(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var tags []string
	if raw, ok := body["tags"]; ok {
		if tags, err = checkServerTags(raw); err != nil {
			a.fail(w, r, err)
			return
		}
	} else {
		a.fail(w, r, bad("'tags' is a required property"))
		return
	}
	if err := noOtherKeys(body, "", "tags"); err != nil {
		a.fail(w, r, err)
		return
	}
	in, err := a.tagsServer(r, "update_all")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var out []string
	err = a.changeTags(r, in.UUID, "update tags", func(tx *db.Tx) error {
		out, err = apidb.SetTags(r.Context(), tx, in.UUID, tags)
		return err
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": out})
}

// addServerTag is PUT /servers/{id}/tags/{tag}: 201 with the tag's
// location when added, 204 when the server already had it.
func (a *API) addServerTag(w http.ResponseWriter, r *http.Request) {
	if !atLeast(r, 26) {
		a.fail(w, r, notFound("The resource could not be found."))
		return
	}
	// The body, if any, must be null (Nova's schema for this call).
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		a.fail(w, r, &httpError{http.StatusRequestEntityTooLarge, "Request is too large."})
		return
	}
	if s := strings.TrimSpace(string(b)); s != "" && s != "null" {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			a.fail(w, r, bad("Malformed request body"))
			return
		}
		a.fail(w, r, bad("%s is not of type 'null'", pyRepr(v)))
		return
	}
	in, err := a.tagsServer(r, "update")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tag := r.PathValue("tag")
	added := false
	err = a.changeTags(r, in.UUID, "update tag", func(tx *db.Tx) error {
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
		a.fail(w, r, err)
		return
	}
	if !added {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	prefix := baseURL(r) + "/v2.1"
	if p, _ := r.Context().Value(keyPathProject).(string); p != "" {
		prefix += "/" + p
	}
	w.Header().Set("Location", prefix+"/servers/"+in.UUID+"/tags/"+url.PathEscape(tag))
	w.WriteHeader(http.StatusCreated)
}

// deleteServerTag is DELETE /servers/{id}/tags/{tag}.
func (a *API) deleteServerTag(w http.ResponseWriter, r *http.Request) {
	in, err := a.tagsServer(r, "delete")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tag := r.PathValue("tag")
	err = a.changeTags(r, in.UUID, "delete tag", func(tx *db.Tx) error {
		ok, err := apidb.DeleteTag(r.Context(), tx, in.UUID, tag)
		if err == nil && !ok {
			return notFound("Instance %s has no tag '%s'", in.UUID, tag)
		}
		return err
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteServerTags is DELETE /servers/{id}/tags.
func (a *API) deleteServerTags(w http.ResponseWriter, r *http.Request) {
	in, err := a.tagsServer(r, "delete_all")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	err = a.changeTags(r, in.UUID, "delete tags", func(tx *db.Tx) error {
		return apidb.DeleteAllTags(r.Context(), tx, in.UUID)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
