package volume

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// zonesHandler is os-availability-zone: Cinder lists the zones of its
// volume services. There are none yet, so the one storage zone of the
// configuration (the API cell's default zone) is listed, available.
type zonesHandler struct{ *base }

func (h *zonesHandler) register(rt *router) {
	rt.handle("GET /v3/{project_id}/os-availability-zone", ruleZoneList, h.list)
}

func (h *zonesHandler) list(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": []any{
		map[string]any{"zoneName": h.cfg.StorageZone, "zoneState": map[string]any{"available": true}},
	}})
}
