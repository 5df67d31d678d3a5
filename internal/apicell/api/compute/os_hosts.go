package compute

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// os-hosts (below 2.43) and os-availability-zone (availability_zones.go),
// answered from every cell's services. Host names are cell-qualified,
// "api!cell1@cell1-host001"; a request for one host goes to its cell alone
// (a bare name works when only one cell has that host).

// hostsHandler is os-hosts (gone at 2.43), answered by each host's cell.
type hostsHandler struct {
	*base
	services *servicesHandler
}

func (h *hostsHandler) register(rt *router) {
	rt.handle("GET /v2.1/os-hosts", "os_compute_api:os-hosts:list", h.hostsGone(h.listHosts))
	rt.handle("GET /v2.1/os-hosts/{host}", "os_compute_api:os-hosts:show", h.hostsGone(h.showHost))
	rt.handle("PUT /v2.1/os-hosts/{host}", "os_compute_api:os-hosts:update", h.hostsGone(h.updateHost))
	for action, rule := range map[string]string{"reboot": "reboot", "shutdown": "shutdown", "startup": "start"} {
		rt.handle("GET /v2.1/os-hosts/{host}/"+action, "os_compute_api:os-hosts:"+rule, h.hostsGone(h.hostPower(action)))
	}
}

var hostToggle = []string{"enable", "disable", "Enable", "Disable", "ENABLE", "DISABLE"}

// hostsGone answers 404 from 2.43, where Nova removed os-hosts.
func (h *hostsHandler) hostsGone(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if apiVersion(r.Context()).AtLeast(Version{2, 43}) {
			h.fail(w, r, notFound("The resource could not be found."))
			return
		}
		next(w, r)
	}
}

// listHosts is GET /os-hosts: a row per enabled service.
func (h *hostsHandler) listHosts(w http.ResponseWriter, r *http.Request) {
	zone := lastValue(r.URL.Query(), "zone")
	ss, _, err := h.services.gatherServices(w, r, wire.ServiceQuery{})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hosts := []map[string]any{}
	for _, cs := range ss {
		if cs.s.Disabled || (zone != "" && cs.s.Zone != zone) {
			continue
		}
		hosts = append(hosts, map[string]any{"host_name": qualify(cs.cell, cs.s.Host), "service": cs.s.Topic, "zone": cs.s.Zone})
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"hosts": hosts})
}

// showHost is GET /os-hosts/{host}: the host's resources and their use.
func (h *hostsHandler) showHost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("host")
	cell, host, err := h.hostCell(r, name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var rows []wire.HostResource
	if err := h.callCell(r, cell, wire.MethodHostDescribe, wire.HostQuery{Host: host}, &rows); err != nil {
		h.fail(w, r, notFoundAs(err, "Compute host %s could not be found.", name))
		return
	}
	out := make([]map[string]any, 0, len(rows))
	for _, x := range rows {
		out = append(out, map[string]any{"resource": map[string]any{"host": name, "project": x.Project, "cpu": x.CPU,
			"memory_mb": x.MemoryMB, "disk_gb": x.DiskGB}})
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"host": out})
}

// updateHost is PUT /os-hosts/{host} with {"status": ..., "maintenance_mode": ...}.
func (h *hostsHandler) updateHost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("host")
	b, err := readBody(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		h.fail(w, r, bad("Invalid input for field/attribute. Value: %s. %s is not of type 'object'", b, b))
		return
	}
	vals := map[string]string{}
	var extra []string
	for k, raw := range fields {
		if k != "status" && k != "maintenance_mode" {
			extra = append(extra, k)
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil || !slices.Contains(hostToggle, s) {
			h.fail(w, r, bad("Invalid input for field/attribute %s. Value: %s. %s is not one of ['enable', 'disable', 'Enable', 'Disable', 'ENABLE', 'DISABLE']", k, raw, raw))
			return
		}
		vals[k] = strings.ToLower(s)
	}
	if len(extra) > 0 {
		h.fail(w, r, bad("%s", additional(extra)))
		return
	}
	if len(vals) == 0 {
		h.fail(w, r, bad("{} is not valid under any of the given schemas"))
		return
	}
	cell, host, err := h.hostCell(r, name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := map[string]any{"host": name}
	for _, k := range []string{"status", "maintenance_mode"} {
		v, ok := vals[k]
		if !ok {
			continue
		}
		action := v
		if k == "maintenance_mode" {
			action = map[string]string{"enable": "maintenance_on", "disable": "maintenance_off"}[v]
		}
		var out wire.HostActionReply
		if err := h.callCell(r, cell, wire.MethodHostAction, wire.HostAction{Host: host, Action: action}, &out); err != nil {
			h.fail(w, r, notFoundAs(err, "Compute host %s could not be found.", name))
			return
		}
		resp[k] = out.Result
	}
	httpkit.WriteJSON(w, http.StatusOK, resp)
}

// hostPower is GET /os-hosts/{host}/{reboot,shutdown,startup}.
func (h *hostsHandler) hostPower(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("host")
		cell, host, err := h.hostCell(r, name)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		var out wire.HostActionReply
		if err := h.callCell(r, cell, wire.MethodHostAction, wire.HostAction{Host: host, Action: action}, &out); err != nil {
			h.fail(w, r, notFoundAs(err, "Compute host %s could not be found.", name))
			return
		}
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"host": name, "power_action": out.Result})
	}
}
