package volume

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// zonesHandler is os-availability-zone: Cinder lists the zones of its
// volume services: here the storage zone of the configuration (the API
// cell's default zone) and those the cells report (Config.Zones), each
// available.
type zonesHandler struct{ *base }

func (h *zonesHandler) register(rt *router) {
	rt.handle("GET /v3/{project_id}/os-availability-zone", ruleZoneList, h.list)
}

func (h *zonesHandler) list(w http.ResponseWriter, r *http.Request) {
	out := []any{}
	for _, z := range h.zones(r.Context()) {
		out = append(out, map[string]any{"zoneName": z, "zoneState": map[string]any{"available": true}})
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": out})
}
