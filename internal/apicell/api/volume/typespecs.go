package volume

import (
	"context"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
)

// typeSpecsHandler is a type's extra specs (Cinder's
// contrib/types_extra_specs.py): readers list and show them (the
// user-visible ones only without read_sensitive), admins set and delete
// them while no volume has the type.
type typeSpecsHandler struct{ types *typesHandler }

func (h *typeSpecsHandler) register(rt *router) {
	rt.handle("GET /v3/{project_id}/types/{type_id}/extra_specs", ruleSpecsIndex, h.list)
	rt.handle("POST /v3/{project_id}/types/{type_id}/extra_specs", "", h.create)
	rt.handle("GET /v3/{project_id}/types/{type_id}/extra_specs/{key}", ruleSpecsShow, h.show)
	rt.handle("PUT /v3/{project_id}/types/{type_id}/extra_specs/{key}", "", h.update)
	rt.handle("DELETE /v3/{project_id}/types/{type_id}/extra_specs/{key}", ruleSpecsDelete, h.delete)
}

// specs are the extra specs of the type of the path that the caller may
// read, after checking the caller sees the type.
func (h *typeSpecsHandler) specs(r *http.Request) (map[string]string, error) {
	c := httpkit.CallerFrom(r.Context())
	t, err := h.types.cfg.Types.Get(r.Context(), h.types.cfg.DB, r.PathValue("type_id"), c.ProjectID, c.Admin)
	if err != nil {
		return nil, typesFault(err)
	}
	return h.types.visibleSpecs(r, t.ExtraSpecs), nil
}

func (h *typeSpecsHandler) list(w http.ResponseWriter, r *http.Request) {
	specs, err := h.specs(r)
	if err != nil {
		h.types.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"extra_specs": specs})
}

func (h *typeSpecsHandler) show(w http.ResponseWriter, r *http.Request) {
	specs, err := h.specs(r)
	if err != nil {
		h.types.fail(w, r, err)
		return
	}
	key := r.PathValue("key")
	v, ok := specs[key]
	if !ok {
		h.types.fail(w, r, typesFault(voltypes.SpecNotFound(r.PathValue("type_id"), key)))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{key: v})
}

// allowUpdate is Cinder's _allow_update: no extra spec of a type that
// volumes have changes.
func (h *typeSpecsHandler) allowUpdate(ctx context.Context, q db.Querier, typeID string) error {
	used, err := h.types.cfg.TypeUsage.TypeInUse(ctx, q, typeID)
	if err != nil {
		return err
	}
	if used {
		return fault(http.StatusBadRequest, "Volume Type is currently in use.")
	}
	return nil
}

// checkCacheable is Cinder's _check_cacheable: cacheable and multiattach
// are not both "<is> True", given or already set.
func checkCacheable(specs, current map[string]string) error {
	const isTrue = "<is> True"
	if (specs["multiattach"] == isTrue && current["cacheable"] == isTrue) ||
		(specs["cacheable"] == isTrue && current["multiattach"] == isTrue) ||
		(specs["cacheable"] == isTrue && specs["multiattach"] == isTrue) {
		return fault(http.StatusBadRequest, "cacheable cannot be set with multiattach.")
	}
	return nil
}

// set writes specs in one transaction after Cinder's checks, in its
// order: in use, the type, cacheable with multiattach.
func (h *typeSpecsHandler) set(r *http.Request, specs map[string]string, before func(t *voltypes.Type) error) error {
	typeID := r.PathValue("type_id")
	return h.types.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
		if err := h.allowUpdate(r.Context(), tx, typeID); err != nil {
			return err
		}
		t, err := h.types.cfg.Types.Get(r.Context(), tx, typeID, "", true)
		if err != nil {
			return typesFault(err)
		}
		if before != nil {
			if err := before(t); err != nil {
				return err
			}
		}
		if err := checkCacheable(specs, t.ExtraSpecs); err != nil {
			return err
		}
		return typesFault(h.types.cfg.Types.SetSpecs(r.Context(), tx, typeID, specs))
	})
}

func (h *typeSpecsHandler) create(w http.ResponseWriter, r *http.Request) {
	body, err := readJSONBody(w, r)
	var specs map[string]string
	var top object
	if err == nil {
		top, err = requireObject("", body)
	}
	if err == nil {
		if v, ok := top.get("extra_specs"); ok {
			specs, err = checkSpecs("extra_specs", v, specKeyNoSpaces, specKeyNoSpacesPattern)
		}
	}
	if err == nil {
		err = checkRequired("", top, "extra_specs")
	}
	if err == nil {
		err = checkAdditional("", top, "extra_specs")
	}
	if err == nil {
		err = h.types.authorize(r, ruleSpecsCreate)
	}
	if err == nil {
		err = h.set(r, specs, nil)
	}
	if err != nil {
		h.types.fail(w, r, err)
		return
	}
	h.types.log.Info("volume type extra specs set", "request_id", httpkit.RequestID(r.Context()), "type", r.PathValue("type_id"), "keys", sortedKeys(specs))
	// Cinder answers the body it was given.
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"extra_specs": echo(top, "extra_specs")})
}

// echo is the value of key in o as a plain JSON value.
func echo(o object, key string) any {
	v, _ := o.get(key)
	return plain(v)
}

// plain turns a decoded value back into maps and slices for encoding.
func plain(v any) any {
	switch x := v.(type) {
	case object:
		m := make(map[string]any, len(x))
		for _, kv := range x {
			m[kv.key] = plain(kv.value)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = plain(e)
		}
		return l
	}
	return v
}

func (h *typeSpecsHandler) update(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	body, err := readJSONBody(w, r)
	var specs map[string]string
	var o object
	if err == nil {
		// schemas/types_extra_specs.py update: the body is one spec.
		o, err = requireObject("", body)
	}
	if err == nil {
		specs, err = checkSpecs("", o, specKeyNoSpaces, specKeyNoSpacesPattern)
	}
	if err == nil {
		switch {
		case len(o) < 1:
			err = invalid("", o, "%s does not have enough properties", pyRepr(o))
		case len(o) > 1:
			err = invalid("", o, "%s has too many properties", pyRepr(o))
		}
	}
	if err == nil {
		err = h.types.authorize(r, ruleSpecsUpdate)
	}
	if err == nil {
		err = h.set(r, specs, func(*voltypes.Type) error {
			if _, ok := specs[key]; !ok {
				return fault(http.StatusBadRequest, "Request body and URI mismatch")
			}
			return nil
		})
	}
	if err != nil {
		h.types.fail(w, r, err)
		return
	}
	h.types.log.Info("volume type extra spec set", "request_id", httpkit.RequestID(r.Context()), "type", r.PathValue("type_id"), "key", key)
	httpkit.WriteJSON(w, http.StatusOK, plain(o))
}

func (h *typeSpecsHandler) delete(w http.ResponseWriter, r *http.Request) {
	typeID, key := r.PathValue("type_id"), r.PathValue("key")
	err := h.types.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
		if _, err := h.types.cfg.Types.Get(r.Context(), tx, typeID, "", true); err != nil {
			return typesFault(err)
		}
		if err := h.allowUpdate(r.Context(), tx, typeID); err != nil {
			return err
		}
		return typesFault(h.types.cfg.Types.DeleteSpec(r.Context(), tx, typeID, key))
	})
	if err != nil {
		h.types.fail(w, r, err)
		return
	}
	h.types.log.Info("volume type extra spec deleted", "request_id", httpkit.RequestID(r.Context()), "type", typeID, "key", key)
	w.WriteHeader(http.StatusAccepted)
}
