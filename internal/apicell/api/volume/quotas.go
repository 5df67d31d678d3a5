package volume

import (
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// quotasHandler is os-quota-sets, read only: a project's quota set and the
// defaults, Cinder's default quotas with nothing used while there are no
// volumes (the openstack CLI's `quota show` reads it beside the Compute
// and Networking quotas). Setting quotas is not built yet.
type quotasHandler struct{ *base }

func (h *quotasHandler) register(rt *router) {
	rt.handle("GET /v3/{project_id}/os-quota-sets/{target}", ruleQuotasShow, h.show)
	rt.handle("GET /v3/{project_id}/os-quota-sets/{target}/defaults", ruleQuotasShow, h.defaults)
}

// quotaLimits are the default limits, by Cinder's keys: the project-wide
// ones and the default volume type's (unlimited).
func quotaLimits() map[string]int {
	return map[string]int{
		"volumes": defaultVolumes, "snapshots": defaultSnapshots, "gigabytes": defaultGigabytes,
		"backups": defaultBackups, "backup_gigabytes": defaultBackupGigabytes, "groups": 10, "per_volume_gigabytes": -1,
		"volumes_" + defaultType.Name: -1, "snapshots_" + defaultType.Name: -1, "gigabytes_" + defaultType.Name: -1,
	}
}

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
	set := map[string]any{"id": t}
	for k, v := range quotaLimits() {
		if usage {
			set[k] = map[string]int{"limit": v, "in_use": 0, "reserved": 0}
		} else {
			set[k] = v
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": set})
}

func (h *quotasHandler) defaults(w http.ResponseWriter, r *http.Request) {
	t, err := h.target(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	set := map[string]any{"id": t}
	for k, v := range quotaLimits() {
		set[k] = v
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": set})
}
