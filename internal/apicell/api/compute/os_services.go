package compute

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// os-services: each compute cell answers for its services (nova-compute
// on every host, nova-conductor, nova-scheduler and nova-network on its
// controller). Hosts are shown cell-qualified ("api!cell1@cell1-host001")
// and so are ids below 2.53 ("api!cell1@3"); from 2.53 ids are UUIDs.

// servicesHandler is os-services, gathered from the cells; the hosts and
// availability zone rooms read the services through it.
type servicesHandler struct {
	*base
}

type cellService struct {
	cell string
	s    wire.Service
}

// novaTime is Nova's serialisation of a naive UTC datetime.
func novaTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

func serviceView(v Version, ids hostIDs, cs cellService) map[string]any {
	s := cs.s
	updated := s.UpdatedAt
	if s.LastSeen.After(updated) {
		updated = s.LastSeen
	}
	out := map[string]any{
		"id":              ids.of(cs.cell, s.ID, s.UUID),
		"binary":          s.Binary,
		"host":            qualify(cs.cell, s.Host),
		"zone":            s.Zone,
		"status":          statusOf(s),
		"state":           stateOf(s),
		"updated_at":      novaTime(updated),
		"disabled_reason": nullable(s.DisabledReason),
	}
	if v.AtLeast(Version{2, 11}) {
		out["forced_down"] = s.ForcedDown
	}
	return out
}

func compareCellService(x, y cellService) int {
	if x.cell != y.cell {
		return strings.Compare(x.cell, y.cell)
	}
	return int(x.s.ID - y.s.ID)
}

// serviceBody reads an os-services PUT body: an object whose keys are all
// in allowed, each string of at most 255 characters but forced_down (a
// boolean).
func serviceBody(w http.ResponseWriter, r *http.Request, allowed []string) (map[string]string, *bool, error) {
	b, err := readBody(w, r)
	if err != nil {
		return nil, nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		return nil, nil, bad("Invalid input for field/attribute. Value: %s. %s is not of type 'object'", b, b)
	}
	var extra []string
	for k := range fields {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		return nil, nil, bad("%s", additional(extra))
	}
	out := map[string]string{}
	var forced *bool
	for k, raw := range fields {
		if k == "forced_down" {
			f, ok := parseBool(raw)
			if !ok {
				return nil, nil, bad("Invalid input for field/attribute forced_down. Value: %s. %s is not of type 'boolean'", raw, raw)
			}
			forced = &f
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, nil, bad("Invalid input for field/attribute %s. Value: %s. %s is not of type 'string'", k, raw, raw)
		}
		if s == "" || len([]rune(s)) > 255 {
			what := "should be non-empty"
			if s != "" {
				what = "is too long"
			}
			return nil, nil, bad("Invalid input for field/attribute %s. Value: %s. '%s' %s", k, s, s, what)
		}
		out[k] = s
	}
	return out, forced, nil
}

// gatherServices asks every cell for its services that match sq, sorted
// by cell and id, and says which cells did not answer.
func (h *servicesHandler) gatherServices(w http.ResponseWriter, r *http.Request, sq wire.ServiceQuery) ([]cellService, []string, error) {
	var out []cellService
	missing, err := h.gather(w, r, wire.MethodServices, sq, func(cell string, raw json.RawMessage) error {
		ss, err := decodeList[wire.Service](raw)
		for _, s := range ss {
			out = append(out, cellService{cell, s})
		}
		return err
	})
	if err == nil {
		err = h.hostZones(r.Context(), out)
	}
	slices.SortFunc(out, compareCellService)
	return out, missing, err
}

func (h *servicesHandler) register(rt *router) {
	rt.handle("GET /v2.1/os-services", "os_compute_api:os-services:list", h.listServices)
	rt.handle("PUT /v2.1/os-services/{id}", "os_compute_api:os-services:update", h.updateService)
	rt.handle("DELETE /v2.1/os-services/{id}", "os_compute_api:os-services:delete", h.deleteService)
}

func (h *servicesHandler) listServices(w http.ResponseWriter, r *http.Request) {
	v := apiVersion(r.Context())
	q := r.URL.Query()
	if v.AtLeast(Version{2, 75}) {
		// Nova's index_query_v275: host and binary alone.
		if err := checkQuery(q, "host", "binary"); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	sq := wire.ServiceQuery{Binary: lastValue(q, "binary"), Host: lastValue(q, "host")}
	var out []cellService
	var unknown []map[string]any
	if c, bare, ok := h.splitQualified(sq.Host); ok {
		// A qualified host is asked of its cell alone (a cell that never
		// mapped a host has none).
		sq.Host = bare
		known, err := h.knownCell(r, c)
		if err == nil && known {
			var ss []wire.Service
			err = h.callCell(r, c, wire.MethodServices, sq, &ss)
			for _, s := range ss {
				out = append(out, cellService{c, s})
			}
			if err == nil {
				err = h.hostZones(r.Context(), out)
			}
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
	} else {
		var missing []string
		var err error
		out, missing, err = h.gatherServices(w, r, sq)
		if err == nil && v.AtLeast(v269) && len(missing) > 0 {
			// 2.69: a cell that did not answer shows its compute hosts
			// (from the host mappings) with status UNKNOWN, first.
			unknown, err = h.unknownComputes(r, missing, sq)
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
	}
	slices.SortFunc(out, compareCellService)
	uuids := make([]string, len(out))
	for i, cs := range out {
		uuids[i] = cs.s.UUID
	}
	ids, err := h.hostIDs(r, uuids)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	list := make([]map[string]any, 0, len(unknown)+len(out))
	list = append(list, unknown...)
	for _, cs := range out {
		list = append(list, serviceView(v, ids, cs))
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"services": list})
}

// unknownComputes are the compute hosts of cells that did not answer, as
// Nova's 2.69 shows them: binary, host and status UNKNOWN, filtered by
// the request's host and binary.
func (h *servicesHandler) unknownComputes(r *http.Request, cells []string, sq wire.ServiceQuery) ([]map[string]any, error) {
	if sq.Binary != "" && sq.Binary != "nova-compute" {
		return nil, nil
	}
	var out []map[string]any
	for _, cell := range cells {
		hosts, err := apidb.CellComputeHosts(r.Context(), h.cfg.DB, cell)
		if err != nil {
			return nil, err
		}
		for _, h := range hosts {
			if sq.Host != "" && sq.Host != h {
				continue
			}
			out = append(out, map[string]any{"binary": "nova-compute", "host": qualify(cell, h), "status": "UNKNOWN"})
		}
	}
	return out, nil
}

func (h *servicesHandler) updateService(w http.ResponseWriter, r *http.Request) {
	if apiVersion(r.Context()).AtLeast(v253) {
		h.updateServiceByUUID(w, r)
		return
	}
	h.updateServiceAction(w, r)
}

// updateServiceAction is PUT /os-services/{enable|disable|disable-log-reason|force-down}
// with the host and binary in the body (below 2.53).
func (h *servicesHandler) updateServiceAction(w http.ResponseWriter, r *http.Request) {
	v := apiVersion(r.Context())
	allowed := []string{"host", "binary", "disabled_reason"}
	if v.AtLeast(Version{2, 11}) {
		allowed = append(allowed, "forced_down")
	}
	body, forced, err := serviceBody(w, r, allowed)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for _, k := range []string{"host", "binary"} {
		if body[k] == "" {
			h.fail(w, r, bad("'%s' is a required property", k))
			return
		}
	}
	u := wire.ServiceUpdate{ComputeOnly: true}
	resp := map[string]any{"host": body["host"], "binary": body["binary"]}
	yes, no := true, false
	switch action := r.PathValue("id"); {
	case action == "enable":
		empty := ""
		u.Disabled, u.DisabledReason = &no, &empty
		resp["status"] = "enabled"
	case action == "disable":
		empty := ""
		u.Disabled, u.DisabledReason = &yes, &empty
		resp["status"] = "disabled"
	case action == "disable-log-reason":
		reason, ok := body["disabled_reason"]
		if !ok {
			h.fail(w, r, bad("Missing disabled reason field"))
			return
		}
		u.Disabled, u.DisabledReason = &yes, &reason
		resp["status"], resp["disabled_reason"] = "disabled", reason
	case action == "force-down" && v.AtLeast(Version{2, 11}):
		if forced == nil {
			h.fail(w, r, bad("Missing forced_down field"))
			return
		}
		u.ForcedDown = forced
		resp["forced_down"] = *forced
	default:
		h.fail(w, r, notFound("Unknown action"))
		return
	}
	if body["binary"] != "nova-compute" {
		h.fail(w, r, bad("Updating a %s service is not supported. Only nova-compute services can be updated.", body["binary"]))
		return
	}
	cell, host, err := h.hostCell(r, body["host"])
	if err != nil {
		h.fail(w, r, err)
		return
	}
	u.Host, u.Binary = host, body["binary"]
	var s wire.Service
	if err := h.callCell(r, cell, wire.MethodServiceUpdate, u, &s); err != nil {
		h.fail(w, r, notFoundAs(err, "Could not find binary %s on host %s.", body["binary"], body["host"]))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"service": resp})
}

// updateServiceByUUID is PUT /os-services/{uuid} (2.53).
func (h *servicesHandler) updateServiceByUUID(w http.ResponseWriter, r *http.Request) {
	v := apiVersion(r.Context())
	id := r.PathValue("id")
	u, err := uuid.Parse(id)
	if err != nil {
		h.fail(w, r, bad("Invalid uuid %s", id))
		return
	}
	body, forced, err := serviceBody(w, r, []string{"status", "disabled_reason", "forced_down"})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	up := wire.ServiceUpdate{ServiceQuery: wire.ServiceQuery{UUID: u.String()}, ComputeOnly: true, ForcedDown: forced}
	status, hasStatus := body["status"]
	if hasStatus && status != "enabled" && status != "disabled" {
		h.fail(w, r, bad("Invalid input for field/attribute status. Value: %s. '%s' is not one of ['enabled', 'disabled']", status, status))
		return
	}
	reason, hasReason := body["disabled_reason"]
	switch {
	case status == "enabled" && hasReason:
		h.fail(w, r, bad("Specifying 'disabled_reason' with status 'enabled' is invalid."))
		return
	case status == "enabled":
		no, empty := false, ""
		up.Disabled, up.DisabledReason = &no, &empty
	case status == "disabled":
		yes := true
		up.Disabled, up.DisabledReason = &yes, &reason
	}
	if !hasStatus && forced == nil {
		h.fail(w, r, bad("No updates were requested. Fields 'status' or 'forced_down' should be specified."))
		return
	}
	cell, ok, err := h.mappingCell(r, up.UUID, wire.MappingService)
	if err == nil && !ok {
		err = notFound("Service %s could not be found.", id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var s wire.Service
	if err := h.callCell(r, cell, wire.MethodServiceUpdate, up, &s); err != nil {
		h.fail(w, r, notFoundAs(err, "Service %s could not be found.", id))
		return
	}
	// From 2.53 only: the id is the UUID.
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"service": serviceView(v, hostIDs{v: v}, cellService{cell, s})})
}

// deleteService is DELETE /os-services/{id}: a compute service goes with
// its node, unless the host holds instances (409).
func (h *servicesHandler) deleteService(w http.ResponseWriter, r *http.Request) {
	v := apiVersion(r.Context())
	id := r.PathValue("id")
	var cell string
	var q wire.ServiceQuery
	if v.AtLeast(v253) {
		u, err := uuid.Parse(id)
		if err != nil {
			h.fail(w, r, bad("Invalid uuid %s", id))
			return
		}
		q.UUID = u.String()
		c, ok, err := h.mappingCell(r, q.UUID, wire.MappingService)
		if err == nil && !ok {
			err = notFound("Service %s not found.", id)
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		cell = c
	} else {
		old, ok, err := h.resolveOldHostID(r, id, wire.MappingService)
		switch {
		case errors.Is(err, errNotAnID):
			err = bad("Invalid input received: id must be an integer")
		case err == nil && !ok:
			err = notFound("Service %s not found.", id)
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		cell, q.UUID, q.ID = old.cell, old.uuid, old.id
	}
	var s wire.Service
	if err := h.callCell(r, cell, wire.MethodServiceDelete, q, &s); err != nil {
		h.fail(w, r, notFoundAs(err, "Service %s not found.", id))
		return
	}
	h.log.Info("service deleted", "request_id", httpkit.RequestID(r.Context()), "cell", cell, "service", s.UUID, "host", s.Host, "binary", s.Binary)
	if s.Binary == "nova-compute" {
		// As Nova, a deleted compute service's host leaves its aggregates
		// (after the cell's delete: a refused delete keeps them).
		ctx := r.Context()
		var ids []int64
		err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) (err error) {
			seq, err := apidb.LockAggregates(ctx, tx)
			if err != nil {
				return err
			}
			if ids, err = apidb.RemoveHostFromAggregates(ctx, tx, apidb.AggregateHost{Cell: cell, Host: s.Host}); err != nil || len(ids) == 0 {
				return err
			}
			return h.pushCells(ctx, tx, seq, cell)
		})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if len(ids) > 0 {
			h.log.Info("host removed from its aggregates", "request_id", httpkit.RequestID(ctx), "cell", cell, "host", s.Host, "aggregates", ids)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
