package compute

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// The create schema's fields in Nova's order (schemas/flavors.py create;
// description from 2.55).
var flavorCreateFields = []string{"name", "id", "ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "swap", "rxtx_factor",
	"os-flavor-access:is_public"}

// maxInt is Nova's db constant MAX_INT, the largest flavor size.
const maxInt = 0x7FFFFFFF

// spFloatMax is Nova's SQL_SP_FLOAT_MAX, the largest rxtx_factor.
const spFloatMax = 3.40282e+38

// ---- request checks in the manner of Nova's JSON schemas ----

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

func (h *flavorsHandler) createFlavor(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := readObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	fields := slices.Clone(flavorCreateFields)
	if atLeast(r, 55) {
		fields = append(fields, "description")
	}
	vals, err := objectField(body, "flavor", fields, []string{"name", "ram", "vcpus", "disk"}, func(f map[string]any) error {
		return checkFlavorCreate(f, atLeast(r, 55))
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.authorize(ctx, "os_compute_api:os-flavor-manage:create", nil); err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := flavorFromCreate(vals)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	now := h.cfg.Now().UTC()
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return apidb.CreateFlavorDetail(ctx, tx, f, now) })
	switch {
	case errors.Is(err, apidb.ErrFlavorIDExists):
		h.fail(w, r, conflict("Flavor with ID %s already exists.", f.ID))
		return
	case errors.Is(err, apidb.ErrFlavorNameExists):
		h.fail(w, r, conflict("Flavor with name %s already exists.", f.Name))
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}
	h.log.Info("flavor created", "request_id", httpkit.RequestID(ctx), "flavor", f.ID, "name", f.Name, "public", f.IsPublic)
	f.CreatedAt = now
	f.ExtraSpecs = map[string]string{}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"flavor": flavorDetailView(r, f, true)})
}

// checkFlavorCreate checks the fields of a flavor create as Nova's schema
// does (description from 2.55).
func checkFlavorCreate(f map[string]any, v255 bool) error {
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
	if v, ok := f["description"]; ok && v255 {
		if err := checkDescription(v); err != nil {
			return err
		}
	}
	return nil
}

// flavorFromCreate makes the flavor of a checked create request, as Nova's
// compute.flavors.create does: a missing (or falsy) id is a UUID; numbers
// become their text.
func flavorFromCreate(vals map[string]any) (apidb.FlavorDetail, error) {
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
			return f, bad("Invalid input received: %s must be an integer", p.name)
		}
		*p.dst, _ = flavorInt(v)
	}
	f.VCPUs = int(vcpus)
	if v, ok := vals["rxtx_factor"]; ok {
		x, err := strconv.ParseFloat(pyStr(v), 64)
		if err != nil || x <= 0 || x > spFloatMax {
			return f, bad("Invalid input received: 'rxtx_factor' argument must be a float between 0 and %g", spFloatMax)
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
	return f, nil
}

// updateFlavor sets a flavor's description (2.55).
func (h *flavorsHandler) updateFlavor(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !atLeast(r, 55) {
		h.kit.Write(w, fault(http.StatusNotFound, "The resource could not be found."))
		return
	}
	body, err := readObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	vals, err := objectField(body, "flavor", []string{"description"}, []string{"description"}, func(f map[string]any) error {
		return checkDescription(f["description"])
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.authorize(ctx, "os_compute_api:os-flavor-manage:update", nil); err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	var descr *string
	if d, ok := vals["description"].(string); ok {
		descr = &d
	}
	var f apidb.FlavorDetail
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) (err error) {
		f, err = apidb.SetFlavorDescription(ctx, tx, id, descr, h.cfg.Now().UTC())
		return err
	})
	if errors.Is(err, apidb.ErrNotFound) {
		err = notFound("Flavor %s could not be found.", id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"flavor": flavorDetailView(r, f, true)})
}

// deleteFlavor deletes a flavor, in use or not: instances keep their copy.
func (h *flavorsHandler) deleteFlavor(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := h.authorize(ctx, "os_compute_api:os-flavor-manage:delete", nil); err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return apidb.DeleteFlavor(ctx, tx, id, h.cfg.Now().UTC()) })
	if errors.Is(err, apidb.ErrNotFound) {
		err = notFound("Flavor %s could not be found.", id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("flavor deleted", "request_id", httpkit.RequestID(ctx), "flavor", id)
	w.WriteHeader(http.StatusAccepted)
}
