package compute

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// extraSpecsHandler is /flavors/{id}/os-extra_specs.
type extraSpecsHandler struct {
	*base
	flavors *flavorsHandler
}

func (h *extraSpecsHandler) register(rt *router) {
	rt.handle("GET /v2.1/flavors/{id}/os-extra_specs", "os_compute_api:os-flavor-extra-specs:index", h.listExtraSpecs)
	rt.handle("POST /v2.1/flavors/{id}/os-extra_specs", "", h.createExtraSpecs)
	rt.handle("GET /v2.1/flavors/{id}/os-extra_specs/{key}", "os_compute_api:os-flavor-extra-specs:show", h.showExtraSpec)
	rt.handle("PUT /v2.1/flavors/{id}/os-extra_specs/{key}", "", h.updateExtraSpec)
	rt.handle("DELETE /v2.1/flavors/{id}/os-extra_specs/{key}", "", h.deleteExtraSpec)
}

// extraSpecKey is the key pattern of flavor extra specs (Nova's metadata).
const extraSpecKey = `^[a-zA-Z0-9-_:. ]{1,255}$`

var extraSpecKeyRE = regexp.MustCompile(`^[a-zA-Z0-9\-_:. ]{1,255}$`)

func (h *extraSpecsHandler) listExtraSpecs(w http.ResponseWriter, r *http.Request) {
	f, err := h.flavors.getFlavor(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	specs := f.ExtraSpecs
	if specs == nil {
		specs = map[string]string{}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"extra_specs": specs})
}

func (h *extraSpecsHandler) showExtraSpec(w http.ResponseWriter, r *http.Request) {
	id, key := r.PathValue("id"), r.PathValue("key")
	f, err := h.flavors.getFlavor(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v, ok := f.ExtraSpecs[key]
	if !ok {
		h.fail(w, r, notFound("Flavor %s has no extra specs with key %s.", id, key))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{key: v})
}

// checkExtraSpecs validates extra specs as Nova's metadata schema with
// number values; it returns them as text (Nova stores str(value)).
func checkExtraSpecs(field string, specs map[string]any) (map[string]string, error) {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range specs {
			if !yield(k) {
				return
			}
		}
	})
	out := map[string]string{}
	var extra []string
	for _, k := range keys {
		if !extraSpecKeyRE.MatchString(k) {
			extra = append(extra, k)
			continue
		}
		switch v := specs[k].(type) {
		case string:
			if utf8.RuneCountInString(v) > 255 {
				return nil, invalid(k, v, "%s is too long", pyRepr(v))
			}
			out[k] = v
		case json.Number:
			s := pyStr(v)
			if len(s) > 255 {
				return nil, bad("Invalid input received: extra_specs value has %d characters, more than 255.", len(s))
			}
			out[k] = s
		default:
			return nil, invalid(k, v, "%s is not of type 'string', 'number'", pyRepr(v))
		}
	}
	if len(extra) > 0 {
		verb := "does"
		if len(extra) > 1 {
			verb = "do"
		}
		quoted := make([]string, len(extra))
		for i, k := range extra {
			quoted[i] = pyRepr(k)
		}
		msg := fmt.Sprintf("%s %s not match any of the regexes: %s", strings.Join(quoted, ", "), verb, pyRepr(extraSpecKey))
		if field == "" {
			return nil, bad("%s", msg)
		}
		return nil, invalid(field, specs, "%s", msg)
	}
	return out, nil
}

// v286 validates the extra specs Nova knows on a create or update.
const v286 = 86

// checkKnownExtraSpecs is Nova's check of known extra specs from 2.86
// (flavor_extra_specs_validate.go), after the policy and before the
// flavor is looked up; the keys in order (Nova checks them in the body's).
func checkKnownExtraSpecs(r *http.Request, specs map[string]string) error {
	if !atLeast(r, v286) {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(specs)) {
		if err := validateExtraSpec(k, specs[k]); err != nil {
			return err
		}
	}
	return nil
}

func (h *extraSpecsHandler) createExtraSpecs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := readObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var specs map[string]string
	raw, ok := body["extra_specs"]
	switch m, isObj := raw.(map[string]any); {
	case ok && !isObj:
		err = invalid("extra_specs", raw, "%s is not of type 'object'", pyRepr(raw))
	case ok:
		specs, err = checkExtraSpecs("extra_specs", m)
	case !ok:
		err = bad("'extra_specs' is a required property")
	}
	if err == nil {
		err = noOtherKeys(body, "", "extra_specs")
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.authorize(ctx, "os_compute_api:os-flavor-extra-specs:create", nil); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkKnownExtraSpecs(r, specs); err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		_, err := apidb.SetFlavorExtraSpecs(ctx, tx, id, specs)
		return err
	})
	if errors.Is(err, apidb.ErrNotFound) {
		err = notFound("Flavor %s could not be found.", id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Nova answers with the request's body, numbers and all.
	httpkit.WriteJSON(w, http.StatusOK, body)
}

func (h *extraSpecsHandler) updateExtraSpec(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := readObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	specs, err := checkExtraSpecs("", body)
	if err == nil {
		switch {
		case len(body) == 0:
			err = bad("{} should be non-empty")
		case len(body) > 1:
			err = bad("%s has too many properties", pyRepr(body))
		}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.authorize(ctx, "os_compute_api:os-flavor-extra-specs:update", nil); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkKnownExtraSpecs(r, specs); err != nil {
		h.fail(w, r, err)
		return
	}
	id, key := r.PathValue("id"), r.PathValue("key")
	if _, ok := specs[key]; !ok {
		h.fail(w, r, bad("Request body and URI mismatch"))
		return
	}
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		_, err := apidb.SetFlavorExtraSpecs(ctx, tx, id, specs)
		return err
	})
	if errors.Is(err, apidb.ErrNotFound) {
		err = notFound("Flavor %s could not be found.", id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, body)
}

func (h *extraSpecsHandler) deleteExtraSpec(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := h.authorize(ctx, "os_compute_api:os-flavor-extra-specs:delete", nil); err != nil {
		h.fail(w, r, err)
		return
	}
	id, key := r.PathValue("id"), r.PathValue("key")
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return apidb.DeleteFlavorExtraSpec(ctx, tx, id, key) })
	switch {
	case errors.Is(err, apidb.ErrNotFound):
		err = notFound("Flavor %s could not be found.", id)
	case errors.Is(err, apidb.ErrExtraSpecNotFound):
		err = notFound("Flavor %s has no extra specs with key %s.", id, key)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
