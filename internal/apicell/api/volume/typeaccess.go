package volume

import (
	"fmt"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/db"
)

// typeAccessHandler is the type access extension (Cinder's
// contrib/volume_type_access.py): who may use a private type, and the
// type actions addProjectAccess and removeProjectAccess.
type typeAccessHandler struct{ types *typesHandler }

func (h *typeAccessHandler) register(rt *router) {
	rt.handle("GET /v3/{project_id}/types/{type_id}/os-volume-type-access", ruleTypeAccessList, h.list)
	// The action's rule depends on the action the body names.
	rt.handle("POST /v3/{project_id}/types/{id}/action", "", h.action)
}

func (h *typeAccessHandler) list(w http.ResponseWriter, r *http.Request) {
	typeID := r.PathValue("type_id")
	t, err := h.types.cfg.Types.Get(r.Context(), h.types.cfg.DB, typeID, "", true)
	if err != nil {
		h.types.fail(w, r, typesFault(err))
		return
	}
	if t.IsPublic {
		h.types.fail(w, r, notFound("Access list not available for public volume types."))
		return
	}
	projects, err := h.types.cfg.Types.Access(r.Context(), h.types.cfg.DB, t.ID)
	if err != nil {
		h.types.fail(w, r, typesFault(err))
		return
	}
	out := make([]map[string]any, 0, len(projects))
	for _, p := range projects {
		out = append(out, map[string]any{"volume_type_id": t.ID, "project_id": p})
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"volume_type_access": out})
}

// action is POST /types/{id}/action: the body's one key names the action.
func (h *typeAccessHandler) action(w http.ResponseWriter, r *http.Request) {
	body, err := readJSONBody(w, r)
	if err != nil {
		h.types.fail(w, r, err)
		return
	}
	o, ok := body.(object)
	if !ok || len(o) != 1 {
		// Cinder's wsgi layer finds no action in such a body.
		h.types.fail(w, r, fault(http.StatusBadRequest, "Malformed request body"))
		return
	}
	name := o[0].key
	var rule string
	var do func(tx *db.Tx, typeID, project string) error
	switch name {
	case "addProjectAccess":
		rule = ruleTypeAccessAdd
		do = func(tx *db.Tx, typeID, project string) error {
			return h.types.cfg.Types.AddAccess(r.Context(), tx, typeID, project)
		}
	case "removeProjectAccess":
		rule = ruleTypeAccessRemove
		do = func(tx *db.Tx, typeID, project string) error {
			return h.types.cfg.Types.RemoveAccess(r.Context(), tx, typeID, project)
		}
	default:
		h.types.fail(w, r, fault(http.StatusBadRequest, fmt.Sprintf(
			"There is no such action: %s. Verify the request body and Content-Type header and try again.", name)))
		return
	}
	// schemas/volume_type_access.py, then the rule.
	project, err := accessBody(o, name)
	if err == nil {
		err = h.types.authorize(r, rule)
	}
	if err == nil {
		err = typesFault(h.types.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
			return do(tx, r.PathValue("id"), project)
		}))
	}
	if err != nil {
		h.types.fail(w, r, err)
		return
	}
	h.types.log.Info("volume type access changed", "request_id", httpkit.RequestID(r.Context()),
		"type", r.PathValue("id"), "action", name, "project", project)
	w.WriteHeader(http.StatusAccepted)
}

// accessBody is {"<name>": {"project": "<1 to 255 characters>"}}.
func accessBody(o object, name string) (string, error) {
	v, _ := o.get(name)
	inner, err := requireObject(name, v)
	if err != nil {
		return "", err
	}
	p, ok := inner.get("project")
	if ok {
		if err := checkString("project", p, false, 1, 255); err != nil {
			return "", err
		}
	}
	if err := checkRequired(name, inner, "project"); err != nil {
		return "", err
	}
	if err := checkAdditional(name, inner, "project"); err != nil {
		return "", err
	}
	s, _ := p.(string)
	return s, nil
}
