package compute

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/aggsync"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// aggregatesHandler is os-aggregates: host aggregates, kept in the API
// cell's database as Nova keeps them in its API database. A host is named
// as os-services names it: "PATH@HOST", or a bare name only one cell has;
// the API cell's host mappings say which hosts exist, so no cell is asked
// (a host of a cell that is down cannot join or leave: 503). Each
// change sends the cells of the hosts it touches their new snapshot of
// the aggregates, in its transaction (package aggsync), so that they
// schedule by zone and aggregate. The images action (2.81) asks the
// aggregate's hosts to pre-cache images (aggregate_images.go).
type aggregatesHandler struct {
	*base
}

const aggregateRule = "os_compute_api:os-aggregates:"

func (h *aggregatesHandler) register(rt *router) {
	rt.handle("GET /v2.1/os-aggregates", aggregateRule+"index", h.listAggregates)
	rt.handle("POST /v2.1/os-aggregates", "", h.createAggregate)
	rt.handle("GET /v2.1/os-aggregates/{id}", aggregateRule+"show", h.showAggregate)
	rt.handle("PUT /v2.1/os-aggregates/{id}", "", h.updateAggregate)
	rt.handle("DELETE /v2.1/os-aggregates/{id}", aggregateRule+"delete", h.deleteAggregate)
	rt.handle("POST /v2.1/os-aggregates/{id}/action", "", h.aggregateAction)
	rt.handle("POST /v2.1/os-aggregates/{id}/images", "", h.cacheImages)
}

// aggregateView is an aggregate as Nova shows it (uuid from 2.41); a
// created aggregate is shown without hosts and metadata.
func aggregateView(v Version, a apidb.Aggregate, created bool) map[string]any {
	hosts := make([]string, len(a.Hosts))
	for i, x := range a.Hosts {
		hosts[i] = qualify(x.Cell, x.Host)
	}
	var zone any
	if z, ok := a.Metadata[apidb.AZKey]; ok {
		zone = z
	}
	out := map[string]any{"id": a.ID, "name": a.Name, "availability_zone": zone,
		"created_at": novaTime(a.CreatedAt), "updated_at": novaTime(a.UpdatedAt),
		"deleted_at": nil, "deleted": false}
	if !created {
		out["hosts"] = hosts
		out["metadata"] = a.Metadata
	}
	if v.AtLeast(Version{2, 41}) {
		out["uuid"] = a.UUID
	}
	return map[string]any{"aggregate": out}
}

func (h *aggregatesHandler) listAggregates(w http.ResponseWriter, r *http.Request) {
	aggs, err := apidb.ListAggregates(r.Context(), h.cfg.DB)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v := apiVersion(r.Context())
	out := make([]any, len(aggs))
	for i, a := range aggs {
		out[i] = aggregateView(v, a, false)["aggregate"]
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"aggregates": out})
}

// aggregateID is Nova's utils.validate_integer of the path's id: Python's
// int() of it (spaces around, a sign, digits with single underscores).
// ok is false when no aggregate can have it (out of range).
func aggregateID(s string) (id int64, ok bool, err error) {
	t := strings.TrimSpace(s)
	if !pyIntRE.MatchString(t) {
		return 0, false, bad("Invalid input received: id must be an integer")
	}
	n, perr := strconv.ParseInt(strings.ReplaceAll(t, "_", ""), 10, 64)
	if perr != nil {
		return 0, false, nil
	}
	return n, true, nil
}

var pyIntRE = regexp.MustCompile(`^[+-]?[0-9](_?[0-9])*$`)

// getAggregate reads the aggregate of the path's id (as the client wrote
// it, for the 404).
func (h *aggregatesHandler) getAggregate(ctx context.Context, q db.Querier, raw string) (apidb.Aggregate, error) {
	id, ok, err := aggregateID(raw)
	if err != nil {
		return apidb.Aggregate{}, err
	}
	if ok {
		a, err := apidb.GetAggregate(ctx, q, id)
		if !errors.Is(err, apidb.ErrNotFound) {
			return a, err
		}
	}
	return apidb.Aggregate{}, notFound("Aggregate %s could not be found.", raw)
}

// lockedAggregate takes the aggregates' lock in tx (every change holds it:
// its zone checks read other aggregates) and reads the aggregate the path
// names.
//
// It also returns the change's sequence number: the version of the
// snapshots it sends the cells of the hosts it touches (pushCells).
func (h *aggregatesHandler) lockedAggregate(ctx context.Context, tx *db.Tx, raw string) (apidb.Aggregate, int64, error) {
	seq, err := apidb.LockAggregates(ctx, tx)
	if err != nil {
		return apidb.Aggregate{}, 0, err
	}
	a, err := h.getAggregate(ctx, tx, raw)
	return a, seq, err
}

// pushCells sends, in tx, each of cells its new snapshot of the
// aggregates (package aggsync) at the change's sequence number seq.
func (h *base) pushCells(ctx context.Context, tx *db.Tx, seq int64, cells ...string) error {
	p := &aggsync.Pusher{Sender: h.cfg.Sender, DefaultZone: h.cfg.DefaultAvailabilityZone}
	return p.Push(ctx, tx, httpkit.RequestID(ctx), seq, cells...)
}

func (h *aggregatesHandler) showAggregate(w http.ResponseWriter, r *http.Request) {
	a, err := h.getAggregate(r.Context(), h.cfg.DB, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, aggregateView(apiVersion(r.Context()), a, false))
}

// checkAZName checks Nova's parameter_types.az_name or null: printable
// characters but ':', not starting or ending with whitespace.
func checkAZName(field string, v any) error {
	if v == nil {
		return nil
	}
	s, ok := v.(string)
	if !ok || s == "" || len([]rune(s)) > 255 || strings.Contains(s, ":") || !validName(s) {
		return invalid(field, v, "%s is not valid under any of the given schemas", pyRepr(v))
	}
	return nil
}

// checkNameSpaces checks Nova's name_with_leading_trailing_spaces: 1 to
// 255 printable characters, at least one not a space.
func checkNameSpaces(field string, v any) error {
	s, ok := v.(string)
	if !ok {
		return invalid(field, v, "%s is not of type 'string'", pyRepr(v))
	}
	trimmed := strings.TrimFunc(s, func(r rune) bool { return printable(r, true) && !printable(r, false) })
	for _, r := range s {
		if !printable(r, true) {
			trimmed = ""
		}
	}
	if trimmed == "" { // "" too: the format is checked before the length

		return bad("An invalid 'name' value was provided. The name must be: printable characters with at least one non space character")
	}
	return checkString(field, s, 1, 255)
}

func (h *aggregatesHandler) createAggregate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := readObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	vals, err := objectField(body, "aggregate", []string{"name", "availability_zone"}, []string{"name"}, func(f map[string]any) error {
		if v, ok := f["name"]; ok {
			if err := checkName("name", v); err != nil {
				return err
			}
		}
		return checkAZName("availability_zone", f["availability_zone"])
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.authorize(ctx, aggregateRule+"create", nil); err != nil {
		h.fail(w, r, err)
		return
	}
	name := strings.TrimSpace(vals["name"].(string))
	zone, _ := vals["availability_zone"].(string)
	zone = strings.TrimSpace(zone)
	var a apidb.Aggregate
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if _, err := apidb.LockAggregates(ctx, tx); err != nil {
			return err
		}
		var err error
		a, err = apidb.CreateAggregate(ctx, tx, uuid.NewString(), name, zone, h.cfg.Now().UTC())
		return err
	})
	if errors.Is(err, apidb.ErrAggregateNameExists) {
		err = conflict("Aggregate %s already exists.", name)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, aggregateView(apiVersion(ctx), a, true))
}

// zoneRefusal is Nova's InvalidAggregateAction* of an action on an
// aggregate: "Cannot <what> aggregate ID. Reason: REASON."
func zoneRefusal(status int, action string, id int64, format string, args ...any) error {
	return httpkit.Errorf(status, "Cannot %s %d. Reason: %s.", action, id, fmt.Sprintf(format, args...))
}

const (
	actionUpdate     = "update aggregate"
	actionUpdateMeta = "update metadata of aggregate"
	actionAdd        = "add host to aggregate"
	actionRemove     = "remove host from aggregate"
)

// safeZoneChange is Nova's is_safe_to_update_az: a zone being set must be
// named, must be the zone of every other aggregate the hosts (the
// aggregate's own when hosts is nil) are in, and, with noInstances, may
// change only when those hosts have no instance.
func safeZoneChange(ctx context.Context, q db.Querier, a apidb.Aggregate, zone *string, set bool, hosts []apidb.AggregateHost, status int, action string, noInstances bool) error {
	if !set {
		return nil
	}
	if zone == nil || *zone == "" {
		return zoneRefusal(status, action, a.ID, "Aggregate %s does not support empty named availability zone", a.Name)
	}
	if hosts == nil {
		hosts = a.Hosts
	}
	zones, err := apidb.OtherZones(ctx, q, a.ID, hosts)
	if err != nil {
		return err
	}
	var conflicting []string
	for _, z := range zones {
		if z != *zone {
			conflicting = append(conflicting, z)
		}
	}
	if len(conflicting) > 0 {
		return zoneRefusal(status, action, a.ID, "One or more hosts already in availability zone(s) %s", pyList(conflicting))
	}
	if cur, ok := a.Metadata[apidb.AZKey]; noInstances && (!ok || cur != *zone) {
		n, err := apidb.CountHostInstances(ctx, q, hosts)
		if err != nil {
			return err
		}
		if n > 0 {
			return zoneRefusal(status, action, a.ID, "One or more hosts contain instances in this zone")
		}
	}
	return nil
}

func (h *aggregatesHandler) updateAggregate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := readObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	vals, err := objectField(body, "aggregate", []string{"name", "availability_zone"}, nil, func(f map[string]any) error {
		if v, ok := f["name"]; ok {
			if err := checkNameSpaces("name", v); err != nil {
				return err
			}
		}
		return checkAZName("availability_zone", f["availability_zone"])
	})
	if err == nil && len(vals) == 0 {
		err = invalid("aggregate", vals, "%s is not valid under any of the given schemas", pyRepr(vals))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.authorize(ctx, aggregateRule+"update", nil); err != nil {
		h.fail(w, r, err)
		return
	}
	raw := r.PathValue("id")
	if _, _, err := aggregateID(raw); err != nil {
		h.fail(w, r, err)
		return
	}
	var a apidb.Aggregate
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		var err error
		var seq int64
		if a, seq, err = h.lockedAggregate(ctx, tx, raw); err != nil {
			return err
		}
		now := h.cfg.Now().UTC()
		if v, ok := vals["name"]; ok {
			name := strings.TrimSpace(v.(string))
			if err := apidb.RenameAggregate(ctx, tx, a.ID, name, now); errors.Is(err, apidb.ErrAggregateNameExists) {
				return conflict("Aggregate %s already exists.", name)
			} else if err != nil {
				return err
			}
			a.Name = name
		}
		zv, set := vals["availability_zone"]
		if !set {
			if a, err = apidb.GetAggregate(ctx, tx, a.ID); err != nil {
				return err
			}
			return h.pushCells(ctx, tx, seq, aggsync.CellsOf(a.Hosts)...)
		}
		var zone *string
		if s, ok := zv.(string); ok {
			s = strings.TrimSpace(s)
			zone = &s
		}
		if err := safeZoneChange(ctx, tx, a, zone, true, nil, http.StatusBadRequest, actionUpdate, true); err != nil {
			return err
		}
		if err := apidb.UpdateAggregateMetadata(ctx, tx, a.ID, map[string]*string{apidb.AZKey: zone}, now); err != nil {
			return err
		}
		if a, err = apidb.GetAggregate(ctx, tx, a.ID); err != nil {
			return err
		}
		return h.pushCells(ctx, tx, seq, aggsync.CellsOf(a.Hosts)...)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, aggregateView(apiVersion(ctx), a, false))
}

func (h *aggregatesHandler) deleteAggregate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		a, _, err := h.lockedAggregate(ctx, tx, r.PathValue("id"))
		if err != nil {
			return err
		}
		if len(a.Hosts) > 0 {
			return zoneRefusal(http.StatusBadRequest, actionRemove, a.ID, "Host aggregate is not empty")
		}
		return apidb.DeleteAggregate(ctx, tx, a.ID)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// aggregateAction dispatches POST /os-aggregates/{id}/action: add_host,
// remove_host and set_metadata.
func (h *aggregatesHandler) aggregateAction(w http.ResponseWriter, r *http.Request) {
	action, body, err := readAction(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	switch action {
	case "add_host", "remove_host":
		h.hostAction(w, r, body, action)
	case "set_metadata":
		h.setMetadata(w, r, body)
	default:
		h.fail(w, r, bad("There is no such action: %s", action))
	}
}

// fqdnPattern is Nova's parameter_types.fqdn; the host of a cell-qualified
// name ("PATH@HOST", as os-services shows hosts) is checked against it.
const fqdnPattern = `^[a-zA-Z0-9-._]*$`

var fqdnRE = regexp.MustCompile(`^[a-zA-Z0-9\-._]*$`)

func checkHostName(field string, v any) error {
	if err := checkString(field, v, 1, 255); err != nil {
		return err
	}
	s := v.(string)
	if i := strings.LastIndex(s, cellItemSep); i >= 0 {
		s = s[i+1:]
	}
	if !fqdnRE.MatchString(s) {
		return invalid(field, v, "%s does not match %s", pyRepr(v), pyRepr(fqdnPattern))
	}
	return nil
}

// aggregateHost resolves a host named as os-services names it to a
// compute host the API cell has a mapping of; ok is false when there is
// none.
func (h *base) aggregateHost(r *http.Request, name string) (apidb.AggregateHost, bool, error) {
	ctx := r.Context()
	var cells []string
	cell, bare, qualified := h.splitQualified(name)
	if !qualified {
		bare = name
	}
	all, err := apidb.HostCells(ctx, h.cfg.DB, bare)
	if err != nil {
		return apidb.AggregateHost{}, false, err
	}
	for _, c := range all {
		if qualified && c != cell {
			continue
		}
		hosts, err := apidb.CellComputeHosts(ctx, h.cfg.DB, c)
		if err != nil {
			return apidb.AggregateHost{}, false, err
		}
		for _, x := range hosts {
			if x == bare {
				cells = append(cells, c)
				break
			}
		}
	}
	switch len(cells) {
	case 0:
		return apidb.AggregateHost{}, false, nil
	case 1:
		return apidb.AggregateHost{Cell: cells[0], Host: bare}, true, nil
	}
	return apidb.AggregateHost{}, false, bad("Host '%s' is in more than one cell (%s): name it PATH@HOST, as os-services lists it.", name, strings.Join(cells, ", "))
}

// hostZone is Nova's zone of a host from its aggregates: the first of
// their zones, "None" when none has one.
func hostZone(ctx context.Context, q db.Querier, host apidb.AggregateHost, except int64) (string, error) {
	zones, err := apidb.OtherZones(ctx, q, except, []apidb.AggregateHost{host})
	if err != nil || len(zones) == 0 {
		return "None", err
	}
	return zones[0], nil
}

// zoneMoveText is Nova's refusal to move a host with instances to another
// zone.
const zoneMoveText = "The host cannot be %s the aggregate as the availability zone of the host would change from '%s' to '%s' " +
	"but the host already has %d instance(s). Changing the AZ of an existing instance is not supported by this action. " +
	"Move the instances away from this host then try again. If you need to move the instances between AZs then you can " +
	"use shelve_offload and unshelve to achieve this"

func (h *aggregatesHandler) hostAction(w http.ResponseWriter, r *http.Request, body map[string]any, action string) {
	ctx := r.Context()
	vals, err := objectField(body, action, []string{"host"}, []string{"host"}, func(f map[string]any) error {
		if v, ok := f["host"]; ok {
			return checkHostName("host", v)
		}
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.authorize(ctx, aggregateRule+action, nil); err != nil {
		h.fail(w, r, err)
		return
	}
	raw := r.PathValue("id")
	if _, _, err := aggregateID(raw); err != nil {
		h.fail(w, r, err)
		return
	}
	name := vals["host"].(string)
	add := action == "add_host"
	cannotRemove := notFound("Cannot remove host %s in aggregate %s", name, raw)
	host, found, err := h.aggregateHost(r, name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !found {
		if add {
			h.fail(w, r, notFound("Compute host %s could not be found.", name))
		} else {
			h.fail(w, r, cannotRemove)
		}
		return
	}
	// A host of a cell that is down neither joins nor leaves (as Nova,
	// which asks the host's cell): its cell could not tell its scheduler.
	verb := "removed from"
	if add {
		verb = "added to"
	}
	if err := h.refuseDown(r, host.Cell, func(c string) string {
		return fmt.Sprintf("Host %s cannot be %s aggregate %s: its cell %s is down.", name, verb, raw, c)
	}); err != nil {
		h.fail(w, r, err)
		return
	}
	var a apidb.Aggregate
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		var err error
		var seq int64
		if a, seq, err = h.lockedAggregate(ctx, tx, raw); err != nil {
			if !add && isFault(err, http.StatusNotFound) {
				return cannotRemove
			}
			return err
		}
		zone, hasZone := a.Metadata[apidb.AZKey]
		if add {
			if err := safeZoneChange(ctx, tx, a, &zone, hasZone, []apidb.AggregateHost{host}, http.StatusConflict, actionAdd, false); err != nil {
				return err
			}
		}
		if hasZone {
			n, err := apidb.CountHostInstances(ctx, tx, []apidb.AggregateHost{host})
			if err != nil {
				return err
			}
			if n > 0 {
				// The host's zone before an add, or after a remove (its
				// other aggregates'), must stay this aggregate's.
				except := a.ID
				if add {
					except = 0
				}
				other, err := hostZone(ctx, tx, host, except)
				if err != nil {
					return err
				}
				if other != zone {
					if add {
						return zoneRefusal(http.StatusConflict, actionAdd, a.ID, zoneMoveText, "added to", other, zone, n)
					}
					return zoneRefusal(http.StatusConflict, actionRemove, a.ID, zoneMoveText, "removed from", zone, other, n)
				}
			}
		}
		if add {
			if err := apidb.AddAggregateHost(ctx, tx, a.ID, host); errors.Is(err, apidb.ErrAggregateHostExists) {
				return conflict("Aggregate %d already has host %s.", a.ID, name)
			} else if err != nil {
				return err
			}
		} else if err := apidb.RemoveAggregateHost(ctx, tx, a.ID, host); errors.Is(err, apidb.ErrNotFound) {
			return cannotRemove
		} else if err != nil {
			return err
		}
		if a, err = apidb.GetAggregate(ctx, tx, a.ID); err != nil {
			return err
		}
		return h.pushCells(ctx, tx, seq, host.Cell)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, aggregateView(apiVersion(ctx), a, false))
}

// checkMetadataNull is Nova's parameter_types.metadata_with_null: keys as
// metadata's, values strings of at most 255 characters or null (nil).
func checkMetadataNull(field string, v any) (map[string]*string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalid(field, v, "%s is not of type 'object'", pyRepr(v))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]*string, len(m))
	var unmatched []string
	for _, k := range keys {
		if !metadataKeyRE.MatchString(k) {
			unmatched = append(unmatched, pyRepr(k))
			continue
		}
		switch x := m[k].(type) {
		case nil:
			out[k] = nil
		case string:
			if utf8.RuneCountInString(x) > 255 {
				return nil, invalid(k, x, "%s is too long", pyRepr(x))
			}
			out[k] = &x
		default:
			return nil, invalid(k, x, "%s is not of type 'string', 'null'", pyRepr(x))
		}
	}
	if len(unmatched) > 0 {
		verb := "does"
		if len(unmatched) > 1 {
			verb = "do"
		}
		return nil, invalid(field, m, "%s %s not match any of the regexes: %s", strings.Join(unmatched, ", "), verb, pyRepr(metadataKeyPattern))
	}
	return out, nil
}

// isFault reports whether err is a fault with status.
func isFault(err error, status int) bool {
	var f *httpkit.Fault
	return errors.As(err, &f) && f.Status == status
}

func (h *aggregatesHandler) setMetadata(w http.ResponseWriter, r *http.Request, body map[string]any) {
	ctx := r.Context()
	var meta map[string]*string
	_, err := objectField(body, "set_metadata", []string{"metadata"}, []string{"metadata"}, func(f map[string]any) error {
		v, ok := f["metadata"]
		if !ok {
			return nil
		}
		var err error
		meta, err = checkMetadataNull("metadata", v)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.authorize(ctx, aggregateRule+"set_metadata", nil); err != nil {
		h.fail(w, r, err)
		return
	}
	raw := r.PathValue("id")
	var a apidb.Aggregate
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		var err error
		var seq int64
		if a, seq, err = h.lockedAggregate(ctx, tx, raw); err != nil {
			return err
		}
		zone, set := meta[apidb.AZKey]
		if err := safeZoneChange(ctx, tx, a, zone, set, nil, http.StatusBadRequest, actionUpdateMeta, true); err != nil {
			return err
		}
		if err := apidb.UpdateAggregateMetadata(ctx, tx, a.ID, meta, h.cfg.Now().UTC()); err != nil {
			return err
		}
		if a, err = apidb.GetAggregate(ctx, tx, a.ID); err != nil {
			return err
		}
		return h.pushCells(ctx, tx, seq, aggsync.CellsOf(a.Hosts)...)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, aggregateView(apiVersion(ctx), a, false))
}

// hostZones sets the zone of compute services whose host is in an
// aggregate with a zone (Nova's set_availability_zones: the zones joined
// by ","); other services keep their cell's (the default zone, or the
// internal one).
func (h *base) hostZones(ctx context.Context, ss []cellService) error {
	zones, err := apidb.HostZones(ctx, h.cfg.DB)
	if err != nil || len(zones) == 0 {
		return err
	}
	for i := range ss {
		s := &ss[i].s
		if s.Binary != "nova-compute" {
			continue
		}
		if z := zones[apidb.AggregateHost{Cell: ss[i].cell, Host: s.Host}]; len(z) > 0 {
			s.Zone = strings.Join(z, ",")
		}
	}
	return nil
}
