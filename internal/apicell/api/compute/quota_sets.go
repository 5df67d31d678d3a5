package compute

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
)

// quotaSetsHandler is os-quota-sets and os-quota-class-sets.
type quotaSetsHandler struct {
	*base
	quota *quotaChecker
}

func (h *quotaSetsHandler) register(rt *router) {
	rt.handle("GET /v2.1/os-quota-sets/{project}", "", h.showQuotaSet(false))
	rt.handle("GET /v2.1/os-quota-sets/{project}/detail", "", h.showQuotaSet(true))
	rt.handle("GET /v2.1/os-quota-sets/{project}/defaults", "os_compute_api:os-quota-sets:defaults", h.quotaDefaults)
	rt.handle("PUT /v2.1/os-quota-sets/{project}", "", h.updateQuotaSet)
	rt.handle("DELETE /v2.1/os-quota-sets/{project}", "", h.deleteQuotaSet)
	rt.handle("GET /v2.1/os-quota-class-sets/{class}", "os_compute_api:os-quota-class-sets:show", h.showQuotaClass)
	rt.handle("PUT /v2.1/os-quota-class-sets/{class}", "os_compute_api:os-quota-class-sets:update", h.updateQuotaClass)
}

var (
	networkQuotas  = []string{quota.FixedIPs, quota.FloatingIPs, quota.SecurityGroups, quota.SecurityGroupRules}
	injectedQuotas = []string{quota.InjectedFiles, quota.InjectedFileContentBytes, quota.InjectedFilePathBytes}
	groupQuotas    = []string{quota.ServerGroups, quota.ServerGroupMembers}
)

// quotaKeys are the resources a quota set shows at the request's
// microversion: the network ones go at 2.36, the injected files at 2.57.
func quotaKeys(v Version) []string {
	out := slices.Clone(quota.Resources)
	if v.AtLeast(Version{2, 36}) {
		out = slices.DeleteFunc(out, func(r string) bool { return slices.Contains(networkQuotas, r) })
	}
	if v.AtLeast(Version{2, 57}) {
		out = slices.DeleteFunc(out, func(r string) bool { return slices.Contains(injectedQuotas, r) })
	}
	return out
}

// classKeys are a quota class set's: before 2.50 without the server group
// ones (Nova's bug 1693168), and the network ones go at 2.50.
func classKeys(v Version) []string {
	out := slices.Clone(quota.Resources)
	if v.AtLeast(Version{2, 50}) {
		out = slices.DeleteFunc(out, func(r string) bool { return slices.Contains(networkQuotas, r) })
	} else {
		out = slices.DeleteFunc(out, func(r string) bool { return slices.Contains(groupQuotas, r) })
	}
	if v.AtLeast(Version{2, 57}) {
		out = slices.DeleteFunc(out, func(r string) bool { return slices.Contains(injectedQuotas, r) })
	}
	return out
}

func quotaView(keys []string, l quota.Limits, id string) map[string]any {
	v := map[string]any{}
	for _, k := range keys {
		v[k] = l[k]
	}
	if id != "" {
		v["id"] = id
	}
	return v
}

// quotaQuery checks a quota set's query: from 2.75 Nova's schemas
// (show_query_v275 and the others) allow user_id alone.
func quotaQuery(r *http.Request) error {
	if !atLeast(r, 75) {
		return nil
	}
	return checkQuery(r.URL.Query(), "user_id")
}

// quotaUser is the user_id query parameter (its first value).
func quotaUser(r *http.Request) string {
	if v := r.URL.Query()["user_id"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

var quotaValueRE = regexp.MustCompile(`^-?[0-9]+$`)

// quotaValue checks one limit as Nova's schema does: an integer or a
// string of digits, from -1 to 2147483647.
func quotaValue(key string, raw json.RawMessage) (int64, error) {
	var n json.Number
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return 0, bad("Invalid input for field/attribute %s. Value: %s. is not valid JSON", key, raw)
	}
	switch x := v.(type) {
	case json.Number:
		n = x
		if _, err := x.Int64(); err != nil {
			if _, ferr := x.Float64(); ferr == nil && !strings.ContainsAny(x.String(), ".eE") {
				return 0, bad("Invalid input for field/attribute %s. Value: %s. %s is greater than the maximum of %d", key, x, x, quota.MaxLimit)
			}
			return 0, bad("Invalid input for field/attribute %s. Value: %s. %s is not of type 'integer', 'string'", key, x, x)
		}
	case string:
		if !quotaValueRE.MatchString(x) {
			return 0, bad("Invalid input for field/attribute %s. Value: %s. '%s' does not match '^-?[0-9]+$'", key, x, x)
		}
		n = json.Number(x)
	default:
		return 0, bad("Invalid input for field/attribute %s. Value: %s. %s is not of type 'integer', 'string'", key, pyValue(raw), pyValue(raw))
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || i > quota.MaxLimit {
		return 0, bad("Invalid input for field/attribute %s. Value: %s. %s is greater than the maximum of %d", key, n, n, quota.MaxLimit)
	}
	if i < quota.Unlimited {
		return 0, bad("Invalid input for field/attribute %s. Value: %d. %d is less than the minimum of -1", key, i, i)
	}
	return i, nil
}

// pyValue writes a JSON scalar as Python would (True, None).
func pyValue(raw json.RawMessage) string {
	switch s := strings.TrimSpace(string(raw)); s {
	case "true":
		return "True"
	case "false":
		return "False"
	case "null":
		return "None"
	default:
		return s
	}
}

// parseLimits reads the body of a quota set or class set update: the keys
// allowed at the microversion, each a valid limit; force where allowed.
func parseLimits(w http.ResponseWriter, r *http.Request, top string, allowed []string, withForce bool) (quota.Limits, bool, error) {
	_, raw, err := decodeBody(w, r, top)
	if err != nil {
		return nil, false, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, false, bad("Invalid input for field/attribute %s. Value: %s. %s is not of type 'object'", top, raw, raw)
	}
	out := quota.Limits{}
	force := false
	for k, v := range fields {
		switch {
		case k == "force" && withForce:
			b, ok := parseBool(v)
			if !ok {
				return nil, false, bad("Invalid input for field/attribute force. Value: %s. %s is not a 'boolean'", v, v)
			}
			force = b
		case k == "networks" && !apiVersion(r.Context()).AtLeast(Version{2, 36}):
			return nil, false, bad("The networks quota has been removed")
		case slices.Contains(allowed, k):
			n, err := quotaValue(k, v)
			if err != nil {
				return nil, false, err
			}
			out[k] = n
		default:
			return nil, false, bad("Invalid input for field/attribute %s. Value: %s. Additional properties are not allowed ('%s' was unexpected)", top, raw, k)
		}
	}
	return out, force, nil
}

func checkClassName(c string) error {
	if len(c) < 1 || len(c) > 255 {
		return bad("quota_class_name has %d characters, more than 255.", len(c))
	}
	return nil
}

// showQuotaSet is GET /os-quota-sets/{project} and .../detail.
func (h *quotaSetsHandler) showQuotaSet(detail bool) http.HandlerFunc {
	rule := "os_compute_api:os-quota-sets:show"
	if detail {
		rule = "os_compute_api:os-quota-sets:detail"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		project, user := r.PathValue("project"), quotaUser(r)
		if err := quotaQuery(r); err != nil {
			h.fail(w, r, err)
			return
		}
		if err := h.authorize(ctx, rule, policy.Target{"project_id": project}); err != nil {
			h.fail(w, r, err)
			return
		}
		limits, err := apidb.EffectiveLimits(ctx, h.cfg.DB, h.cfg.Quota, project, user)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		keys := quotaKeys(apiVersion(ctx))
		if !detail {
			httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": quotaView(keys, limits, project)})
			return
		}
		usage, err := apidb.Usage(ctx, h.cfg.DB, project, user)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		v := map[string]any{"id": project}
		for _, k := range keys {
			v[k] = map[string]any{"limit": limits[k], "in_use": usage[k], "reserved": 0}
		}
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": v})
	}
}

// quotaDefaults is GET /os-quota-sets/{project}/defaults: the default
// class's limits, else the configured ones.
func (h *quotaSetsHandler) quotaDefaults(w http.ResponseWriter, r *http.Request) {
	class, err := apidb.ClassLimits(r.Context(), h.cfg.DB, apidb.DefaultQuotaClass)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	l := quota.Effective(h.cfg.Quota, class, nil, nil)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": quotaView(quotaKeys(apiVersion(r.Context())), l, r.PathValue("project"))})
}

// updateQuotaSet is PUT /os-quota-sets/{project}: an admin sets limits of
// a project (or of a user in it). Unless forced, a limit may not go below
// what is in use (or, for a project, below the sum of its users' limits).
func (h *quotaSetsHandler) updateQuotaSet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	project, user := r.PathValue("project"), quotaUser(r)
	if err := quotaQuery(r); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.authorize(ctx, "os_compute_api:os-quota-sets:update", policy.Target{"project_id": project}); err != nil {
		h.fail(w, r, err)
		return
	}
	v := apiVersion(ctx)
	allowed := quotaKeys(v)
	if !v.AtLeast(Version{2, 36}) {
		allowed = append(allowed, "networks")
	}
	set, force, err := parseLimits(w, r, "quota_set", allowed, true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var after quota.Limits
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := apidb.LockQuota(ctx, tx, project); err != nil {
			return err
		}
		if !force {
			if err := h.checkSettable(r, tx, project, user, set); err != nil {
				return err
			}
		}
		if err := apidb.SetLimits(ctx, tx, project, user, set); err != nil {
			return err
		}
		after, err = apidb.EffectiveLimits(ctx, tx, h.cfg.Quota, project, user)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("quota set", "request_id", httpkit.RequestID(ctx), "project", project, "user", user, "limits", set, "force", force)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": quotaView(quotaKeys(v), after, "")})
}

// checkSettable refuses a limit below what is in use (Nova's
// _validate_quota_limit with get_settable_quotas).
func (h *quotaSetsHandler) checkSettable(r *http.Request, tx *db.Tx, project, user string, set quota.Limits) error {
	ctx := r.Context()
	usage, err := apidb.Usage(ctx, tx, project, user)
	if err != nil {
		return err
	}
	minimum := quota.Limits{}
	maximum := quota.Limits{}
	if user == "" {
		sums, unlimited, err := apidb.UserLimitSums(ctx, tx, project)
		if err != nil {
			return err
		}
		for r := range set {
			minimum[r] = max(usage[r], sums[r])
			if unlimited[r] {
				minimum[r] = quota.Unlimited
			}
		}
	} else {
		projectLimits, err := apidb.EffectiveLimits(ctx, tx, h.cfg.Quota, project, "")
		if err != nil {
			return err
		}
		sums, unlimited, err := apidb.UserLimitSums(ctx, tx, project)
		if err != nil {
			return err
		}
		own, err := apidb.ProjectLimits(ctx, tx, project, user)
		if err != nil {
			return err
		}
		for r := range set {
			minimum[r] = usage[r]
			maximum[r] = quota.Unlimited
			if pl := projectLimits[r]; pl >= 0 && !unlimited[r] {
				maximum[r] = pl - sums[r] + own[r]
			}
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := set[k]
		if v == quota.Unlimited {
			continue
		}
		if m := minimum[k]; m == quota.Unlimited || v < m {
			shown := m
			if m == quota.Unlimited {
				shown = -1
			}
			return bad("Quota limit %d for %s must be greater than or equal to already used and reserved %d.", v, k, shown)
		}
		if m, ok := maximum[k]; ok && m >= 0 && v > m {
			return bad("Quota limit %d for %s must be less than or equal to %d.", v, k, m)
		}
	}
	return nil
}

// deleteQuotaSet is DELETE /os-quota-sets/{project}: back to the defaults.
func (h *quotaSetsHandler) deleteQuotaSet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	project, user := r.PathValue("project"), quotaUser(r)
	if err := quotaQuery(r); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.authorize(ctx, "os_compute_api:os-quota-sets:delete", policy.Target{"project_id": project}); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return apidb.DeleteLimits(ctx, tx, project, user) }); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("quota deleted", "request_id", httpkit.RequestID(ctx), "project", project, "user", user)
	w.WriteHeader(http.StatusAccepted)
}

// showQuotaClass is GET /os-quota-class-sets/{class}: the class's limits,
// else the configured defaults (any name answers; only "default" acts).
func (h *quotaSetsHandler) showQuotaClass(w http.ResponseWriter, r *http.Request) {
	class := r.PathValue("class")
	l, err := apidb.ClassLimits(r.Context(), h.cfg.DB, class)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_class_set": quotaView(classKeys(apiVersion(r.Context())), quota.Effective(h.cfg.Quota, l, nil, nil), class)})
}

// updateQuotaClass is PUT /os-quota-class-sets/{class}.
func (h *quotaSetsHandler) updateQuotaClass(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	class := r.PathValue("class")
	if err := checkClassName(class); err != nil {
		h.fail(w, r, err)
		return
	}
	v := apiVersion(ctx)
	allowed := classKeys(v)
	if !v.AtLeast(Version{2, 50}) {
		allowed = append(allowed, groupQuotas...)
		allowed = append(allowed, "networks")
	}
	set, _, err := parseLimits(w, r, "quota_class_set", allowed, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	delete(set, "networks")
	var after quota.Limits
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := apidb.SetClassLimits(ctx, tx, class, set); err != nil {
			return err
		}
		l, err := apidb.ClassLimits(ctx, tx, class)
		after = quota.Effective(h.cfg.Quota, l, nil, nil)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("quota class set", "request_id", httpkit.RequestID(ctx), "class", class, "limits", set)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_class_set": quotaView(classKeys(v), after, "")})
}
