package compute

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// The proxy APIs os-volumes and os-snapshots (Nova's volumes.py and
// snapshots.py, up to 2.35; from 2.36 they are 404s as every proxy API).
// Nova calls Cinder with the user's token and translates Cinder's views
// and errors; here the Compute API calls the Block Storage API's handler
// in-process the same way (Config.BlockStorage), so that a volume made
// through the proxy is made exactly as one made through Cinder (its
// placement, quota, copy).

const volumesRule = "os_compute_api:os-volumes:"

// volumesProxyHandler is os-volumes and os-snapshots.
type volumesProxyHandler struct{ *base }

func (h *volumesProxyHandler) register(rt *router) {
	if h.cfg.BlockStorage == nil {
		return
	}
	rt.handle("GET /v2.1/os-volumes", volumesRule+"list", h.gone(h.listVolumes))
	rt.handle("GET /v2.1/os-volumes/detail", volumesRule+"detail", h.gone(h.listVolumes))
	rt.handle("GET /v2.1/os-volumes/{vid}", volumesRule+"show", h.gone(h.showVolume))
	rt.handle("POST /v2.1/os-volumes", volumesRule+"create", h.gone(h.createVolume))
	rt.handle("DELETE /v2.1/os-volumes/{vid}", volumesRule+"delete", h.gone(h.deleteVolume))
	rt.handle("GET /v2.1/os-snapshots", volumesRule+"snapshots:list", h.gone(h.listSnapshots))
	rt.handle("GET /v2.1/os-snapshots/detail", volumesRule+"snapshots:detail", h.gone(h.listSnapshots))
	rt.handle("GET /v2.1/os-snapshots/{sid}", volumesRule+"snapshots:show", h.gone(h.showSnapshot))
	rt.handle("POST /v2.1/os-snapshots", volumesRule+"snapshots:create", h.gone(h.createSnapshot))
	rt.handle("DELETE /v2.1/os-snapshots/{sid}", volumesRule+"snapshots:delete", h.gone(h.deleteSnapshot))
}

// gone is the proxy APIs' end at 2.36.
func (h *volumesProxyHandler) gone(next http.HandlerFunc) http.HandlerFunc {
	return proxyGone(h.base, next)
}

// cinderAnswer is the Block Storage API's answer to an in-process call.
type cinderAnswer struct {
	status    int
	body      map[string]any
	message   string // a fault's message
	requestID string
}

// cinder calls the Block Storage API as the caller of r (its token), at
// Cinder's microversion 3.0 (cinderclient's default), on path under the
// caller's project.
func (h *volumesProxyHandler) cinder(r *http.Request, method, path string, body any) (*cinderAnswer, error) {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	c := httpkit.CallerFrom(r.Context())
	req, err := http.NewRequestWithContext(r.Context(), method, "/v3/"+c.ProjectID+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Auth-Token", r.Header.Get("X-Auth-Token"))
	req.Header.Set("X-Openstack-Request-Id", httpkit.RequestID(r.Context()))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.cfg.BlockStorage.ServeHTTP(rec, req)
	a := &cinderAnswer{status: rec.Code, requestID: rec.Header().Get("X-Openstack-Request-Id")}
	if a.requestID == "" {
		a.requestID = httpkit.RequestID(r.Context())
	}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
			return nil, fmt.Errorf("the Block Storage API answered %d %q: %w", rec.Code, rec.Body.String(), err)
		}
	}
	if a.status >= 400 {
		for _, f := range a.body {
			if m, ok := f.(map[string]any); ok {
				a.message, _ = m["message"].(string)
			}
		}
	}
	return a, nil
}

// translate is Nova's cinder.py translation of a Cinder failure: a 404 is
// notFoundErr, a 413 (over a limit) Nova's OverQuota (403 with Cinder's
// message), a 400 InvalidInput and a 403 Forbidden (cinderclient's text
// with the code and request id); anything else is a failure of ours.
func (a *cinderAnswer) translate(notFoundErr error) error {
	switch a.status {
	case http.StatusNotFound:
		return notFoundErr
	case http.StatusRequestEntityTooLarge:
		return forbidden2(a.message)
	case http.StatusBadRequest:
		return bad("Invalid input received: %s (HTTP 400) (Request-ID: %s)", a.message, a.requestID)
	case http.StatusForbidden:
		return forbidden2(fmt.Sprintf("%s (HTTP 403) (Request-ID: %s)", a.message, a.requestID))
	}
	return fmt.Errorf("the Block Storage API answered %d: %s", a.status, a.message)
}

// novaVolume is Nova's _translate_volume_summary_view of a Cinder volume.
func novaVolume(v map[string]any) map[string]any {
	d := map[string]any{"id": v["id"], "status": v["status"], "size": v["size"], "availabilityZone": v["availability_zone"],
		"createdAt": v["created_at"], "displayName": v["name"], "displayDescription": v["description"],
		"volumeType": v["volume_type"], "snapshotId": v["snapshot_id"], "metadata": map[string]any{}}
	if md, ok := v["metadata"].(map[string]any); ok && len(md) > 0 {
		d["metadata"] = md
	}
	d["attachments"] = []any{map[string]any{}}
	if atts, _ := v["attachments"].([]any); len(atts) > 0 {
		// Nova keeps the attachments by server, and shows the first.
		a, _ := atts[0].(map[string]any)
		att := map[string]any{"id": v["id"], "volumeId": v["id"], "serverId": a["server_id"]}
		if dev, _ := a["device"].(string); dev != "" {
			att["device"] = dev
		}
		d["attachments"] = []any{att}
	}
	return d
}

// novaSnapshot is Nova's _translate_snapshot_summary_view.
func novaSnapshot(s map[string]any) map[string]any {
	return map[string]any{"id": s["id"], "volumeId": s["volume_id"], "status": s["status"], "size": s["size"],
		"createdAt": s["created_at"], "displayName": s["name"], "displayDescription": s["description"]}
}

// limited is Nova's common.limited: offset and limit (at most 1000) of the
// query, applied to items.
func limited(r *http.Request, items []any) ([]any, error) {
	q := r.URL.Query()
	offset, err := queryOffset(q)
	if err != nil {
		return nil, err
	}
	limit, err := queryLimit(q)
	if err != nil {
		return nil, err
	}
	if _, given := q["limit"]; given && limit == 0 {
		limit = 1000 // Nova: limit 0 is max_limit
	}
	if offset >= len(items) {
		return []any{}, nil
	}
	return items[offset:min(len(items), offset+limit)], nil
}

func (h *volumesProxyHandler) list(w http.ResponseWriter, r *http.Request, path, key string, view func(map[string]any) map[string]any) {
	a, err := h.cinder(r, http.MethodGet, path, nil)
	if err == nil && a.status != http.StatusOK {
		err = a.translate(notFound("The resource could not be found."))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, _ := a.body[key].([]any)
	items, err = limited(r, items)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(items))
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, view(m))
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{key: out})
}

func (h *volumesProxyHandler) listVolumes(w http.ResponseWriter, r *http.Request) {
	h.list(w, r, "/volumes/detail", "volumes", novaVolume)
}

func (h *volumesProxyHandler) listSnapshots(w http.ResponseWriter, r *http.Request) {
	h.list(w, r, "/snapshots/detail", "snapshots", novaSnapshot)
}

func (h *volumesProxyHandler) showVolume(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("vid")
	a, err := h.cinder(r, http.MethodGet, "/volumes/"+id, nil)
	if err == nil && a.status != http.StatusOK {
		err = a.translate(notFound("Volume %s could not be found.", id))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v, _ := a.body["volume"].(map[string]any)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volume": novaVolume(v)})
}

func (h *volumesProxyHandler) showSnapshot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("sid")
	a, err := h.cinder(r, http.MethodGet, "/snapshots/"+id, nil)
	if err == nil && a.status != http.StatusOK {
		err = a.translate(notFound("Snapshot %s could not be found.", id))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	s, _ := a.body["snapshot"].(map[string]any)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"snapshot": novaSnapshot(s)})
}

func (h *volumesProxyHandler) deleteVolume(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("vid")
	a, err := h.cinder(r, http.MethodDelete, "/volumes/"+id, nil)
	if err == nil && a.status != http.StatusAccepted {
		err = a.translate(notFound("Volume %s could not be found.", id))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (h *volumesProxyHandler) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("sid")
	a, err := h.cinder(r, http.MethodDelete, "/snapshots/"+id, nil)
	if err == nil && a.status != http.StatusAccepted {
		err = a.translate(notFound("Snapshot %s could not be found.", id))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// proxyBody reads {"<top>": {...}} with only the fields allowed (Nova's
// schema: additionalProperties false at both levels) and required.
func proxyBody(r *http.Request, top string, allowed []string, required string) (map[string]any, error) {
	var raw any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, bad("Malformed request body")
	}
	outer, ok := raw.(map[string]any)
	if !ok {
		return nil, invalid("", raw, "%s is not of type 'object'", pyRepr(raw))
	}
	for _, k := range slices.Sorted(maps.Keys(outer)) {
		if k != top {
			return nil, bad("Invalid input for field/attribute %s. Value: %s. Additional properties are not allowed ('%s' was unexpected)", top, pyRepr(outer), k)
		}
	}
	in, given := outer[top]
	if !given {
		return nil, invalid("", outer, "'%s' is a required property", top)
	}
	body, ok := in.(map[string]any)
	if !ok {
		return nil, invalid(top, in, "%s is not of type 'object'", pyRepr(in))
	}
	for _, k := range slices.Sorted(maps.Keys(body)) {
		if !slices.Contains(allowed, k) {
			return nil, bad("Invalid input for field/attribute %s. Value: %s. Additional properties are not allowed ('%s' was unexpected)", top, pyRepr(body), k)
		}
	}
	if _, ok := body[required]; !ok {
		return nil, invalid(top, body, "'%s' is a required property", required)
	}
	for _, k := range []string{"volume_type", "snapshot_id", "availability_zone", "display_name", "display_description", "volume_id"} {
		if v, ok := body[k]; ok {
			if _, isString := v.(string); !isString {
				return nil, invalid(k, v, "%s is not of type 'string'", pyRepr(v))
			}
		}
	}
	return body, nil
}

// createVolume is Nova's proxy create: Nova's schema (size an integer or
// a string of digits, at least 1), the snapshot looked up first (404),
// then Cinder's create; 200 with Nova's view and a Location.
func (h *volumesProxyHandler) createVolume(w http.ResponseWriter, r *http.Request) {
	body, err := proxyBody(r, "volume", []string{"volume_type", "metadata", "snapshot_id", "size", "availability_zone",
		"display_name", "display_description"}, "size")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var size int
	switch s := body["size"].(type) {
	case json.Number:
		n, err := strconv.Atoi(s.String())
		if err != nil {
			h.fail(w, r, invalid("size", s, "%s is not of type 'integer', 'string'", s))
			return
		}
		if n < 1 {
			h.fail(w, r, invalid("size", s, "%d is less than the minimum of 1", n))
			return
		}
		size = n
	case string:
		n, err := strconv.Atoi(s)
		if s == "" || strings.Trim(s, "0123456789") != "" || err != nil {
			h.fail(w, r, invalid("size", s, "%s does not match '^[0-9]+$'", pyRepr(s)))
			return
		}
		size = n // "0" passes Nova's schema (minimum is for numbers): Cinder refuses it
	default:
		h.fail(w, r, invalid("size", s, "%s is not of type 'integer', 'string'", pyRepr(s)))
		return
	}
	if md, ok := body["metadata"]; ok {
		if _, isObj := md.(map[string]any); !isObj {
			h.fail(w, r, invalid("metadata", md, "%s is not of type 'object'", pyRepr(md)))
			return
		}
	}
	if sid, ok := body["snapshot_id"].(string); ok {
		a, err := h.cinder(r, http.MethodGet, "/snapshots/"+sid, nil)
		if err == nil && a.status != http.StatusOK {
			err = a.translate(notFound("Snapshot %s could not be found.", sid))
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
	}
	vol := map[string]any{"size": size, "name": body["display_name"], "description": body["display_description"],
		"snapshot_id": body["snapshot_id"], "volume_type": body["volume_type"], "availability_zone": body["availability_zone"],
		"metadata": body["metadata"], "imageRef": nil}
	for k, v := range vol {
		if v == nil {
			delete(vol, k)
		}
	}
	a, err := h.cinder(r, http.MethodPost, "/volumes", map[string]any{"volume": vol})
	if err == nil && a.status != http.StatusAccepted {
		err = a.translate(notFound("%s", a.message))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v, _ := a.body["volume"].(map[string]any)
	out := novaVolume(v)
	w.Header().Set("Location", httpkit.Origin(r)+r.URL.Path+"/"+fmt.Sprint(v["id"]))
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volume": out})
}

// createSnapshot is Nova's proxy create of a snapshot (force: Cinder's
// forced snapshot of an in-use volume).
func (h *volumesProxyHandler) createSnapshot(w http.ResponseWriter, r *http.Request) {
	body, err := proxyBody(r, "snapshot", []string{"volume_id", "force", "display_name", "display_description"}, "volume_id")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	force := false
	if f, ok := body["force"]; ok {
		if err := checkBoolean("force", f); err != nil {
			h.fail(w, r, err)
			return
		}
		force = boolValue(f)
	}
	vid := body["volume_id"].(string)
	snap := map[string]any{"volume_id": vid, "force": force}
	if n, ok := body["display_name"]; ok {
		snap["name"] = n
	}
	if d, ok := body["display_description"]; ok {
		snap["description"] = d
	}
	a, err := h.cinder(r, http.MethodPost, "/snapshots", map[string]any{"snapshot": snap})
	if err == nil && a.status != http.StatusAccepted {
		err = a.translate(notFound("Volume %s could not be found.", vid))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	s, _ := a.body["snapshot"].(map[string]any)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"snapshot": novaSnapshot(s)})
}
