package network

import (
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
)

// quotasHandler is /v2.0/quotas/{project}.
type quotasHandler struct{ *base }

func (h *quotasHandler) register(rt *router) {
	rt.handle("GET /v2.0/quotas/{project}", h.showQuota)
	rt.handle("GET /v2.0/quotas/{project}/details", h.showQuota)
}

// quotaResources are Neutron's quota resources. cellcloud's Networking
// subset enforces none of them, so each is shown as unlimited (-1): the
// API cell's quotas are the Compute API's. The details count what the
// project has of the resources stored here (security groups and their
// rules); the rest are 0.
var quotaResources = []string{"network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule", "rbac_policy", "subnetpool"}

// showQuota is GET /v2.0/quotas/{project} (and .../details): what clients
// such as `openstack quota show` read beside the compute quotas. A
// project may read its own; an admin any.
func (h *quotasHandler) showQuota(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	project := r.PathValue("project")
	if project != c.ProjectID && !c.Admin {
		writeError(w, http.StatusForbidden, "PolicyNotAuthorized", "(rule:get_quota) is disallowed by policy")
		return
	}
	q := map[string]any{}
	details := strings.HasSuffix(r.URL.Path, "/details")
	used := map[string]int{}
	if details {
		groups, rules, err := netdb.CountSecurityGroups(r.Context(), h.cfg.DB, project)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		used["security_group"], used["security_group_rule"] = groups, rules
	}
	for _, k := range quotaResources {
		if details {
			q[k] = map[string]any{"limit": -1, "used": used[k], "reserved": 0}
		} else {
			q[k] = -1
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota": q})
}
