package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
)

// quotasHandler is /v2.0/quotas: Neutron's quotasv2 and quotasv2_detail
// extensions. The limits are netdb's (a project's own, else the
// configured defaults); usage is counted from the records, and the create
// paths check it with checkQuota.
type quotasHandler struct{ *base }

func (h *quotasHandler) register(rt *router) {
	rt.handle("GET /v2.0/quotas", h.listQuotas)
	rt.handle("POST /v2.0/quotas", h.createQuota)
	rt.handle("GET /v2.0/quotas/project", h.callerProject("project"))
	rt.handle("GET /v2.0/quotas/tenant", h.callerProject("tenant"))
	rt.handle("GET /v2.0/quotas/{project}", h.showQuota)
	rt.handle("PUT /v2.0/quotas/{project}", h.updateQuota)
	rt.handle("DELETE /v2.0/quotas/{project}", h.deleteQuota)
	rt.handle("GET /v2.0/quotas/{project}/default", h.showDefaults)
	rt.handle("GET /v2.0/quotas/{project}/details", h.showDetails)
}

// checkQuota refuses with a 409 OverQuota a create of adding more of
// resource (quota.NetNetwork, ...) for project that would pass its limit.
// Call it inside the transaction that then writes the records, before
// writing them: it takes the project's quota lock and counts there
// (netdb.CheckQuota).
func (b *base) checkQuota(ctx context.Context, tx *db.Tx, project, resource string, adding int) error {
	return netdb.CheckQuota(ctx, tx, b.cfg.Quota, project, resource, adding)
}

// quotaPolicy checks one of Neutron's quota rules, which Neutron enforces
// against the caller's own project (so a project manager may read any
// project's quota): "(rule:get_quota) is disallowed by policy".
func (b *base) quotaPolicy(c httpkit.Caller, action string) error {
	if c.Allowed(b.cfg.Policy, "network:"+action) {
		return nil
	}
	return fault(http.StatusForbidden, "PolicyNotAuthorized", fmt.Sprintf("(rule:%s) is disallowed by policy", action))
}

// quotaItem is a quota set as Neutron shows it: every resource's limit.
func quotaItem(l netdb.QuotaLimits) map[string]any {
	out := make(map[string]any, len(l))
	for _, r := range quota.NetworkResources() {
		out[r] = l[r]
	}
	return out
}

// listQuotas is GET /v2.0/quotas: the projects with limits of their own,
// each with all its limits (get_quota: admins and project managers).
func (h *quotasHandler) listQuotas(w http.ResponseWriter, r *http.Request) {
	err := h.quotaPolicy(httpkit.CallerFrom(r.Context()), "get_quota")
	var all map[string]netdb.QuotaLimits
	if err == nil {
		all, err = netdb.AllProjectQuotas(r.Context(), h.cfg.DB)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	projects := make([]string, 0, len(all))
	for p := range all {
		projects = append(projects, p)
	}
	slices.Sort(projects)
	items := make([]map[string]any, 0, len(projects))
	for _, p := range projects {
		it := quotaItem(netdb.MergeQuotas(h.cfg.Quota, all[p]))
		it["project_id"], it["tenant_id"] = p, p
		items = append(items, it)
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quotas": items})
}

// createQuota is POST /v2.0/quotas, which Neutron does not have.
func (h *quotasHandler) createQuota(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotImplemented, "HTTPNotImplemented", "POST requests are not supported on this resource.")
}

// callerProject is GET /v2.0/quotas/project (and the deprecated .../tenant):
// the caller's project.
func (h *quotasHandler) callerProject(key string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := httpkit.CallerFrom(r.Context())
		if c.ProjectID == "" {
			writeError(w, http.StatusBadRequest, "QuotaMissingTenant", "Tenant-id was missing from quota request.")
			return
		}
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{key: map[string]any{key + "_id": c.ProjectID}})
	}
}

// readable refuses another project's quota to a caller without get_quota.
func (h *quotasHandler) readable(r *http.Request, project string) error {
	c := httpkit.CallerFrom(r.Context())
	if project == c.ProjectID {
		return nil
	}
	return h.quotaPolicy(c, "get_quota")
}

// showQuota is GET /v2.0/quotas/{project}: what `openstack quota show`
// reads beside the compute quotas.
func (h *quotasHandler) showQuota(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	err := h.readable(r, project)
	var l netdb.QuotaLimits
	if err == nil {
		l, err = netdb.EffectiveQuotas(r.Context(), h.cfg.DB, h.cfg.Quota, project)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota": quotaItem(l)})
}

// showDefaults is GET /v2.0/quotas/{project}/default: the configured
// defaults, whatever the project's own limits.
func (h *quotasHandler) showDefaults(w http.ResponseWriter, r *http.Request) {
	if err := h.readable(r, r.PathValue("project")); err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota": quotaItem(netdb.MergeQuotas(h.cfg.Quota, nil))})
}

// showDetails is GET /v2.0/quotas/{project}/details: each resource's
// limit, use and reservations (always 0: nothing is reserved here, a
// create counts and writes in one transaction). Another project's are an
// admin's only, as Neutron's quotasv2_detail has it.
func (h *quotasHandler) showDetails(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	project := r.PathValue("project")
	if project != c.ProjectID && !c.Admin {
		writeError(w, http.StatusForbidden, "AdminRequired", "User does not have admin privileges: Only admin is authorized to access quotas for another project.")
		return
	}
	var l, used netdb.QuotaLimits
	err := h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) (err error) {
		if l, err = netdb.EffectiveQuotas(r.Context(), tx, h.cfg.Quota, project); err != nil {
			return err
		}
		used, err = netdb.QuotaUsage(r.Context(), tx, project)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := map[string]any{}
	for _, res := range quota.NetworkResources() {
		out[res] = map[string]any{"limit": l[res], "used": used[res], "reserved": 0}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota": out})
}

// updateQuota is PUT /v2.0/quotas/{project} (update_quota: admins): sets
// the limits given, each an integer from -1 (unlimited) to 2^31-1 and,
// unless "force" is true, not below what the project already uses. The
// answer is all the project's limits.
func (h *quotasHandler) updateQuota(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	project := r.PathValue("project")
	if err := h.quotaPolicy(c, "update_quota"); err != nil {
		h.fail(w, r, err)
		return
	}
	limits, order, force, err := quotaBody(w, r)
	if err == nil {
		err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
			return netdb.SetProjectQuotas(r.Context(), tx, project, limits, order, force)
		})
	}
	var l netdb.QuotaLimits
	if err == nil {
		l, err = netdb.EffectiveQuotas(r.Context(), h.cfg.DB, h.cfg.Quota, project)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota": quotaItem(l)})
}

// deleteQuota is DELETE /v2.0/quotas/{project} (delete_quota: admins):
// the project has the defaults again; one without limits of its own is a
// 404 TenantQuotaNotFound.
func (h *quotasHandler) deleteQuota(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	err := h.quotaPolicy(httpkit.CallerFrom(r.Context()), "delete_quota")
	if err == nil {
		err = noBody(r)
	}
	if err == nil {
		err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
			return netdb.DeleteProjectQuotas(r.Context(), tx, project)
		})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// quotaBody reads an update's {"quota": {...}} as Neutron's
// QuotaSetsController.update does: "force" and "check_limit" taken out
// (only force true skips the usage check), then the resource names
// checked (an unknown one: "Unrecognized attribute(s) 'x'"), then each
// value converted with Python's int() and checked to be in range, in the
// resources' order. order is the resources in the request's order, in
// which Neutron checks the usage.
func quotaBody(w http.ResponseWriter, r *http.Request) (limits netdb.QuotaLimits, order []string, force bool, err error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, false, fault(http.StatusRequestEntityTooLarge, "HTTPRequestEntityTooLarge", "Request is too large.")
		}
		return nil, nil, false, badRequest("Body contains invalid data")
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	body, err := decodeBody(w, r, "quota")
	if err != nil {
		return nil, nil, false, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, nil, false, badRequest("Body contains invalid data")
	}
	keys := objectKeys(top["quota"])
	if v, ok := body["force"]; ok {
		force = strings.TrimSpace(string(v)) == "true"
		delete(body, "force")
	}
	delete(body, "check_limit")
	// Neutron fills in the other of project_id and tenant_id before it
	// refuses both as unknown.
	if _, ok := body["project_id"]; ok {
		body["tenant_id"] = body["project_id"]
	} else if _, ok := body["tenant_id"]; ok {
		body["project_id"] = body["tenant_id"]
	}
	known := quota.NetworkResources()
	var unknown []string
	for k := range body {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, nil, false, badRequest("Unrecognized attribute(s) '%s'", strings.Join(unknown, ", "))
	}
	limits = netdb.QuotaLimits{}
	for _, res := range known {
		v, ok := body[res]
		if !ok {
			continue
		}
		n, ok := pyInt(v)
		if !ok {
			return nil, nil, false, fault(http.StatusBadRequest, "InvalidInput", fmt.Sprintf("Invalid input for operation: '%s' is not an integer.", pyStr(v)))
		}
		if n.Cmp(big.NewInt(quota.Unlimited)) < 0 {
			return nil, nil, false, badAttr("HTTPBadRequest", res, fmt.Sprintf("'%s' is too small - must be at least '%d'", n, quota.Unlimited))
		}
		if n.Cmp(big.NewInt(quota.MaxLimit)) > 0 {
			return nil, nil, false, badAttr("HTTPBadRequest", res, fmt.Sprintf("'%s' is too large - must be no larger than '%d'", n, quota.MaxLimit))
		}
		limits[res] = n.Int64()
	}
	for _, k := range keys {
		if _, ok := limits[k]; ok && !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	return limits, order, force, nil
}

// pyInt is Python's int() of a JSON value: an integer (of any size), a
// number with its fraction dropped, true and false as 1 and 0, a string of
// a decimal integer (spaces around it allowed).
func pyInt(raw json.RawMessage) (*big.Int, bool) {
	s := strings.TrimSpace(string(raw))
	switch s {
	case "true":
		return big.NewInt(1), true
	case "false":
		return big.NewInt(0), true
	}
	var num json.Number
	// (json.Number would take a quoted number too: not here.)
	if !strings.HasPrefix(s, `"`) && json.Unmarshal(raw, &num) == nil {
		if n, ok := new(big.Int).SetString(num.String(), 10); ok {
			return n, true
		}
		f, ok := new(big.Float).SetString(num.String())
		if !ok || f.IsInf() {
			return nil, false
		}
		n, _ := f.Int(nil)
		return n, true
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		if n, ok := new(big.Int).SetString(strings.TrimSpace(str), 10); ok {
			return n, true
		}
	}
	return nil, false
}

// pyStr is how Python's str() writes a JSON value in a message: null as
// None, a string without its quotes, the rest as written.
func pyStr(raw json.RawMessage) string {
	if strings.TrimSpace(string(raw)) == "null" {
		return "None"
	}
	return show(raw)
}

// objectKeys are a JSON object's keys in the order written.
func objectKeys(raw json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return keys
		}
	}
	return keys
}
