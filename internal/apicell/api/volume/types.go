package volume

import (
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/google/uuid"
)

// volumeType is a volume type as this API knows one.
type volumeType struct {
	ID, Name, Description string
	IsPublic              bool
	ExtraSpecs            map[string]string
}

// defaultType is Cinder's __DEFAULT__, the type its migration creates and
// the default of default_volume_type. Its id is fixed here (Cinder's is a
// random one per deployment) because there is no table yet; the admin
// create, update and delete of types, extra specs and type access come
// with one.
var defaultType = volumeType{
	ID:          "6b9f2c6e-3d0a-4f5e-9a51-0c7d8e2f4a10",
	Name:        "__DEFAULT__",
	Description: "Default Volume Type",
	IsPublic:    true,
	ExtraSpecs:  map[string]string{},
}

// typesHandler is the volume types: list and show (types.go of Cinder's
// v3, with the type-access extension's field).
type typesHandler struct{ *base }

func (h *typesHandler) register(rt *router) {
	rt.handle("GET /v3/{project_id}/types", ruleTypeGetAll, h.list)
	rt.handle("GET /v3/{project_id}/types/{id}", ruleTypeGet, h.show)
}

// types are the types there are.
func (h *typesHandler) types() []volumeType { return []volumeType{defaultType} }

func (h *typesHandler) list(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	// Non-admins see the public types only; an admin may ask for the
	// private ones (false) or both ("none").
	public := func(volumeType) bool { return true }
	if c.Admin {
		if s, ok := r.URL.Query()["is_public"]; ok {
			want, both, valid := parseIsPublic(s[0])
			if !valid {
				h.fail(w, r, fault(http.StatusBadRequest, "Invalid is_public filter ["+s[0]+"]"))
				return
			}
			public = func(t volumeType) bool { return both || t.IsPublic == want }
		}
	} else {
		public = func(t volumeType) bool { return t.IsPublic }
	}
	out := []map[string]any{}
	for _, t := range h.types() {
		if public(t) {
			out = append(out, h.view(r, t))
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volume_types": out})
}

// parseIsPublic reads an is_public filter as Cinder does: a strict
// boolean, or "none" for both.
func parseIsPublic(s string) (want, both, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none":
		return false, true, true
	case "1", "t", "true", "on", "y", "yes":
		return true, false, true
	case "0", "f", "false", "off", "n", "no":
		return false, false, true
	}
	return false, false, false
}

func (h *typesHandler) show(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "default" {
		h.write(w, r, defaultType)
		return
	}
	// Cinder takes a UUID as an id and anything else as a name, each with
	// its own not-found text.
	_, err := uuid.Parse(id)
	isID := err == nil
	for _, t := range h.types() {
		if (isID && t.ID == id) || (!isID && t.Name == id) {
			h.write(w, r, t)
			return
		}
	}
	if isID {
		h.fail(w, r, notFound("Volume type %s could not be found.", id))
		return
	}
	h.fail(w, r, notFound("Volume type with name %s could not be found.", id))
}

func (h *typesHandler) write(w http.ResponseWriter, r *http.Request, t volumeType) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volume_type": h.view(r, t)})
}

// view is a type as Cinder shows it; extra_specs and qos_specs_id only to
// whom their rules allow.
func (h *typesHandler) view(r *http.Request, t volumeType) map[string]any {
	c := httpkit.CallerFrom(r.Context())
	v := map[string]any{"id": t.ID, "name": t.Name, "is_public": t.IsPublic, "description": t.Description,
		"os-volume-type-access:is_public": t.IsPublic}
	if c.Allowed(h.cfg.Policy, ruleTypeExtraSpecs) {
		v["extra_specs"] = t.ExtraSpecs
	}
	if c.Allowed(h.cfg.Policy, ruleTypeQoSSpecsID) {
		v["qos_specs_id"] = nil
	}
	return v
}
