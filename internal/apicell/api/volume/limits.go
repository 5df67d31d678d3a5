package volume

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// Cinder's default quotas (quota_volumes, quota_snapshots,
// quota_gigabytes, quota_backups, quota_backup_gigabytes). There is no
// quota set per project yet.
const (
	defaultVolumes         = 10
	defaultSnapshots       = 10
	defaultGigabytes       = 1000
	defaultBackups         = 10
	defaultBackupGigabytes = 1000
)

// limitsHandler is GET /limits: the absolute limits and, to whom
// limits_extension:used_limits allows, what is used of them (nothing
// while there are no volumes). Rate limits are always empty, as in
// Cinder since the rate limiting middleware went.
type limitsHandler struct{ *base }

func (h *limitsHandler) register(rt *router) {
	rt.handle("GET /v3/{project_id}/limits", "", h.show)
}

func (h *limitsHandler) show(w http.ResponseWriter, r *http.Request) {
	abs := map[string]any{
		"maxTotalVolumes":         defaultVolumes,
		"maxTotalSnapshots":       defaultSnapshots,
		"maxTotalVolumeGigabytes": defaultGigabytes,
		"maxTotalBackups":         defaultBackups,
		"maxTotalBackupGigabytes": defaultBackupGigabytes,
	}
	if httpkit.CallerFrom(r.Context()).Allowed(h.cfg.Policy, ruleUsedLimits) {
		for _, k := range []string{"totalVolumesUsed", "totalGigabytesUsed", "totalSnapshotsUsed", "totalBackupsUsed", "totalBackupGigabytesUsed"} {
			abs[k] = 0
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": abs}})
}
