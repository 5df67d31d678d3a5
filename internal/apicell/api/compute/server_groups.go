package compute

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Server groups (os-server-groups), as in Nova: a placement policy shared
// by the servers booted into the group with the scheduler hint "group".
// The microversions that change them: 2.13 (project_id and user_id shown),
// 2.15 (the soft policies), 2.64 (policy and rules instead of policies and
// metadata; not served: MaxVersion is below it), 2.75 (unknown query
// parameters of the list refused).
//
// The placement works in two stages, as every build here does. The API
// cell resolves the group and, for affinity, pins the build to the cell
// its members are in (all members of an affinity group share one host, so
// one cell). The compute cell's host scheduler then applies the policy to
// hosts (see hostsched's ServerGroup filters and weighers).

// serverGroupsHandler is os-server-groups, and the placement of a new
// server in its group.
type serverGroupsHandler struct {
	*base
	quota *quotaChecker
}

// groupPolicies are the policies a create may ask for at the request's
// microversion, in the order Nova's schema lists them.
func groupPolicies(r *http.Request) []any {
	p := []any{"anti-affinity", "affinity"}
	if atLeast(r, 15) {
		p = append(p, "soft-anti-affinity", "soft-affinity")
	}
	return p
}

// serverGroupView shows a group as Nova does before 2.64: its one policy
// in a list, its live members, an empty metadata; project and user from
// 2.13.
func serverGroupView(r *http.Request, g *apidb.ServerGroup) map[string]any {
	members := g.Members
	if members == nil {
		members = []string{}
	}
	v := map[string]any{"id": g.UUID, "name": g.Name, "policies": []string{g.Policy}, "members": members, "metadata": map[string]any{}}
	if atLeast(r, 64) {
		// 2.64: one policy and its rules, no metadata.
		rules := map[string]any{}
		if g.MaxServerPerHost > 0 {
			rules["max_server_per_host"] = g.MaxServerPerHost
		}
		v = map[string]any{"id": g.UUID, "name": g.Name, "policy": g.Policy, "rules": rules, "members": members}
	}
	if atLeast(r, 13) {
		v["project_id"] = g.ProjectID
		v["user_id"] = g.UserID
	}
	return v
}

// checkGroupPolicies checks "policies" as Nova's schema does: a list of
// exactly one unique item, one of allowed. Errors on the list itself come
// before errors on its item, as jsonschema's best match picks them.
func checkGroupPolicies(v any, allowed []any) error {
	list, ok := v.([]any)
	if !ok {
		return invalid("policies", v, "%s is not of type 'array'", pyRepr(v))
	}
	for i := range list {
		for j := i + 1; j < len(list); j++ {
			if pyRepr(list[i]) == pyRepr(list[j]) {
				return invalid("policies", list, "%s has non-unique elements", pyRepr(list))
			}
		}
	}
	switch {
	case len(list) == 0:
		return invalid("policies", list, "%s should be non-empty", pyRepr(list))
	case len(list) > 1:
		return invalid("policies", list, "%s is too long", pyRepr(list))
	}
	// Nova names the item by its index, the last element of the path.
	p, ok := list[0].(string)
	if !ok {
		return invalid("0", list[0], "%s is not of type 'string'", pyRepr(list[0]))
	}
	if !slices.Contains(allowed, any(p)) {
		return invalid("0", p, "%s is not one of %s", pyRepr(p), pyRepr(allowed))
	}
	return nil
}

// checkGroupRules checks a 2.64 group's rules: an object with at most
// max_server_per_host, a positive integer (or a string of digits).
func checkGroupRules(v any) (int, error) {
	rules, ok := v.(map[string]any)
	if !ok {
		return 0, invalid("rules", v, "%s is not of type 'object'", pyRepr(v))
	}
	n := 0
	if m, ok := rules["max_server_per_host"]; ok {
		const f = "max_server_per_host"
		switch t := m.(type) {
		case string:
			if t == "" {
				return 0, invalid(f, t, "'' should be non-empty")
			}
			if strings.Trim(t, "0123456789") != "" {
				return 0, invalid(f, t, "%s does not match '^[0-9]*$'", pyRepr(t))
			}
			x, err := strconv.Atoi(t)
			if err != nil || x < 1 {
				return 0, invalid(f, t, "%s is less than the minimum of 1", pyRepr(t))
			}
			n = x
		case json.Number:
			x, err := t.Int64()
			if err != nil {
				return 0, invalid(f, t, "%s is not of type 'integer', 'string'", t)
			}
			if x < 1 {
				return 0, invalid(f, t, "%s is less than the minimum of 1", t)
			}
			n = int(min(x, 1<<31-1))
		default:
			return 0, invalid(f, m, "%s is not of type 'integer', 'string'", pyRepr(m))
		}
	}
	if err := noOtherKeys(rules, "rules", "max_server_per_host"); err != nil {
		return 0, err
	}
	return n, nil
}

func (h *serverGroupsHandler) register(rt *router) {
	rt.handle("GET /v2.1/os-server-groups", "os_compute_api:os-server-groups:index", h.listServerGroups)
	rt.handle("POST /v2.1/os-server-groups", "os_compute_api:os-server-groups:create", h.createServerGroup)
	rt.handle("GET /v2.1/os-server-groups/{id}", "os_compute_api:os-server-groups:show", h.showServerGroup)
	rt.handle("DELETE /v2.1/os-server-groups/{id}", "os_compute_api:os-server-groups:delete", h.deleteServerGroup)
}

func (h *serverGroupsHandler) createServerGroup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	body, err := readObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	fields := []string{"name", "policies"}
	if atLeast(r, 64) {
		fields = []string{"name", "policy", "rules"}
	}
	var maxPerHost int
	vals, err := objectField(body, "server_group", fields, fields[:2], func(g map[string]any) error {
		if v, ok := g["name"]; ok {
			if err := checkName("name", v); err != nil {
				return err
			}
		}
		if v, ok := g["policies"]; ok && !atLeast(r, 64) {
			return checkGroupPolicies(v, groupPolicies(r))
		}
		if !atLeast(r, 64) {
			return nil
		}
		if v, ok := g["policy"]; ok {
			if p, isStr := v.(string); !isStr || !slices.Contains(groupPolicies(r), any(p)) {
				return invalid("policy", v, "%s is not one of %s", pyRepr(v), pyRepr(groupPolicies(r)))
			}
		}
		if v, ok := g["rules"]; ok {
			n, err := checkGroupRules(v)
			if err != nil {
				return err
			}
			maxPerHost = n
		}
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var policy string
	if atLeast(r, 64) {
		policy = vals["policy"].(string)
		if rules, _ := vals["rules"].(map[string]any); len(rules) > 0 && policy != "anti-affinity" {
			h.fail(w, r, bad("Only anti-affinity policy supports rules."))
			return
		}
	} else {
		policy = vals["policies"].([]any)[0].(string)
	}
	g := &apidb.ServerGroup{UUID: uuid.NewString(), Name: vals["name"].(string), ProjectID: c.ProjectID, UserID: c.UserID,
		Policy: policy, MaxServerPerHost: maxPerHost, CreatedAt: h.cfg.Now().UTC()}
	if err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := h.quota.checkServerGroups(ctx, tx, g.ProjectID, g.UserID); err != nil {
			return err
		}
		return apidb.CreateServerGroup(ctx, tx, g)
	}); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("server group created", "request_id", httpkit.RequestID(ctx), "group", g.UUID, "policy", g.Policy, "project", g.ProjectID)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"server_group": serverGroupView(r, g)})
}

// loadServerGroup reads the group a show or delete names: one of another
// project is not found, except to admins (Nova's project-scoped query).
func (h *serverGroupsHandler) loadServerGroup(r *http.Request) (*apidb.ServerGroup, error) {
	c := httpkit.CallerFrom(r.Context())
	id := r.PathValue("id")
	g, err := apidb.GetServerGroup(r.Context(), h.cfg.DB, id)
	if errors.Is(err, apidb.ErrNotFound) || (err == nil && !c.Admin && g.ProjectID != c.ProjectID) {
		return nil, notFound("Instance group %s could not be found.", id)
	}
	return g, err
}

func (h *serverGroupsHandler) showServerGroup(w http.ResponseWriter, r *http.Request) {
	g, err := h.loadServerGroup(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"server_group": serverGroupView(r, g)})
}

func (h *serverGroupsHandler) deleteServerGroup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	g, err := h.loadServerGroup(r)
	if err == nil {
		err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return apidb.DeleteServerGroup(ctx, tx, g.UUID) })
		if errors.Is(err, apidb.ErrNotFound) {
			err = notFound("Instance group %s could not be found.", g.UUID)
		}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("server group deleted", "request_id", httpkit.RequestID(ctx), "group", g.UUID)
	w.WriteHeader(http.StatusNoContent)
}

// listServerGroups lists the caller's project's groups, or every project's
// for an admin who passes all_projects (a member who does gets their own,
// as in Nova), oldest first, paged by offset and limit (Nova's
// common.limited: a limit of 0 or above 1000 is 1000).
func (h *serverGroupsHandler) listServerGroups(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	q := r.URL.Query()
	if atLeast(r, 75) {
		if err := checkQuery(q, "all_projects", "limit", "offset"); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	limit, err := queryLimit(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if limit == 0 {
		limit = 1000
	}
	offset, err := queryOffset(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	opts := apidb.ServerGroupListOptions{ProjectID: c.ProjectID, Limit: limit, Offset: offset}
	if q.Has("all_projects") && h.can(ctx, "os_compute_api:os-server-groups:index:all_projects") {
		opts.ProjectID = ""
	}
	gs, err := apidb.ListServerGroups(ctx, h.cfg.DB, opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(gs))
	for _, g := range gs {
		out = append(out, serverGroupView(r, g))
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"server_groups": out})
}

// groupPlacement resolves the scheduler hint "group" into the build's
// Group: the group's policy and where its live members are. For an
// affinity group whose members are in a cell, the build must go to that
// cell too (SameCell, narrowed by a same_cell hint if one was given).
//
// The hint is a server group uuid, alone or as a one-item list (Nova's
// schema; an empty list is no hint). A group that does not exist, or is
// another project's (to a non-admin), is Nova's "Instance group ... could
// not be found." as a 400.
//
// Members still being scheduled (no cell yet) do not pin the cell: a
// multi-cell tree can split an affinity group booted by concurrent
// requests into two cells, where Nova's late check on the compute host
// would reschedule the second; see docs/server-groups.md.
func (h *serverGroupsHandler) groupPlacement(ctx context.Context, b *wire.BuildInstances) error {
	hint, ok := b.Hints["group"]
	if !ok {
		return nil
	}
	if len(hint) > 1 {
		vals := make([]any, len(hint))
		for i, h := range hint {
			vals[i] = h
		}
		return invalid("group", vals, "%s is too long: a server joins one server group", pyRepr(vals))
	}
	id, err := uuid.Parse(hint[0])
	if err != nil || !uuidRE.MatchString(hint[0]) {
		return invalid("group", hint[0], "%s is not valid under any of the given schemas", pyRepr(hint[0]))
	}
	c := httpkit.CallerFrom(ctx)
	g, err := apidb.GetServerGroup(ctx, h.cfg.DB, id.String())
	if errors.Is(err, apidb.ErrNotFound) || (err == nil && !c.Admin && g.ProjectID != c.ProjectID) {
		return bad("Instance group %s could not be found.", hint[0])
	}
	if err != nil {
		return err
	}
	members, err := apidb.ServerGroupMembers(ctx, h.cfg.DB, g.UUID)
	if err != nil {
		return err
	}
	place := &wire.GroupPlacement{UUID: g.UUID, Policy: g.Policy, MaxServerPerHost: g.MaxServerPerHost}
	var cells []string
	for _, m := range members {
		if m.Cell == "" {
			continue
		}
		if !slices.Contains(cells, m.Cell) {
			cells = append(cells, m.Cell)
		}
		if m.Host != "" {
			if place.MemberHosts == nil {
				place.MemberHosts = map[string][]string{}
			}
			place.MemberHosts[m.Cell] = append(place.MemberHosts[m.Cell], m.Host)
		}
	}
	for _, hs := range place.MemberHosts {
		slices.Sort(hs)
	}
	if g.Policy == "affinity" && len(cells) > 0 {
		slices.Sort(cells)
		if len(b.SameCell) > 0 {
			cells = slices.DeleteFunc(cells, func(cell string) bool { return !slices.Contains(b.SameCell, cell) })
			if len(cells) == 0 {
				return bad("Invalid input for field/attribute os:scheduler_hints. same_cell names no cell that holds the members of affinity server group %s", g.UUID)
			}
		}
		b.SameCell = cells
	}
	b.Group = place
	return nil
}

// addGroupMembers records uuids, the instances a create makes, as members
// of server group group (the build's Group.UUID, as groupPlacement found
// it; "" for none), in the create's transaction. A group deleted since is
// Nova's "Instance group ... could not be found." (400), and nothing is
// created.
func (h *serverGroupsHandler) addGroupMembers(ctx context.Context, tx *db.Tx, group string, uuids []string) error {
	if group == "" {
		return nil
	}
	err := apidb.AddServerGroupMembers(ctx, tx, group, uuids)
	if errors.Is(err, apidb.ErrNotFound) {
		return bad("Instance group %s could not be found.", group)
	}
	return err
}
