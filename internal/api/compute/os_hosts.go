package compute

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/wire"
)

// os-hosts (below 2.43) and os-availability-zone, answered from every
// cell's services. Host names are cell-qualified, "api!cell1@cell1-host001";
// a request for one host goes to its cell alone (a bare name works when
// only one cell has that host).

func (a *API) hostRoutes() {
	a.mux.HandleFunc("GET /v2.1/os-hosts", a.auth("os_compute_api:os-hosts:list", a.hostsGone(a.listHosts)))
	a.mux.HandleFunc("GET /v2.1/os-hosts/{host}", a.auth("os_compute_api:os-hosts:show", a.hostsGone(a.showHost)))
	a.mux.HandleFunc("PUT /v2.1/os-hosts/{host}", a.auth("os_compute_api:os-hosts:update", a.hostsGone(a.updateHost)))
	for action, rule := range map[string]string{"reboot": "reboot", "shutdown": "shutdown", "startup": "start"} {
		a.mux.HandleFunc("GET /v2.1/os-hosts/{host}/"+action, a.auth("os_compute_api:os-hosts:"+rule, a.hostsGone(a.hostPower(action))))
	}
	a.mux.HandleFunc("GET /v2.1/os-availability-zone", a.auth("os_compute_api:os-availability-zone:list", a.availabilityZones(false)))
	a.mux.HandleFunc("GET /v2.1/os-availability-zone/detail", a.auth("os_compute_api:os-availability-zone:detail", a.availabilityZones(true)))
}

// hostsGone answers 404 from 2.43, where Nova removed os-hosts.
func (a *API) hostsGone(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if apiVersion(r.Context()).AtLeast(Version{2, 43}) {
			a.fail(w, r, notFound("The resource could not be found."))
			return
		}
		h(w, r)
	}
}

// gatherServices asks every cell for its services that match sq, sorted
// by cell and id, and says which cells did not answer.
func (a *API) gatherServices(w http.ResponseWriter, r *http.Request, sq wire.ServiceQuery) ([]cellService, []string, error) {
	var out []cellService
	missing, err := a.gather(w, r, wire.MethodServices, sq, func(cell string, raw json.RawMessage) error {
		ss, err := decodeList[wire.Service](raw)
		for _, s := range ss {
			out = append(out, cellService{cell, s})
		}
		return err
	})
	slices.SortFunc(out, compareCellService)
	return out, missing, err
}

// listHosts is GET /os-hosts: a row per enabled service.
func (a *API) listHosts(w http.ResponseWriter, r *http.Request) {
	zone := lastValue(r.URL.Query(), "zone")
	ss, _, err := a.gatherServices(w, r, wire.ServiceQuery{})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	hosts := []map[string]any{}
	for _, cs := range ss {
		if cs.s.Disabled || (zone != "" && cs.s.Zone != zone) {
			continue
		}
		hosts = append(hosts, map[string]any{"host_name": qualify(cs.cell, cs.s.Host), "service": cs.s.Topic, "zone": cs.s.Zone})
	}
	writeJSON(w, http.StatusOK, map[string]any{"hosts": hosts})
}

// hostError turns a cell's "no such host" into Nova's 404.
func hostError(err error, host string) error {
	if errors.Is(err, wire.ErrNotFound) {
		return notFound("Compute host %s could not be found.", host)
	}
	return err
}

// showHost is GET /os-hosts/{host}: the host's resources and their use.
func (a *API) showHost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("host")
	cell, host, err := a.hostCell(r, name)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var rows []wire.HostResource
	if err := a.callCell(r, cell, wire.MethodHostDescribe, wire.HostQuery{Host: host}, &rows); err != nil {
		a.fail(w, r, hostError(err, name))
		return
	}
	out := make([]map[string]any, 0, len(rows))
	for _, x := range rows {
		out = append(out, map[string]any{"resource": map[string]any{"host": name, "project": x.Project, "cpu": x.CPU,
			"memory_mb": x.MemoryMB, "disk_gb": x.DiskGB}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"host": out})
}

var hostToggle = []string{"enable", "disable", "Enable", "Disable", "ENABLE", "DISABLE"}

// updateHost is PUT /os-hosts/{host} with {"status": ..., "maintenance_mode": ...}.
func (a *API) updateHost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("host")
	b, err := readBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		a.fail(w, r, bad("Invalid input for field/attribute. Value: %s. %s is not of type 'object'", b, b))
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
			a.fail(w, r, bad("Invalid input for field/attribute %s. Value: %s. %s is not one of ['enable', 'disable', 'Enable', 'Disable', 'ENABLE', 'DISABLE']", k, raw, raw))
			return
		}
		vals[k] = strings.ToLower(s)
	}
	if len(extra) > 0 {
		a.fail(w, r, bad("%s", additional(extra)))
		return
	}
	if len(vals) == 0 {
		a.fail(w, r, bad("{} is not valid under any of the given schemas"))
		return
	}
	cell, host, err := a.hostCell(r, name)
	if err != nil {
		a.fail(w, r, err)
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
		if err := a.callCell(r, cell, wire.MethodHostAction, wire.HostAction{Host: host, Action: action}, &out); err != nil {
			a.fail(w, r, hostError(err, name))
			return
		}
		resp[k] = out.Result
	}
	writeJSON(w, http.StatusOK, resp)
}

// hostPower is GET /os-hosts/{host}/{reboot,shutdown,startup}.
func (a *API) hostPower(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("host")
		cell, host, err := a.hostCell(r, name)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		var out wire.HostActionReply
		if err := a.callCell(r, cell, wire.MethodHostAction, wire.HostAction{Host: host, Action: action}, &out); err != nil {
			a.fail(w, r, hostError(err, name))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"host": name, "power_action": out.Result})
	}
}

// availabilityZones is GET /os-availability-zone (and /detail, for
// admins): the zones of every cell's services, those with an enabled
// service first; the internal zone only in the detail, with each zone's
// hosts and their services.
func (a *API) availabilityZones(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss, _, err := a.gatherServices(w, r, wire.ServiceQuery{})
		if err != nil {
			a.fail(w, r, err)
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
		writeJSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": zones})
	}
}
