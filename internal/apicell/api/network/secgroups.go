package network

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/db"
)

// securityGroupsHandler is /v2.0/security-groups (Neutron's security-group
// extension with stateful-security-group, the standard attributes and
// their tags).
type securityGroupsHandler struct{ *base }

func (h *securityGroupsHandler) register(rt *router) {
	rt.handle("GET /v2.0/security-groups", h.listGroups)
	rt.handle("POST /v2.0/security-groups", h.createGroup)
	rt.handle("GET /v2.0/security-groups/{id}", h.showGroup)
	rt.handle("PUT /v2.0/security-groups/{id}", h.updateGroup)
	rt.handle("DELETE /v2.0/security-groups/{id}", h.deleteGroup)
}

var securityGroups = &collection{
	name: "security_groups",
	filters: map[string]kind{
		"id": kString, "name": kString, "tenant_id": kString, "project_id": kString, "description": kString,
		"stateful": kBool, "shared": kBool, "revision_number": kInt,
	},
	sorts:    map[string]bool{"id": true, "name": true, "tenant_id": true, "project_id": true},
	notFound: func(id string) error { return netdb.SecurityGroupNotFound(id) },
	tagged:   true,
}

// securityGroupRules are a group's attributes.
var securityGroupRules = map[string]attrRule{
	"id": {}, "security_group_rules": {}, "shared": {}, "created_at": {}, "updated_at": {}, "revision_number": {}, "tags": {},
	"name": {post: true, put: true}, "description": {post: true, put: true}, "stateful": {post: true, put: true},
	"tenant_id": {post: true}, "project_id": {post: true},
}

func securityGroupItem(g *netdb.SecurityGroup) item {
	rules := make([]map[string]any, 0, len(g.Rules))
	for _, r := range g.Rules {
		rules = append(rules, map[string]any(ruleItem(r)))
	}
	return item{
		"id": g.ID, "name": g.Name, "tenant_id": g.ProjectID, "project_id": g.ProjectID, "description": g.Description,
		"stateful": g.Stateful, "shared": false, "security_group_rules": rules, "tags": g.Tags,
		"created_at": isoTime(g.CreatedAt), "updated_at": isoTime(g.UpdatedAt), "revision_number": g.RevisionNumber,
	}
}

// ensureDefault makes the default group of the project a list is about
// (its project_id or tenant_id filter, else the caller's), as Neutron does
// on a project's first use of security groups; never another project's
// for a caller who is not an admin, and not every project's for an admin
// listing them all.
func (b *base) ensureDefault(r *http.Request, q *query) error {
	c := httpkit.CallerFrom(r.Context())
	project := c.ProjectID
	for _, k := range []string{"project_id", "tenant_id"} {
		if v := q.filters[k]; len(v) > 0 {
			project, _ = v[0].(string)
			break
		}
	}
	if project == "" || (project != c.ProjectID && !c.Admin) {
		return nil
	}
	_, err := netdb.EnsureDefaultSecurityGroup(r.Context(), b.cfg.DB, project, b.cfg.Now())
	return err
}

// ownProject is the project whose resources the caller may see: "" (all)
// for admins.
func ownProject(c httpkit.Caller) string {
	if c.Admin {
		return ""
	}
	return c.ProjectID
}

func (h *securityGroupsHandler) listGroups(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query(), securityGroups)
	if err == nil {
		err = h.ensureDefault(r, q)
	}
	var groups []*netdb.SecurityGroup
	if err == nil {
		groups, err = netdb.ListSecurityGroups(r.Context(), h.cfg.DB, ownProject(httpkit.CallerFrom(r.Context())))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items := make([]item, 0, len(groups))
	for _, g := range groups {
		items = append(items, securityGroupItem(g))
	}
	p, err := q.apply(r, securityGroups, items)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeList(w, securityGroups, q, p)
}

// visibleGroup reads a group by id, as SecurityGroupNotFound when the
// caller may not see it (another project's, for a caller who is not an
// admin).
func (b *base) visibleGroup(r *http.Request, q db.Querier, id string) (*netdb.SecurityGroup, error) {
	c := httpkit.CallerFrom(r.Context())
	g, err := netdb.SecurityGroupByID(r.Context(), q, id)
	if err != nil {
		return nil, err
	}
	if !c.Admin && g.ProjectID != c.ProjectID {
		return nil, netdb.SecurityGroupNotFound(id)
	}
	return g, nil
}

func (h *securityGroupsHandler) showGroup(w http.ResponseWriter, r *http.Request) {
	g, err := h.visibleGroup(r, h.cfg.DB, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"security_group": view(securityGroupItem(g), securityGroups, showFields(r))})
}

// defaultExists is Neutron's answer to a group named "default" (any case)
// that is not the project's own default group.
func defaultExists() error {
	return fault(http.StatusConflict, "SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
}

// securityGroupFields reads the attributes a create or update may set.
func securityGroupFields(body map[string]json.RawMessage) (netdb.SecurityGroupPatch, error) {
	var p netdb.SecurityGroupPatch
	if s, ok, err := stringAttr(body, "name", 255); err != nil {
		return p, err
	} else if ok {
		if strings.EqualFold(s, netdb.DefaultSecurityGroupName) {
			return p, defaultExists()
		}
		p.Name = &s
	}
	if s, ok, err := stringAttr(body, "description", 255); err != nil {
		return p, err
	} else if ok {
		p.Description = &s
	}
	if b, ok, err := boolAttr(body, "stateful"); err != nil {
		return p, err
	} else if ok {
		p.Stateful = &b
	}
	return p, nil
}

func (h *securityGroupsHandler) createGroup(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	body, err := decodeBody(w, r, "security_group")
	if err == nil {
		err = checkAttrs(body, securityGroupRules, true)
	}
	var p netdb.SecurityGroupPatch
	if err == nil {
		p, err = securityGroupFields(body)
	}
	var project string
	if err == nil {
		project, err = projectAttr(body, c)
	}
	if err == nil {
		_, err = netdb.EnsureDefaultSecurityGroup(r.Context(), h.cfg.DB, project, h.cfg.Now())
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	g := &netdb.SecurityGroup{ProjectID: project, Stateful: true}
	if p.Name != nil {
		g.Name = *p.Name
	}
	if p.Description != nil {
		g.Description = *p.Description
	}
	if p.Stateful != nil {
		g.Stateful = *p.Stateful
	}
	err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
		gg := *g
		// The group, then the rules a new group is made with (Neutron's
		// quota_limit_check of its template rules); the default group,
		// made above on first use, counts but was never refused.
		if err := h.checkQuota(r.Context(), tx, gg.ProjectID, quota.NetSecurityGroup, 1); err != nil {
			return err
		}
		if err := h.checkQuota(r.Context(), tx, gg.ProjectID, quota.NetSecurityGroupRule, netdb.NewGroupRules); err != nil {
			return err
		}
		if err := netdb.CreateSecurityGroup(r.Context(), tx, &gg, h.cfg.Now()); err != nil {
			return err
		}
		g = &gg
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"security_group": view(securityGroupItem(g), securityGroups, nil)})
}

func (h *securityGroupsHandler) updateGroup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, err := decodeBody(w, r, "security_group")
	if err == nil {
		err = checkAttrs(body, securityGroupRules, false)
	}
	var p netdb.SecurityGroupPatch
	if err == nil {
		p, err = securityGroupFields(body)
	}
	var rev *int64
	if err == nil {
		rev, err = ifMatchRevision(r)
	}
	if err == nil {
		_, err = h.visibleGroup(r, h.cfg.DB, id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var g *netdb.SecurityGroup
	err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) (err error) {
		g, err = sgsync.UpdateGroup(r.Context(), tx, h.cfg.Sender, httpkit.RequestID(r.Context()), id, p, rev, h.cfg.Now())
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"security_group": view(securityGroupItem(g), securityGroups, nil)})
}

func (h *securityGroupsHandler) deleteGroup(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	id := r.PathValue("id")
	err := noBody(r)
	var rev *int64
	if err == nil {
		rev, err = ifMatchRevision(r)
	}
	var g *netdb.SecurityGroup
	if err == nil {
		g, err = h.visibleGroup(r, h.cfg.DB, id)
	}
	// Neutron lets only admins delete a project's default group (the next
	// use of security groups makes a new one).
	if err == nil && g.Name == netdb.DefaultSecurityGroupName && !c.Admin {
		err = fault(http.StatusConflict, "SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
	}
	if err == nil {
		err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
			return sgsync.DeleteGroup(r.Context(), tx, h.cfg.Sender, httpkit.RequestID(r.Context()), id, rev, h.cfg.Now())
		})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
