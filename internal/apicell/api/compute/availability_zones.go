package compute

import (
	"net/http"
	"slices"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// zonesHandler is os-availability-zone, from the services' zones.
type zonesHandler struct {
	*base
	services *servicesHandler
}

func (h *zonesHandler) register(rt *router) {
	rt.handle("GET /v2.1/os-availability-zone", "os_compute_api:os-availability-zone:list", h.availabilityZones(false))
	rt.handle("GET /v2.1/os-availability-zone/detail", "os_compute_api:os-availability-zone:detail", h.availabilityZones(true))
}

// availabilityZones is GET /os-availability-zone (and /detail, for
// admins): the zones of every cell's services, those with an enabled
// service first; the internal zone only in the detail, with each zone's
// hosts and their services.
func (h *zonesHandler) availabilityZones(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss, _, err := h.services.gatherServices(w, r, wire.ServiceQuery{})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		available := map[string]map[string]map[string]any{}
		unavailable := map[string]bool{}
		for _, cs := range ss {
			if cs.s.Disabled {
				unavailable[cs.s.Zone] = true
				continue
			}
			hosts := available[cs.s.Zone]
			if hosts == nil {
				hosts = map[string]map[string]any{}
				available[cs.s.Zone] = hosts
			}
			h := qualify(cs.cell, cs.s.Host)
			if hosts[h] == nil {
				hosts[h] = map[string]any{}
			}
			updated := cs.s.UpdatedAt
			if cs.s.LastSeen.After(updated) {
				updated = cs.s.LastSeen
			}
			hosts[h][cs.s.Binary] = map[string]any{"available": cs.s.Up, "active": true, "updated_at": novaTime(updated)}
		}
		var names []string
		for z := range available {
			names = append(names, z)
		}
		slices.Sort(names)
		var down []string
		for z := range unavailable {
			if available[z] == nil {
				down = append(down, z)
			}
		}
		slices.Sort(down)
		zones := []map[string]any{}
		for _, z := range names {
			if z == "internal" && !detail {
				continue
			}
			var hosts any
			if detail {
				hosts = available[z]
			}
			zones = append(zones, map[string]any{"zoneName": z, "zoneState": map[string]any{"available": true}, "hosts": hosts})
		}
		for _, z := range down {
			if z == "internal" && !detail {
				continue
			}
			zones = append(zones, map[string]any{"zoneName": z, "zoneState": map[string]any{"available": false}, "hosts": nil})
		}
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": zones})
	}
}
