package volume

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
)

// quotasHandler is os-quota-sets (Cinder's contrib/quotas.py): a
// project's limits, with what it uses (?usage=true), and the defaults,
// to the project's readers; setting and resetting them, to admins.
type quotasHandler struct{ *base }

func (h *quotasHandler) register(rt *router) {
	rt.handle("GET /v3/{project_id}/os-quota-sets/{target}", ruleQuotasShow, h.show)
	rt.handle("GET /v3/{project_id}/os-quota-sets/{target}/defaults", ruleQuotasShow, h.defaults)
	// Cinder validates the body before it checks the rule.
	rt.handle("PUT /v3/{project_id}/os-quota-sets/{target}", "", h.update)
	rt.handle("DELETE /v3/{project_id}/os-quota-sets/{target}", ruleQuotasDelete, h.delete)
}

// nonQuotaKeys are keys a quota set may carry that are no resource
// (Cinder's NON_QUOTA_KEYS): ignored.
var nonQuotaKeys = []string{"tenant_id", "id"}

// target checks that the caller may read target's quotas: its own
// project's, or any for an admin (Cinder's quotas:show on the target).
func (h *quotasHandler) target(r *http.Request) (string, error) {
	t := r.PathValue("target")
	if c := httpkit.CallerFrom(r.Context()); !c.Admin && t != c.ProjectID {
		return "", forbidden(ruleQuotasShow)
	}
	return t, nil
}

func (h *quotasHandler) show(w http.ResponseWriter, r *http.Request) {
	t, err := h.target(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	usage := false
	if v := r.URL.Query().Get("usage"); v != "" {
		switch strings.ToLower(v) {
		case "true", "1", "yes", "y", "on", "t":
			usage = true
		case "false", "0", "no", "n", "off", "f":
		default:
			h.fail(w, r, fault(http.StatusBadRequest, "Invalid value '"+v+"' for usage: Unrecognized value '"+v+"', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"))
			return
		}
	}
	limits, err := h.cfg.Quotas.Limits(r.Context(), h.cfg.DB, t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	set := map[string]any{"id": t}
	if !usage {
		for k, v := range limits {
			set[k] = v
		}
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": set})
		return
	}
	used, err := h.cfg.QuotaUsage.Usage(r.Context(), h.cfg.DB, t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Cinder's DbQuotaDriver shows limit, in_use and reserved (nothing is
	// ever reserved here: usage is counted in the creating transaction).
	for k, v := range limits {
		set[k] = map[string]int64{"limit": v, "in_use": used[k], "reserved": 0}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": set})
}

func (h *quotasHandler) defaults(w http.ResponseWriter, r *http.Request) {
	t, err := h.target(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d, err := h.cfg.Quotas.Defaults(r.Context(), h.cfg.DB)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	set := map[string]any{"id": t}
	for k, v := range d {
		set[k] = v
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": set})
}

// quotaValue is one limit of a PUT, in the body's order.
type quotaValue struct {
	key   string
	limit int64
}

// quotaSetBody is schemas/quotas.py update and its quota_set format check
// (validators._validate_quota_set): every value of a known key an integer
// from -1 to Cinder's DB_MAX_INT (the first one that is not is the
// answer), then the unknown keys together.
func quotaSetBody(body any, resources []string) ([]quotaValue, error) {
	top, err := requireObject("", body)
	if err != nil {
		return nil, err
	}
	var out []quotaValue
	if v, ok := top.get("quota_set"); ok {
		set, err := requireObject("quota_set", v)
		if err != nil {
			return nil, err
		}
		if len(set) < 1 {
			return nil, invalid("quota_set", set, "%s does not have enough properties", pyRepr(set))
		}
		var bad []string
		for _, m := range set {
			switch {
			case slices.Contains(nonQuotaKeys, m.key):
				continue
			case !slices.Contains(resources, m.key):
				bad = append(bad, m.key)
				continue
			}
			n, err := validateInteger(m.value, m.key, voltypes.Unlimited, voltypes.MaxLimit)
			if err != nil {
				return nil, err
			}
			out = append(out, quotaValue{m.key, n})
		}
		if len(bad) > 0 {
			return nil, fault(http.StatusBadRequest, "Invalid input received: Bad key(s) in quota set: "+strings.Join(bad, ", "))
		}
	}
	if err := checkRequired("", top, "quota_set"); err != nil {
		return nil, err
	}
	return out, checkAdditional("", top, "quota_set")
}

// update is PUT: the limits are checked against what the project uses
// (with Cinder's text) under the project's quota lock, then set, in one
// transaction; the answer is every limit in force.
//
// As in Cinder, a limit is checked against usage only where the project
// already has a limit of its own for the resource (its check reads the
// project's quotas without the defaults), and per_volume_gigabytes and
// -1 never are.
func (h *quotasHandler) update(w http.ResponseWriter, r *http.Request) {
	target := r.PathValue("target")
	body, err := readJSONBody(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var limits map[string]int64
	err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
		resources, err := h.cfg.Quotas.Resources(r.Context(), tx)
		if err != nil {
			return err
		}
		values, err := quotaSetBody(body, resources)
		if err != nil {
			return err
		}
		if !httpkit.CallerFrom(r.Context()).Allowed(h.cfg.Policy, ruleQuotasUpdate) {
			return forbidden(ruleQuotasUpdate)
		}
		if err := stringLength(target, "quota_set_name", 1, 255); err != nil {
			return err
		}
		if err := h.cfg.Quotas.LockQuota(r.Context(), tx, target); err != nil {
			return err
		}
		own, err := h.cfg.Quotas.ProjectLimits(r.Context(), tx, target)
		if err != nil {
			return err
		}
		used, err := h.cfg.QuotaUsage.Usage(r.Context(), tx, target)
		if err != nil {
			return err
		}
		set := map[string]int64{}
		for _, v := range values {
			if _, has := own[v.key]; has && v.key != voltypes.PerVolumeGigabytes && v.limit != voltypes.Unlimited && v.limit < used[v.key] {
				return fault(http.StatusBadRequest, fmt.Sprintf("Quota %s limit must be equal or greater than existing resources. "+
					"Current usage is %d and the requested limit is %d.", v.key, used[v.key], v.limit))
			}
			set[v.key] = v.limit
		}
		if err := h.cfg.Quotas.SetLimits(r.Context(), tx, target, set); err != nil {
			return typesFault(err)
		}
		limits, err = h.cfg.Quotas.Limits(r.Context(), tx, target)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("volume quotas set", "request_id", httpkit.RequestID(r.Context()), "project", target)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": limits})
}

// delete is DELETE: the project's own limits go (the defaults apply
// again); 200 with no body, whether it had any or not.
func (h *quotasHandler) delete(w http.ResponseWriter, r *http.Request) {
	target := r.PathValue("target")
	err := h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
		return h.cfg.Quotas.DeleteLimits(r.Context(), tx, target)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("volume quotas reset", "request_id", httpkit.RequestID(r.Context()), "project", target)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
}

// quotaClassesHandler is os-quota-class-sets (Cinder's
// contrib/quota_classes.py), for admins: the "default" class's limits are
// every project's defaults; other classes are kept but apply to nobody.
type quotaClassesHandler struct{ *base }

func (h *quotaClassesHandler) register(rt *router) {
	rt.handle("GET /v3/{project_id}/os-quota-class-sets/{class}", ruleQuotaClassGet, h.show)
	rt.handle("PUT /v3/{project_id}/os-quota-class-sets/{class}", "", h.update)
}

func (h *quotaClassesHandler) show(w http.ResponseWriter, r *http.Request) {
	class := r.PathValue("class")
	limits, err := h.cfg.Quotas.ClassLimits(r.Context(), h.cfg.DB, class)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	set := map[string]any{"id": class}
	for k, v := range limits {
		set[k] = v
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_class_set": set})
}

// classBody is schemas/quota_classes.py: the format check (unknown keys)
// first, then each value an integer or a string of digits, from -1 to
// DB_MAX_INT.
func classBody(body any, resources []string) (map[string]int64, error) {
	top, err := requireObject("", body)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	if v, ok := top.get("quota_class_set"); ok {
		set, err := requireObject("quota_class_set", v)
		if err != nil {
			return nil, err
		}
		var bad []string
		for _, k := range set.keys() {
			if !slices.Contains(resources, k) {
				bad = append(bad, k)
			}
		}
		if len(bad) > 0 {
			return nil, fault(http.StatusBadRequest, "Invalid input received: Bad key(s) in quota class set: "+strings.Join(bad, ", "))
		}
		for _, m := range set {
			// Every resource matches the key pattern (type names are
			// free, so a key that does not is refused as unknown above).
			n, err := classValue(m.key, m.value)
			if err != nil {
				return nil, err
			}
			out[m.key] = n
		}
	}
	if err := checkRequired("", top, "quota_class_set"); err != nil {
		return nil, err
	}
	return out, checkAdditional("", top, "type", "quota_class_set")
}

// classValue is {"type": ["integer", "string"], "pattern": "^[0-9]*$",
// "minimum": -1, "minLength": 1, "maximum": DB_MAX_INT} (Cinder's minimum
// and maximum read a string's number too).
func classValue(key string, v any) (int64, error) {
	var n int64
	switch x := v.(type) {
	case string:
		if strings.Trim(x, "0123456789") != "" {
			return 0, invalid(key, v, "%s does not match %s", pyRepr(v), pyString("^[0-9]*$"))
		}
		if x == "" {
			return 0, invalid(key, v, "%s is too short", pyRepr(v))
		}
		var ok bool
		if n, ok = pyInt(x); !ok {
			return 0, invalid(key, v, "%s is greater than the maximum of %d", pyRepr(v), voltypes.MaxLimit)
		}
	default:
		// An integral JSON number; a float, a bool, null, a list or an
		// object is not of the types.
		var ok bool
		if n, ok = pyInt(x); !ok {
			return 0, invalid(key, v, "%s is not of type %s", pyRepr(v), typeNames("integer", "string"))
		}
	}
	if n < voltypes.Unlimited {
		return 0, invalid(key, v, "%s is less than the minimum of -1", pyRepr(v))
	}
	if n > voltypes.MaxLimit {
		return 0, invalid(key, v, "%s is greater than the maximum of %d", pyRepr(v), voltypes.MaxLimit)
	}
	return n, nil
}

func (h *quotaClassesHandler) update(w http.ResponseWriter, r *http.Request) {
	class := r.PathValue("class")
	body, err := readJSONBody(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var limits map[string]int64
	err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
		resources, err := h.cfg.Quotas.Resources(r.Context(), tx)
		if err != nil {
			return err
		}
		set, err := classBody(body, resources)
		if err != nil {
			return err
		}
		if !httpkit.CallerFrom(r.Context()).Allowed(h.cfg.Policy, ruleQuotaClassUpdate) {
			return forbidden(ruleQuotaClassUpdate)
		}
		if err := stringLength(class, "quota_class_name", 1, 255); err != nil {
			return err
		}
		if err := h.cfg.Quotas.SetClassLimits(r.Context(), tx, class, set); err != nil {
			return typesFault(err)
		}
		limits, err = h.cfg.Quotas.ClassLimits(r.Context(), tx, class)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("volume quota class set", "request_id", httpkit.RequestID(r.Context()), "class", class)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_class_set": limits})
}
