package volume

import (
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
)

// typesHandler is the volume types: list and show (Cinder's
// cinder/api/v3/types.py) and their management by admins
// (contrib/types_manage.py), with the type-access extension's field.
type typesHandler struct{ *base }

func (h *typesHandler) register(rt *router) {
	rt.handle("GET /v3/{project_id}/types", ruleTypeGetAll, h.list)
	rt.handle("GET /v3/{project_id}/types/{id}", ruleTypeGet, h.show)
	// Cinder validates a body before it checks the rule.
	rt.handle("POST /v3/{project_id}/types", "", h.create)
	rt.handle("PUT /v3/{project_id}/types/{id}", "", h.update)
	rt.handle("DELETE /v3/{project_id}/types/{id}", ruleTypeDelete, h.delete)
}

// userVisibleSpecs are the extra specs that whoever may see a type's
// extra specs sees without volume_extension:types_extra_specs:read_sensitive
// (Cinder's USER_VISIBLE_EXTRA_SPECS).
var userVisibleSpecs = []string{"RESKEY:availability_zones", "multiattach", "replication_enabled"}

// authorize checks a rule the gate did not.
func (h *typesHandler) authorize(r *http.Request, rule string) error {
	if !httpkit.CallerFrom(r.Context()).Allowed(h.cfg.Policy, rule) {
		return forbidden(rule)
	}
	return nil
}

func (h *typesHandler) list(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	// Non-admins see the public types and the private ones their project
	// has access to; an admin too without a filter, and may ask for the
	// private ones only (false) or all ("none") (api_utils._parse_is_public).
	isPublic := new(bool)
	*isPublic = true
	if c.Admin {
		if s, ok := r.URL.Query()["is_public"]; ok {
			want, both, valid := parseIsPublic(s[0])
			if !valid {
				h.fail(w, r, fault(http.StatusBadRequest, "Invalid is_public filter ["+s[0]+"]"))
				return
			}
			*isPublic = want
			if both {
				isPublic = nil
			}
		}
	}
	types, err := h.cfg.Types.List(r.Context(), h.cfg.DB, c.ProjectID, isPublic)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(types))
	for _, t := range types {
		out = append(out, h.view(r, t))
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
	c := httpkit.CallerFrom(r.Context())
	id := r.PathValue("id")
	var t *voltypes.Type
	var err error
	if id == "default" {
		t, err = h.cfg.Types.Default(r.Context(), h.cfg.DB)
	} else {
		// By id, and (beyond Cinder's show, as its clients' name lookups
		// expect) by name.
		t, err = h.cfg.Types.Type(r.Context(), h.cfg.DB, id, c.ProjectID, c.Admin)
	}
	if err != nil {
		h.fail(w, r, typesFault(err))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volume_type": h.view(r, t)})
}

// description is a type's description as Cinder shows it (null for none).
func description(t *voltypes.Type) any {
	if t.NoDescription {
		return nil
	}
	return t.Description
}

// view is a type as Cinder's v3 view shows it: extra_specs (only the
// user-visible ones without read_sensitive) and qos_specs_id only to whom
// their rules allow, and the access extension's is_public.
func (h *typesHandler) view(r *http.Request, t *voltypes.Type) map[string]any {
	c := httpkit.CallerFrom(r.Context())
	v := map[string]any{"id": t.ID, "name": t.Name, "is_public": t.IsPublic, "description": description(t)}
	if c.Allowed(h.cfg.Policy, ruleTypeExtraSpecs) {
		v["extra_specs"] = h.visibleSpecs(r, t.ExtraSpecs)
	}
	if c.Allowed(h.cfg.Policy, ruleTypeQoSSpecsID) {
		v["qos_specs_id"] = nil
	}
	if c.Allowed(h.cfg.Policy, ruleTypeAccess) {
		v["os-volume-type-access:is_public"] = t.IsPublic
	}
	return v
}

// visibleSpecs are the specs the caller may read.
func (h *typesHandler) visibleSpecs(r *http.Request, specs map[string]string) map[string]string {
	if httpkit.CallerFrom(r.Context()).Allowed(h.cfg.Policy, ruleSpecsReadSensitive) {
		return specs
	}
	out := map[string]string{}
	for _, k := range userVisibleSpecs {
		if v, ok := specs[k]; ok {
			out[k] = v
		}
	}
	return out
}

// manageView is a type as types_manage answers a create or an update
// (Cinder's older view: every extra spec, no qos_specs_id), with the
// access extension's is_public.
func (h *typesHandler) manageView(r *http.Request, t *voltypes.Type) map[string]any {
	v := map[string]any{"id": t.ID, "name": t.Name, "is_public": t.IsPublic, "description": description(t), "extra_specs": t.ExtraSpecs}
	if httpkit.CallerFrom(r.Context()).Allowed(h.cfg.Policy, ruleTypeAccess) {
		v["os-volume-type-access:is_public"] = t.IsPublic
	}
	return v
}

// specKey is the key pattern of extra specs in a type create
// (parameter_types.extra_specs); specKeyNoSpaces that of the extra specs
// routes.
var (
	specKeyPattern         = "^[a-zA-Z0-9-_:. /]{1,255}$"
	specKey                = regexp.MustCompile(`^[a-zA-Z0-9_:. /-]{1,255}$`)
	specKeyNoSpacesPattern = "^[a-zA-Z0-9-_:.]{1,255}$"
	specKeyNoSpaces        = regexp.MustCompile(`^[a-zA-Z0-9_:.-]{1,255}$`)
)

// checkSpecs is an extra specs object at path: keys matching re, values
// strings (or null) of at most 255 characters. It answers the specs, a
// null as "".
func checkSpecs(path string, v any, re *regexp.Regexp, pattern string) (map[string]string, error) {
	o, err := requireObject(path, v)
	if err != nil {
		return nil, err
	}
	specs := map[string]string{}
	for _, m := range o {
		if !re.MatchString(m.key) {
			continue
		}
		if err := checkString(m.key, m.value, true, 0, 255); err != nil {
			return nil, err
		}
		s, _ := m.value.(string)
		specs[m.key] = s
	}
	if err := checkPatternKeys(path, o, re, pattern); err != nil {
		return nil, err
	}
	return specs, nil
}

// checkName is parameter_types.name: a string of 1 to 255 characters
// that is not only spaces.
func checkName(path string, v any) (string, error) {
	if err := checkString(path, v, false, 1, 255); err != nil {
		return "", err
	}
	s := v.(string)
	if strings.TrimSpace(s) == "" {
		return "", fault(http.StatusBadRequest, "An invalid 'name' value was provided. The 'name' can not be empty.")
	}
	return s, nil
}

// checkDescription is parameter_types.description: a string (or null)
// of at most 255 printable characters.
func checkDescription(path string, v any) (*string, error) {
	if err := checkString(path, v, true, 0, 255); err != nil {
		return nil, err
	}
	s, ok := v.(string)
	if !ok {
		return nil, nil
	}
	if !printable(s) {
		return nil, invalid(path, v, "%s does not match '^[printable characters]*$'", pyRepr(v))
	}
	return &s, nil
}

func (h *typesHandler) create(w http.ResponseWriter, r *http.Request) {
	n, err := h.createBody(w, r)
	if err == nil {
		err = h.authorize(r, ruleTypeCreate)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var t *voltypes.Type
	err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) (err error) {
		t, err = h.cfg.Types.Create(r.Context(), tx, n)
		return err
	})
	if err != nil {
		h.fail(w, r, typesFault(err))
		return
	}
	h.log.Info("volume type created", "request_id", httpkit.RequestID(r.Context()), "type", t.ID, "name", t.Name)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volume_type": h.manageView(r, t)})
}

// createBody is schemas/volume_types.py create.
func (h *typesHandler) createBody(w http.ResponseWriter, r *http.Request) (voltypes.NewType, error) {
	n := voltypes.NewType{IsPublic: true}
	body, err := readJSONBody(w, r)
	if err != nil {
		return n, err
	}
	top, err := requireObject("", body)
	if err != nil {
		return n, err
	}
	if v, ok := top.get("volume_type"); ok {
		vt, err := requireObject("volume_type", v)
		if err != nil {
			return n, err
		}
		if v, ok := vt.get("name"); ok {
			if n.Name, err = checkName("name", v); err != nil {
				return n, err
			}
		}
		if v, ok := vt.get("description"); ok {
			if n.Description, err = checkDescription("description", v); err != nil {
				return n, err
			}
		}
		if v, ok := vt.get("extra_specs"); ok {
			if n.ExtraSpecs, err = checkSpecs("extra_specs", v, specKey, specKeyPattern); err != nil {
				return n, err
			}
		}
		if v, ok := vt.get("os-volume-type-access:is_public"); ok {
			if n.IsPublic, err = checkBoolean("os-volume-type-access:is_public", v); err != nil {
				return n, err
			}
		}
		if err := checkRequired("volume_type", vt, "name"); err != nil {
			return n, err
		}
		if err := checkAdditional("volume_type", vt, "name", "description", "extra_specs", "os-volume-type-access:is_public"); err != nil {
			return n, err
		}
	}
	if err := checkRequired("", top, "volume_type"); err != nil {
		return n, err
	}
	return n, checkAdditional("", top, "type", "volume_type")
}

func (h *typesHandler) update(w http.ResponseWriter, r *http.Request) {
	c, err := h.updateBody(w, r)
	if err == nil {
		err = h.authorize(r, ruleTypeUpdate)
	}
	if err == nil {
		switch {
		case c.Name != nil && strings.TrimSpace(*c.Name) == "":
			err = fault(http.StatusBadRequest, "Volume type name can not be empty.")
		case c.Name == nil && c.Description == nil && c.IsPublic == nil:
			err = fault(http.StatusBadRequest, "Specify volume type name, description, is_public or a combination thereof.")
		}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var t *voltypes.Type
	err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) (err error) {
		t, err = h.cfg.Types.Update(r.Context(), tx, r.PathValue("id"), c)
		return err
	})
	if err != nil {
		h.fail(w, r, typesFault(err))
		return
	}
	h.log.Info("volume type updated", "request_id", httpkit.RequestID(r.Context()), "type", t.ID, "name", t.Name)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volume_type": h.manageView(r, t)})
}

// updateBody is schemas/volume_types.py update.
func (h *typesHandler) updateBody(w http.ResponseWriter, r *http.Request) (voltypes.TypeChange, error) {
	var c voltypes.TypeChange
	body, err := readJSONBody(w, r)
	if err != nil {
		return c, err
	}
	top, err := requireObject("", body)
	if err != nil {
		return c, err
	}
	if v, ok := top.get("volume_type"); ok {
		vt, err := requireObject("volume_type", v)
		if err != nil {
			return c, err
		}
		if v, ok := vt.get("name"); ok {
			if err := checkString("name", v, true, 1, 255); err != nil {
				return c, err
			}
			if s, ok := v.(string); ok {
				c.Name = &s
			}
		}
		if v, ok := vt.get("description"); ok {
			if c.Description, err = checkDescription("description", v); err != nil {
				return c, err
			}
		}
		if v, ok := vt.get("is_public"); ok {
			b, err := checkBoolean("is_public", v)
			if err != nil {
				return c, err
			}
			c.IsPublic = &b
		}
		if err := checkAdditional("volume_type", vt, "name", "description", "is_public"); err != nil {
			return c, err
		}
	}
	if err := checkRequired("", top, "volume_type"); err != nil {
		return c, err
	}
	return c, checkAdditional("", top, "type", "volume_type")
}

func (h *typesHandler) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
		return h.cfg.Types.Delete(r.Context(), tx, id, h.cfg.TypeUsage.TypeInUse)
	})
	if err != nil {
		h.fail(w, r, typesFault(err))
		return
	}
	h.log.Info("volume type deleted", "request_id", httpkit.RequestID(r.Context()), "type", id)
	w.WriteHeader(http.StatusAccepted)
}

// sortedKeys are a map's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
