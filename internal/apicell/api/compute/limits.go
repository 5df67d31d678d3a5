package compute

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
)

// limitsHandler is GET /limits: the caller's (or, for an admin, a
// project's) absolute limits and usage.
type limitsHandler struct {
	*base
	quota *quotaChecker
}

func (h *limitsHandler) register(rt *router) {
	rt.handle("GET /v2.1/limits", "os_compute_api:limits", h.limits)
}

// limitNames are /limits' absolute keys by resource.
var limitNames = []struct{ key, resource string }{
	{"maxTotalRAMSize", quota.RAM}, {"maxTotalInstances", quota.Instances}, {"maxTotalCores", quota.Cores},
	{"maxTotalKeypairs", quota.KeyPairs}, {"maxTotalFloatingIps", quota.FloatingIPs}, {"maxServerMeta", quota.MetadataItems},
	{"maxImageMeta", quota.MetadataItems}, {"maxPersonality", quota.InjectedFiles}, {"maxPersonalitySize", quota.InjectedFileContentBytes},
	{"maxSecurityGroups", quota.SecurityGroups}, {"maxSecurityGroupRules", quota.SecurityGroupRules},
	{"maxServerGroups", quota.ServerGroups}, {"maxServerGroupMembers", quota.ServerGroupMembers},
}

// limits is GET /limits: the caller's project's limits and usage (another
// project's with tenant_id, for admins).
func (h *limitsHandler) limits(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	project := c.ProjectID
	if atLeast(r, 75) {
		// Nova's index_query_v275: tenant_id and nothing else.
		if err := checkQuery(r.URL.Query(), "tenant_id"); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if q := r.URL.Query(); q.Has("tenant_id") {
		if err := h.authorize(ctx, "os_compute_api:limits:other_project", nil); err != nil {
			h.fail(w, r, err)
			return
		}
		project = q.Get("tenant_id")
	}
	limits, err := apidb.EffectiveLimits(ctx, h.cfg.DB, h.cfg.Quota, project, "")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	usage, err := apidb.Usage(ctx, h.cfg.DB, project, "")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v := apiVersion(ctx)
	gone := map[string]bool{}
	if v.AtLeast(Version{2, 36}) {
		for _, k := range []string{"maxTotalFloatingIps", "maxSecurityGroups", "maxSecurityGroupRules", "totalFloatingIpsUsed", "totalSecurityGroupsUsed"} {
			gone[k] = true
		}
	}
	if v.AtLeast(Version{2, 39}) {
		gone["maxImageMeta"] = true
	}
	if v.AtLeast(Version{2, 57}) {
		gone["maxPersonality"], gone["maxPersonalitySize"] = true, true
	}
	abs := map[string]any{}
	for _, n := range limitNames {
		if !gone[n.key] {
			abs[n.key] = limits[n.resource]
		}
	}
	for k, val := range map[string]int64{"totalRAMUsed": usage[quota.RAM], "totalCoresUsed": usage[quota.Cores], "totalInstancesUsed": usage[quota.Instances],
		"totalServerGroupsUsed": usage[quota.ServerGroups], "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0} {
		if !gone[k] {
			abs[k] = val
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": abs}})
}
