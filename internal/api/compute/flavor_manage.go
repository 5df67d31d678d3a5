package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// keypairAndFlavorRoutes registers keypairs (os-keypairs) and flavor
// management: create, update, delete, extra specs (os-extra_specs) and
// access (os-flavor-access and its actions), as in Nova.
func (a *API) keypairAndFlavorRoutes() {
	a.mux.HandleFunc("GET /v2.1/os-keypairs", a.auth("", a.listKeypairs))
	a.mux.HandleFunc("POST /v2.1/os-keypairs", a.auth("", a.createKeypair))
	a.mux.HandleFunc("GET /v2.1/os-keypairs/{name}", a.auth("", a.showKeypair))
	a.mux.HandleFunc("DELETE /v2.1/os-keypairs/{name}", a.auth("", a.deleteKeypair))

	a.mux.HandleFunc("POST /v2.1/flavors", a.auth("", a.createFlavor))
	a.mux.HandleFunc("PUT /v2.1/flavors/{id}", a.auth("", a.updateFlavor))
	a.mux.HandleFunc("DELETE /v2.1/flavors/{id}", a.auth("", a.deleteFlavor))
	a.mux.HandleFunc("POST /v2.1/flavors/{id}/action", a.auth("", a.flavorAction))
	a.mux.HandleFunc("GET /v2.1/flavors/{id}/os-flavor-access", a.auth("", a.listFlavorAccess))
	a.mux.HandleFunc("GET /v2.1/flavors/{id}/os-extra_specs", a.auth("os_compute_api:os-flavor-extra-specs:index", a.listExtraSpecs))
	a.mux.HandleFunc("POST /v2.1/flavors/{id}/os-extra_specs", a.auth("", a.createExtraSpecs))
	a.mux.HandleFunc("GET /v2.1/flavors/{id}/os-extra_specs/{key}", a.auth("os_compute_api:os-flavor-extra-specs:show", a.showExtraSpec))
	a.mux.HandleFunc("PUT /v2.1/flavors/{id}/os-extra_specs/{key}", a.auth("", a.updateExtraSpec))
	a.mux.HandleFunc("DELETE /v2.1/flavors/{id}/os-extra_specs/{key}", a.auth("", a.deleteExtraSpec))
}

// atLeast reports whether the request's microversion is at least 2.minor.
func atLeast(r *http.Request, minor int) bool {
	return apiVersion(r.Context()).AtLeast(Version{2, minor})
}

// forbidden is Nova's policy refusal.
func forbidden(rule string) error {
	return &httpError{http.StatusForbidden, fmt.Sprintf("Policy doesn't allow %s to be performed.", rule)}
}

// notFound is a 404 with Nova's message.
func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &httpError{http.StatusConflict, fmt.Sprintf(format, args...)}
}

// flavorViewer is who the caller is, to the flavor store.
func flavorViewer(ctx context.Context) apidb.FlavorViewer {
	c := caller(ctx)
	return apidb.FlavorViewer{Admin: c.Admin, ProjectID: c.ProjectID}
}

// getFlavor reads a flavor the caller may see (Nova's common.get_flavor):
// any other is a 404.
func (a *API) getFlavor(ctx context.Context, id string) (apidb.FlavorDetail, error) {
	f, err := apidb.GetFlavorDetail(ctx, a.cfg.DB, id, flavorViewer(ctx))
	if errors.Is(err, apidb.ErrNotFound) {
		return f, notFound("Flavor %s could not be found.", id)
	}
	return f, err
}

// The create schema's fields in Nova's order (schemas/flavors.py create;
// description from 2.55).
var flavorCreateFields = []string{"name", "id", "ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "swap", "rxtx_factor",
	"os-flavor-access:is_public"}

// maxInt is Nova's db constant MAX_INT, the largest flavor size.
const maxInt = 0x7FFFFFFF

// spFloatMax is Nova's SQL_SP_FLOAT_MAX, the largest rxtx_factor.
const spFloatMax = 3.40282e+38

func (a *API) createFlavor(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := readObject(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	fields := slices.Clone(flavorCreateFields)
	if atLeast(r, 55) {
		fields = append(fields, "description")
	}
	vals, err := objectField(body, "flavor", fields, []string{"name", "ram", "vcpus", "disk"}, func(f map[string]any) error {
		if v, ok := f["name"]; ok {
			if err := checkName("name", v); err != nil {
				return err
			}
		}
		if v, ok := f["id"]; ok {
			if err := checkFlavorID(v); err != nil {
				return err
			}
		}
		for _, p := range []struct {
			key string
			min int64
		}{{"ram", 1}, {"vcpus", 1}, {"disk", 0}, {"OS-FLV-EXT-DATA:ephemeral", 0}, {"swap", 0}} {
			if v, ok := f[p.key]; ok {
				if err := checkFlavorInt(p.key, v, p.min); err != nil {
					return err
				}
			}
		}
		if v, ok := f["rxtx_factor"]; ok {
			if err := checkRxTx(v); err != nil {
				return err
			}
		}
		if v, ok := f["os-flavor-access:is_public"]; ok {
			if err := checkBoolean("os-flavor-access:is_public", v); err != nil {
				return err
			}
		}
		if v, ok := f["description"]; ok && atLeast(r, 55) {
			if err := checkDescription(v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.authorize(ctx, "os_compute_api:os-flavor-manage:create", nil); err != nil {
		a.fail(w, r, err)
		return
	}
	// Nova's compute.flavors.create: a missing (or falsy) id is a UUID;
	// numbers become their text.
	f := apidb.FlavorDetail{RxTxFactor: 1, IsPublic: true}
	f.Name = strings.TrimSpace(vals["name"].(string))
	f.ID = pyStr(vals["id"])
	if id := vals["id"]; id == nil || id == "" || isZeroNumber(id) {
		f.ID = uuid.NewString()
	}
	// Nova's utils.validate_integer takes int(str(value)): 2.0 passes the
	// schema as an integer but is refused here.
	var vcpus int64
	for _, p := range []struct {
		key, name string
		dst       *int64
	}{{"ram", "ram", &f.RAMMB}, {"vcpus", "vcpus", &vcpus}, {"disk", "disk", &f.RootGB},
		{"OS-FLV-EXT-DATA:ephemeral", "ephemeral", &f.EphemeralGB}, {"swap", "swap", &f.SwapMB}} {
		v := vals[p.key]
		if n, ok := v.(json.Number); ok && strings.ContainsAny(n.String(), ".eE") {
			a.fail(w, r, bad("Invalid input received: %s must be an integer", p.name))
			return
		}
		*p.dst, _ = flavorInt(v)
	}
	f.VCPUs = int(vcpus)
	if v, ok := vals["rxtx_factor"]; ok {
		x, err := strconv.ParseFloat(pyStr(v), 64)
		if err != nil || x <= 0 || x > spFloatMax {
			a.fail(w, r, bad("Invalid input received: 'rxtx_factor' argument must be a float between 0 and %g", spFloatMax))
			return
		}
		f.RxTxFactor = x
	}
	if v, ok := vals["os-flavor-access:is_public"]; ok {
		f.IsPublic, _ = parseBool(mustJSON(v))
	}
	if v, ok := vals["description"]; ok && v != nil {
		d := v.(string)
		f.Description = &d
	}
	now := a.cfg.Now().UTC()
	err = a.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return apidb.CreateFlavorDetail(ctx, tx, f, now) })
	switch {
	case errors.Is(err, apidb.ErrFlavorIDExists):
		a.fail(w, r, conflict("Flavor with ID %s already exists.", f.ID))
		return
	case errors.Is(err, apidb.ErrFlavorNameExists):
		a.fail(w, r, conflict("Flavor with name %s already exists.", f.Name))
		return
	case err != nil:
		a.fail(w, r, err)
		return
	}
	a.log.Info("flavor created", "request_id", requestID(ctx), "flavor", f.ID, "name", f.Name, "public", f.IsPublic)
	f.CreatedAt = now
	f.ExtraSpecs = map[string]string{}
	writeJSON(w, http.StatusOK, map[string]any{"flavor": flavorDetailView(r, f, true)})
}

// updateFlavor sets a flavor's description (2.55).
func (a *API) updateFlavor(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !atLeast(r, 55) {
		writeFault(w, http.StatusNotFound, "The resource could not be found.")
		return
	}
	body, err := readObject(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	vals, err := objectField(body, "flavor", []string{"description"}, []string{"description"}, func(f map[string]any) error {
		return checkDescription(f["description"])
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.authorize(ctx, "os_compute_api:os-flavor-manage:update", nil); err != nil {
		a.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	var descr *string
	if d, ok := vals["description"].(string); ok {
		descr = &d
	}
	var f apidb.FlavorDetail
	err = a.cfg.DB.InTx(ctx, func(tx *db.Tx) (err error) {
		f, err = apidb.SetFlavorDescription(ctx, tx, id, descr, a.cfg.Now().UTC())
		return err
	})
	if errors.Is(err, apidb.ErrNotFound) {
		err = notFound("Flavor %s could not be found.", id)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flavor": flavorDetailView(r, f, true)})
}

// deleteFlavor deletes a flavor, in use or not: instances keep their copy.
func (a *API) deleteFlavor(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := a.authorize(ctx, "os_compute_api:os-flavor-manage:delete", nil); err != nil {
		a.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	err := a.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return apidb.DeleteFlavor(ctx, tx, id, a.cfg.Now().UTC()) })
	if errors.Is(err, apidb.ErrNotFound) {
		err = notFound("Flavor %s could not be found.", id)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("flavor deleted", "request_id", requestID(ctx), "flavor", id)
	w.WriteHeader(http.StatusAccepted)
}

// flavorAction dispatches POST /flavors/{id}/action: addTenantAccess and
// removeTenantAccess.
func (a *API) flavorAction(w http.ResponseWriter, r *http.Request) {
	body, err := readObject(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(body) != 1 {
		a.fail(w, r, bad("Malformed request body"))
		return
	}
	var action string
	for k := range body {
		action = k
	}
	switch action {
	case "addTenantAccess", "removeTenantAccess":
		a.tenantAccess(w, r, body, action)
	default:
		a.fail(w, r, bad("There is no such action: %s", action))
	}
}

func (a *API) tenantAccess(w http.ResponseWriter, r *http.Request, body map[string]any, action string) {
	ctx := r.Context()
	vals, err := objectField(body, action, []string{"tenant"}, []string{"tenant"}, func(f map[string]any) error {
		if v, ok := f["tenant"]; ok {
			return checkString("tenant", v, 1, 255)
		}
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	add := action == "addTenantAccess"
	rule := "os_compute_api:os-flavor-access:remove_tenant_access"
	if add {
		rule = "os_compute_api:os-flavor-access:add_tenant_access"
	}
	if err := a.authorize(ctx, rule, nil); err != nil {
		a.fail(w, r, err)
		return
	}
	tenant := vals["tenant"].(string)
	id := r.PathValue("id")
	f, err := a.getFlavor(ctx, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if add && f.IsPublic && atLeast(r, 7) {
		a.fail(w, r, conflict("Can not add access to a public flavor."))
		return
	}
	var projects []string
	err = a.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		var err error
		if add {
			err = apidb.AddFlavorAccess(ctx, tx, id, tenant)
		} else {
			err = apidb.RemoveFlavorAccess(ctx, tx, id, tenant)
		}
		if err != nil {
			return err
		}
		projects, err = apidb.FlavorProjects(ctx, tx, id)
		return err
	})
	switch {
	case errors.Is(err, apidb.ErrNotFound):
		err = notFound("Flavor %s could not be found.", id)
	case errors.Is(err, apidb.ErrAccessExists):
		err = conflict("Flavor access already exists for flavor %s and project %s combination.", id, tenant)
	case errors.Is(err, apidb.ErrAccessNotFound):
		err = notFound("Flavor access not found for %s / %s combination.", id, tenant)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("flavor access changed", "request_id", requestID(ctx), "flavor", id, "action", action, "project", tenant)
	writeJSON(w, http.StatusOK, flavorAccessView(id, projects))
}

func (a *API) listFlavorAccess(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := a.authorize(ctx, "os_compute_api:os-flavor-access", nil); err != nil {
		a.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	f, err := a.getFlavor(ctx, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if f.IsPublic {
		a.fail(w, r, notFound("Access list not available for public flavors."))
		return
	}
	projects, err := apidb.FlavorProjects(ctx, a.cfg.DB, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, flavorAccessView(id, projects))
}

func flavorAccessView(id string, projects []string) map[string]any {
	out := make([]map[string]string, 0, len(projects))
	for _, p := range projects {
		out = append(out, map[string]string{"flavor_id": id, "tenant_id": p})
	}
	return map[string]any{"flavor_access": out}
}

// extraSpecKey is the key pattern of flavor extra specs (Nova's metadata).
const extraSpecKey = `^[a-zA-Z0-9-_:. ]{1,255}$`

var extraSpecKeyRE = regexp.MustCompile(`^[a-zA-Z0-9\-_:. ]{1,255}$`)

func (a *API) listExtraSpecs(w http.ResponseWriter, r *http.Request) {
	f, err := a.getFlavor(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	specs := f.ExtraSpecs
	if specs == nil {
		specs = map[string]string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"extra_specs": specs})
}

func (a *API) showExtraSpec(w http.ResponseWriter, r *http.Request) {
	id, key := r.PathValue("id"), r.PathValue("key")
	f, err := a.getFlavor(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v, ok := f.ExtraSpecs[key]
	if !ok {
		a.fail(w, r, notFound("Flavor %s has no extra specs with key %s.", id, key))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{key: v})
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

func (a *API) createExtraSpecs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := readObject(w, r)
	if err != nil {
		a.fail(w, r, err)
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
		a.fail(w, r, err)
		return
	}
	if err := a.authorize(ctx, "os_compute_api:os-flavor-extra-specs:create", nil); err != nil {
		a.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	err = a.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		_, err := apidb.SetFlavorExtraSpecs(ctx, tx, id, specs)
		return err
	})
	if errors.Is(err, apidb.ErrNotFound) {
		err = notFound("Flavor %s could not be found.", id)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Nova answers with the request's body, numbers and all.
	writeJSON(w, http.StatusOK, body)
}

func (a *API) updateExtraSpec(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := readObject(w, r)
	if err != nil {
		a.fail(w, r, err)
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
		a.fail(w, r, err)
		return
	}
	if err := a.authorize(ctx, "os_compute_api:os-flavor-extra-specs:update", nil); err != nil {
		a.fail(w, r, err)
		return
	}
	id, key := r.PathValue("id"), r.PathValue("key")
	if _, ok := specs[key]; !ok {
		a.fail(w, r, bad("Request body and URI mismatch"))
		return
	}
	err = a.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		_, err := apidb.SetFlavorExtraSpecs(ctx, tx, id, specs)
		return err
	})
	if errors.Is(err, apidb.ErrNotFound) {
		err = notFound("Flavor %s could not be found.", id)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (a *API) deleteExtraSpec(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := a.authorize(ctx, "os_compute_api:os-flavor-extra-specs:delete", nil); err != nil {
		a.fail(w, r, err)
		return
	}
	id, key := r.PathValue("id"), r.PathValue("key")
	err := a.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return apidb.DeleteFlavorExtraSpec(ctx, tx, id, key) })
	switch {
	case errors.Is(err, apidb.ErrNotFound):
		err = notFound("Flavor %s could not be found.", id)
	case errors.Is(err, apidb.ErrExtraSpecNotFound):
		err = notFound("Flavor %s has no extra specs with key %s.", id, key)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// ---- request checks in the manner of Nova's JSON schemas ----

// readObject reads a JSON request body that must be an object; numbers
// stay json.Number so that their text survives.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, &httpError{http.StatusRequestEntityTooLarge, "Request is too large."}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, bad("Malformed request body")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("Malformed request body")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, bad("%s is not of type 'object'", pyRepr(v))
	}
	return m, nil
}

// invalid is Nova's message for a body field that fails its schema.
func invalid(field string, value any, format string, args ...any) error {
	return bad("Invalid input for field/attribute %s. Value: %s. %s", field, pyStr(value), fmt.Sprintf(format, args...))
}

// objectField checks body = {key: {...}}: key an object whose fields are
// among allowed, with required ones, and check passing; nothing else at
// the top. It returns the inner object.
func objectField(body map[string]any, key string, allowed, required []string, check func(map[string]any) error) (map[string]any, error) {
	raw, ok := body[key]
	if ok {
		inner, isObj := raw.(map[string]any)
		if !isObj {
			return nil, invalid(key, raw, "%s is not of type 'object'", pyRepr(raw))
		}
		if err := check(inner); err != nil {
			return nil, err
		}
		for _, f := range required {
			if _, ok := inner[f]; !ok {
				return nil, invalid(key, inner, "'%s' is a required property", f)
			}
		}
		if err := noOtherKeys(inner, key, allowed...); err != nil {
			return nil, err
		}
	} else {
		return nil, bad("'%s' is a required property", key)
	}
	if err := noOtherKeys(body, "", key); err != nil {
		return nil, err
	}
	return body[key].(map[string]any), nil
}

// noOtherKeys refuses keys of m not in allowed (additionalProperties:
// false); field names m when it is not the whole body.
func noOtherKeys(m map[string]any, field string, allowed ...string) error {
	var extra []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	msg := additional(extra)
	if field == "" {
		return bad("%s", msg)
	}
	return invalid(field, m, "%s", msg)
}

// additional is jsonschema's message for unexpected properties.
func additional(extra []string) string {
	sort.Strings(extra)
	quoted := make([]string, len(extra))
	for i, k := range extra {
		quoted[i] = pyRepr(k)
	}
	if len(extra) == 1 {
		return fmt.Sprintf("Additional properties are not allowed (%s was unexpected)", quoted[0])
	}
	return fmt.Sprintf("Additional properties are not allowed (%s were unexpected)", strings.Join(quoted, ", "))
}

// checkQuery refuses query parameters not in allowed (Nova's strict query
// schemas, from 2.75).
func checkQuery(q url.Values, allowed ...string) error {
	var extra []string
	for k := range q {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	return bad("%s", additional(extra))
}

// lastValue is the value webob gives for a repeated query parameter.
func lastValue(q url.Values, key string) string {
	v := q[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// queryLimit checks the limit and marker query parameters (Nova's
// pagination_parameters) and returns the page size: at most 1000
// (max_limit), 1000 when absent, 0 meaning an empty page.
func queryLimit(q url.Values) (int, error) {
	for _, s := range q["limit"] {
		if s == "" {
			return 0, bad("Invalid input for query parameters limit. Value: . '' should be non-empty")
		}
		if strings.Trim(s, "0123456789") != "" {
			return 0, bad("Invalid input for query parameters limit. Value: %s. %s does not match '^[0-9]*$'", s, pyRepr(s))
		}
	}
	limit := 1000
	if s := lastValue(q, "limit"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n < limit {
			limit = n
		}
	}
	return limit, nil
}

// nextLink is Nova's "next" collection link: this request's query
// parameters, sorted, with the marker set.
func nextLink(r *http.Request, collection, marker string) []map[string]string {
	q := url.Values{}
	for k, v := range r.URL.Query() {
		q.Set(k, v[len(v)-1])
	}
	q.Set("marker", marker)
	prefix := baseURL(r) + "/v2.1"
	if p, _ := r.Context().Value(keyPathProject).(string); p != "" {
		prefix += "/" + p
	}
	return []map[string]string{{"rel": "next", "href": prefix + "/" + collection + "?" + q.Encode()}}
}

// printable is Nova's printable character (parameter_types._is_printable
// over the Basic Multilingual Plane): not a control, format, private use or
// unassigned character, nor a line or paragraph separator.
func printable(r rune, spaces bool) bool {
	if r > 0xFFFE || !unicode.IsGraphic(r) {
		return false
	}
	return spaces || !unicode.Is(unicode.Zs, r)
}

// checkName checks Nova's parameter_types.name: a string of 1 to 255
// printable characters, not starting or ending with whitespace.
func checkName(field string, v any) error {
	s, ok := v.(string)
	if !ok {
		return invalid(field, v, "%s is not of type 'string'", pyRepr(v))
	}
	if !validName(s) {
		return bad("An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.")
	}
	return checkString(field, s, 1, 255)
}

func validName(s string) bool {
	if s == "" {
		return true
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if !printable(first, false) || !printable(last, false) {
		return false
	}
	for _, r := range s {
		if !printable(r, true) {
			return false
		}
	}
	return true
}

// checkString checks a string's type and length (minLength, maxLength).
func checkString(field string, v any, minLen, maxLen int) error {
	s, ok := v.(string)
	if !ok {
		return invalid(field, v, "%s is not of type 'string'", pyRepr(v))
	}
	n := utf8.RuneCountInString(s)
	if n < minLen {
		if minLen == 1 {
			return invalid(field, s, "%s should be non-empty", pyRepr(s))
		}
		return invalid(field, s, "%s is too short", pyRepr(s))
	}
	if n > maxLen {
		return invalid(field, s, "%s is too long", pyRepr(s))
	}
	return nil
}

var flavorIDRE = regexp.MustCompile(`^[a-zA-Z0-9. _-]+$`)

// checkFlavorID checks a flavor create's id: a string, number or null; a
// string of 1 to 255 of [a-zA-Z0-9. _-], not starting or ending with a space.
func checkFlavorID(v any) error {
	switch t := v.(type) {
	case nil, json.Number:
		return nil
	case string:
		if err := checkString("id", t, 1, 255); err != nil {
			return err
		}
		if !flavorIDRE.MatchString(t) || strings.HasPrefix(t, " ") || strings.HasSuffix(t, " ") {
			return invalid("id", t, "%s does not match %s", pyRepr(t), pyRepr(`^(?! )[a-zA-Z0-9. _-]+(?<! )$`))
		}
		return nil
	}
	return invalid("id", v, "%s is not of type 'string', 'number', 'null'", pyRepr(v))
}

// flavorInt reads a flavor size given as an integer or a string of digits.
func flavorInt(v any) (int64, bool) {
	switch t := v.(type) {
	case nil:
		return 0, true
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return n, true
		}
		f, err := t.Float64()
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
			return 0, false
		}
		return int64(f), true
	case string:
		n, err := strconv.ParseInt(t, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// checkFlavorInt checks Nova's flavor_param_positive / _non_negative: an
// integer (or a string of digits) from min to MAX_INT.
func checkFlavorInt(field string, v any, minimum int64) error {
	switch t := v.(type) {
	case json.Number:
		if _, ok := flavorInt(t); !ok {
			return invalid(field, v, "%s is not of type 'integer', 'string'", pyRepr(v))
		}
	case string:
		if t == "" || strings.Trim(t, "0123456789") != "" {
			return invalid(field, t, "%s does not match '^[0-9]+$'", pyRepr(t))
		}
	default:
		return invalid(field, v, "%s is not of type 'integer', 'string'", pyRepr(v))
	}
	n, ok := flavorInt(v)
	if !ok {
		// More digits than an int64 holds.
		return invalid(field, v, "%s is greater than the maximum of %d", pyStr(v), maxInt)
	}
	if n < minimum {
		return invalid(field, v, "%d is less than the minimum of %d", n, minimum)
	}
	if n > maxInt {
		return invalid(field, v, "%d is greater than the maximum of %d", n, maxInt)
	}
	return nil
}

var rxtxRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// checkRxTx checks rxtx_factor: a number or numeric string, above 0.
func checkRxTx(v any) error {
	switch t := v.(type) {
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return invalid("rxtx_factor", v, "%s is greater than the maximum of %g", pyStr(v), spFloatMax)
		}
		if f <= 0 {
			return invalid("rxtx_factor", v, "%s is less than or equal to the minimum of 0", pyStr(v))
		}
		if f > spFloatMax {
			return invalid("rxtx_factor", v, "%s is greater than the maximum of %g", pyStr(v), spFloatMax)
		}
	case string:
		if !rxtxRE.MatchString(t) {
			return invalid("rxtx_factor", t, "%s does not match %s", pyRepr(t), pyRepr(`^[0-9]+(\.[0-9]+)?$`))
		}
		if f, err := strconv.ParseFloat(t, 64); err == nil && f > spFloatMax {
			return invalid("rxtx_factor", t, "%s is greater than the maximum of %g", t, spFloatMax)
		}
	default:
		return invalid("rxtx_factor", v, "%s is not of type 'number', 'string'", pyRepr(v))
	}
	return nil
}

// booleans are the values of Nova's parameter_types.boolean.
var booleans = []any{true, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
	false, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"}

func checkBoolean(field string, v any) error {
	switch v.(type) {
	case bool, string:
		if slices.Contains(booleans, v) {
			return nil
		}
		return invalid(field, v, "%s is not one of %s", pyRepr(v), pyRepr(booleans))
	}
	return invalid(field, v, "%s is not of type 'boolean', 'string'", pyRepr(v))
}

// checkDescription checks a flavor description (2.55): null, or up to
// 65535 printable characters.
func checkDescription(v any) error {
	if v == nil {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		return invalid("description", v, "%s is not of type 'string', 'null'", pyRepr(v))
	}
	for _, r := range s {
		if !printable(r, true) {
			return invalid("description", s, "%s does not match '^[printable characters]*$'", pyRepr(s))
		}
	}
	if utf8.RuneCountInString(s) > 65535 {
		return invalid("description", s, "%s is too long", abbreviate(pyRepr(s)))
	}
	return nil
}

func isZeroNumber(v any) bool {
	n, ok := v.(json.Number)
	if !ok {
		return false
	}
	f, err := n.Float64()
	return err == nil && f == 0
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// pyStr is how Python prints a JSON value with %s: strings bare.
func pyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return pyRepr(v)
}

// pyRepr is Python's repr of a JSON value, as Nova's messages show it.
func pyRepr(v any) string {
	switch t := v.(type) {
	case nil:
		return "None"
	case bool:
		if t {
			return "True"
		}
		return "False"
	case string:
		return pyQuote(t)
	case json.Number:
		s := t.String()
		if !strings.ContainsAny(s, ".eE") {
			return s
		}
		f, err := t.Float64()
		if err != nil {
			return s
		}
		return pyFloat(f)
	case float64:
		return pyFloat(t)
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyQuote(k) + ": " + pyRepr(t[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func pyQuote(s string) string {
	q := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteRune(q)
	for _, r := range s {
		switch {
		case r == '\\' || r == q:
			b.WriteRune('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteRune(q)
	return b.String()
}

// pyFloat is Python's repr of a float.
func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
