package volume

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
)

// limitsHandler is GET /limits: the project's absolute limits and, to
// whom limits_extension:used_limits allows, what it uses of them. From
// 3.39 an admin may ask for another project's (?project_id=). Rate limits
// are always empty, as in Cinder since the rate limiting middleware went.
type limitsHandler struct{ *base }

func (h *limitsHandler) register(rt *router) {
	rt.handle("GET /v3/{project_id}/limits", "", h.show)
}

// absoluteLimits are Cinder's names of the limits (views/limits.py) and
// usedLimits those of the usage (contrib/used_limits.py).
var (
	absoluteLimits = map[string]string{
		voltypes.Gigabytes: "maxTotalVolumeGigabytes", voltypes.BackupGigabytes: "maxTotalBackupGigabytes",
		voltypes.Volumes: "maxTotalVolumes", voltypes.Snapshots: "maxTotalSnapshots", voltypes.Backups: "maxTotalBackups",
	}
	usedLimits = map[string]string{
		voltypes.Volumes: "totalVolumesUsed", voltypes.Gigabytes: "totalGigabytesUsed", voltypes.Snapshots: "totalSnapshotsUsed",
		voltypes.Backups: "totalBackupsUsed", voltypes.BackupGigabytes: "totalBackupGigabytesUsed",
	}
)

// limitsAdminFilter is the microversion from which an admin may name the
// project (Cinder's LIMITS_ADMIN_FILTER).
var limitsAdminFilter = version{3, 39}

func (h *limitsHandler) show(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	project := c.ProjectID
	if c.Admin && !requestVersion(r.Context()).less(limitsAdminFilter) {
		q := r.URL.Query()
		if p := q.Get("tenant_id"); q.Has("tenant_id") {
			project = p
		}
		if p := q.Get("project_id"); q.Has("project_id") {
			project = p
		}
	}
	limits, err := h.cfg.Quotas.Limits(r.Context(), h.cfg.DB, project)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	abs := map[string]any{}
	for k, name := range absoluteLimits {
		if v, ok := limits[k]; ok {
			abs[name] = v
		}
	}
	if c.Allowed(h.cfg.Policy, ruleUsedLimits) {
		used, err := h.cfg.QuotaUsage.Usage(r.Context(), h.cfg.DB, project)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for k, name := range usedLimits {
			abs[name] = used[k]
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": abs}})
}
