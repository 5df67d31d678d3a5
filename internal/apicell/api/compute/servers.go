package compute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apicopy"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// serversHandler is the servers resource: create, list, show and delete
// (servers_create.go, servers_list.go, down_cells.go hold its larger
// parts). The server sub-resources find a server and render it through it.
type serversHandler struct {
	*base
	quota  *quotaChecker
	groups *serverGroupsHandler
}

func (h *serversHandler) register(rt *router) {
	rt.handle("POST /v2.1/servers", "os_compute_api:servers:create", h.createServer)
	rt.handle("GET /v2.1/servers", "os_compute_api:servers:index", h.listServers(false))
	rt.handle("GET /v2.1/servers/detail", "os_compute_api:servers:detail", h.listServers(true))
	rt.handle("GET /v2.1/servers/{id}", "os_compute_api:servers:show", h.showServer)
	rt.handle("DELETE /v2.1/servers/{id}", "os_compute_api:servers:delete", h.deleteServer)
}

// gone turns a copy that vanished (deleted meanwhile) into Nova's 404.
func gone(uuid string, err error) error {
	if isNotFound(err) {
		return notFound("Instance %s could not be found.", uuid)
	}
	return err
}

// loadServer finds the server the path's {id} names, if the caller may see
// it (another project's server is Nova's 404); the server sub-resources
// find their server through it.
func (h *serversHandler) loadServer(r *http.Request) (*apidb.Instance, error) {
	return h.loadServerMaybeDeleted(r, false)
}

// loadServerMaybeDeleted is loadServer that can also return a deleted server.
func (h *serversHandler) loadServerMaybeDeleted(r *http.Request, deletedToo bool) (*apidb.Instance, error) {
	c := httpkit.CallerFrom(r.Context())
	id := r.PathValue("id")
	in, err := apidb.Get(r.Context(), h.cfg.DB, id)
	if errors.Is(err, apidb.ErrNotFound) || (err == nil && ((in.Deleted && !deletedToo) || (!c.Admin && in.ProjectID != c.ProjectID))) {
		return nil, notFound("Instance %s could not be found.", id)
	}
	return in, err
}

func (h *serversHandler) showServer(w http.ResponseWriter, r *http.Request) {
	in, err := h.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if h.showDown(w, r, in) {
		return
	}
	if err := loadPortAddresses(r.Context(), h.cfg.DB, []*apidb.Instance{in}); err != nil {
		h.fail(w, r, err)
		return
	}
	v := h.serverView(r, in)
	if err := h.serverGroupsView(r, in, v); err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"server": v})
}

func (h *serversHandler) deleteServer(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	in, err := h.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	now := h.cfg.Now()
	err = h.cfg.DB.Group(ctx, func(tx *db.Tx) error {
		// Locked: the cell it is sent to must be the one an update moving
		// the instance has not changed meanwhile (apidb.ApplyUpdate).
		cur, err := apidb.GetForUpdate(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if cur.Deleted {
			return nil
		}
		if err := checkLocked(ctx, cur); err != nil {
			return err
		}
		// With a reclaim interval, a server that has run is soft-deleted
		// (Nova: one that cannot be is deleted for good).
		if h.cfg.ReclaimInterval > 0 && softDeletable(cur) {
			return softDelete(ctx, tx, h.cfg.Sender, cur, now)
		}
		return apicopy.Delete(ctx, tx, h.cfg.Sender, cur, httpkit.RequestID(ctx), now)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func links(base, project, kind, id string) []map[string]string {
	return []map[string]string{
		{"rel": "self", "href": base + "/v2.1/" + project + "/" + kind + "/" + id},
		{"rel": "bookmark", "href": base + "/" + project + "/" + kind + "/" + id},
	}
}

func isoTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func isoMicro(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

// progressStatuses are the statuses at which Nova's view shows progress
// (views/servers.py _progress_statuses); at any other it is left out. The
// copy holds no progress, so it is 0, Nova's default.
var progressStatuses = map[string]bool{
	"ACTIVE": true, "BUILD": true, "REBUILD": true, "RESIZE": true, "VERIFY_RESIZE": true, "MIGRATING": true,
}

// viewRights are what the caller may see of a server beyond what every
// reader sees: Nova's view checks a policy rule for each.
type viewRights struct {
	// extended: the OS-EXT-SRV-ATTR attributes (ruleExtendedAttrs).
	extended bool
	// hostStatus: host_status from 2.16 (ruleHostStatus).
	hostStatus bool
}

// rightsOn are the caller's viewRights on servers of project: Nova checks
// them on the server's project for one server, and once on the caller's
// own for a detailed list.
func (h *serversHandler) rightsOn(r *http.Request, project string) viewRights {
	c := httpkit.CallerFrom(r.Context())
	t := policy.Target{"project_id": project, "user_id": c.UserID}
	return viewRights{
		extended:   h.cfg.Policy.Allowed(ruleExtendedAttrs, c.Credentials(), t),
		hostStatus: h.cfg.Policy.Allowed(ruleHostStatus, c.Credentials(), t),
	}
}

// serverView is the server as the Compute API shows one server.
func (h *serversHandler) serverView(r *http.Request, in *apidb.Instance) map[string]any {
	return h.serverViewAs(r, in, h.rightsOn(r, in.ProjectID))
}

// serverViewAs is the server as the Compute API shows it to a caller with
// rights.
func (h *serversHandler) serverViewAs(r *http.Request, in *apidb.Instance, rights viewRights) map[string]any {
	base := httpkit.Origin(r)
	c := httpkit.CallerFrom(r.Context())
	addrs := map[string][]map[string]any{}
	for _, ad := range in.Addresses {
		addrs[ad.Network] = append(addrs[ad.Network], map[string]any{
			"version": ad.Version, "addr": ad.Addr, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": ad.MAC,
		})
	}
	meta := in.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	var keyName any
	if in.KeyName != "" {
		keyName = in.KeyName
	}
	var task any
	if in.TaskState != "" {
		task = in.TaskState
	}
	v := map[string]any{
		"id": in.UUID, "name": in.Name, "status": Status(in.VMState, in.TaskState), "tenant_id": in.ProjectID,
		"user_id": in.UserID, "metadata": meta, "hostId": hostID(in.ProjectID, in.Host),
		"image":   serverImageView(base, in),
		"flavor":  map[string]any{"id": in.FlavorID, "links": []map[string]string{{"rel": "bookmark", "href": base + "/" + in.ProjectID + "/flavors/" + in.FlavorID}}},
		"created": isoTime(in.CreatedAt), "updated": isoTime(in.UpdatedAt), "addresses": addrs,
		"accessIPv4": "", "accessIPv6": "", "links": links(base, in.ProjectID, "servers", in.UUID),
		"OS-DCF:diskConfig": diskConfigView(in.AutoDiskConfig), "OS-EXT-AZ:availability_zone": in.AvailabilityZone,
		"config_drive": "", "key_name": keyName, "OS-SRV-USG:launched_at": isoMicro(in.LaunchedAt),
		"OS-SRV-USG:terminated_at": isoMicro(in.DeletedAt), "OS-EXT-STS:task_state": task,
		"OS-EXT-STS:vm_state": in.VMState, "OS-EXT-STS:power_state": in.PowerState,
		"os-extended-volumes:volumes_attached": h.volumesAttachedView(r, in),
	}
	if progressStatuses[v["status"].(string)] {
		v["progress"] = 0
	}
	if rights.extended {
		v["OS-EXT-SRV-ATTR:host"] = nullable(in.Host)
		v["OS-EXT-SRV-ATTR:hypervisor_hostname"] = nullable(in.Node)
		v["OS-EXT-SRV-ATTR:instance_name"] = "instance-" + in.UUID[:8]
	}
	if in.Fault != nil && (in.VMState == "error" || in.VMState == "deleted") {
		f := map[string]any{"code": in.Fault.Code, "message": in.Fault.Message, "created": isoTime(in.Fault.Created)}
		if c.Admin && in.Fault.Details != "" {
			f["details"] = in.Fault.Details
		}
		v["fault"] = f
	}
	versionedView(r, in, v, rights)
	h.serverViewExtras(r, in, v)
	h.securityGroupsView(r, in, v)
	return v
}

// securityGroupsView adds security_groups, the names of the server's
// groups, each once; as Nova, a server in no group has no
// security_groups.
func (h *serversHandler) securityGroupsView(r *http.Request, in *apidb.Instance, v map[string]any) {
	if in.SecurityGroups == nil {
		if err := loadSecurityGroups(r.Context(), h.cfg.DB, []*apidb.Instance{in}); err != nil {
			h.log.Error("load server security groups", "request_id", httpkit.RequestID(r.Context()), "uuid", in.UUID, "err", err)
			return
		}
	}
	if len(in.SecurityGroups) == 0 {
		return
	}
	groups := make([]map[string]string, len(in.SecurityGroups))
	for i, name := range in.SecurityGroups {
		groups[i] = map[string]string{"name": name}
	}
	v["security_groups"] = groups
}

// loadSecurityGroups fills in the SecurityGroups of each instance (an
// empty list when it is in none) with one query.
func loadSecurityGroups(ctx context.Context, q db.Querier, insts []*apidb.Instance) error {
	if len(insts) == 0 {
		return nil
	}
	uuids := make([]string, 0, len(insts))
	for _, in := range insts {
		uuids = append(uuids, in.UUID)
	}
	byInstance, err := netdb.InstancesSecurityGroups(ctx, q, uuids)
	if err != nil {
		return err
	}
	for _, in := range insts {
		in.SecurityGroups = []string{}
		for _, g := range byInstance[in.UUID] {
			if !slices.Contains(in.SecurityGroups, g.Name) {
				in.SecurityGroups = append(in.SecurityGroups, g.Name)
			}
		}
	}
	return nil
}

// loadPortAddresses adds to each instance's addresses (as its cell
// reports them) those of the ports bound to it that the cell has not
// reported (yet): what Nova shows from the server's ports.
func loadPortAddresses(ctx context.Context, q db.Querier, insts []*apidb.Instance) error {
	if len(insts) == 0 {
		return nil
	}
	uuids := make([]string, 0, len(insts))
	for _, in := range insts {
		uuids = append(uuids, in.UUID)
	}
	byServer, err := netdb.ServerPortAddresses(ctx, q, uuids)
	if err != nil {
		return err
	}
	for _, in := range insts {
		for _, pa := range byServer[in.UUID] {
			if !slices.ContainsFunc(in.Addresses, func(a wire.Address) bool { return a.Addr == pa.Addr && a.Network == pa.Network }) {
				in.Addresses = append(in.Addresses, pa)
			}
		}
	}
	return nil
}

// diskConfigView is OS-DCF:diskConfig as Nova shows auto_disk_config.
func diskConfigView(auto bool) string {
	if auto {
		return "AUTO"
	}
	return "MANUAL"
}

// hostID is Nova's hostId: a host hashed with a project, so that a
// project can tell its servers' hosts apart without learning their names.
func hostID(project, host string) string {
	if host == "" {
		return ""
	}
	h := sha256.Sum224([]byte(project + host))
	return hex.EncodeToString(h[:])
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Status maps vm_state and task_state to the API's status, as Nova does.
func Status(vm, task string) string { return vmstate.Status(vm, task) }

// serverViewExtras adds to a server view what the API cell alone holds:
// the access IPs, locked (2.9), description (2.19), tags (2.26) and
// locked_reason (2.73, null when none was given).
func (h *serversHandler) serverViewExtras(r *http.Request, in *apidb.Instance, v map[string]any) {
	v["accessIPv4"] = in.AccessIPv4
	v["accessIPv6"] = in.AccessIPv6
	if atLeast(r, 9) {
		v["locked"] = in.Locked || in.LockedBy != ""
	}
	if atLeast(r, 19) {
		if in.Description == nil {
			v["description"] = nil
		} else {
			v["description"] = *in.Description
		}
	}
	if atLeast(r, 26) {
		if in.Tags == nil {
			if err := apidb.LoadTags(r.Context(), h.cfg.DB, []*apidb.Instance{in}); err != nil {
				h.log.Error("load server tags", "request_id", httpkit.RequestID(r.Context()), "uuid", in.UUID, "err", err)
				in.Tags = []string{}
			}
		}
		v["tags"] = in.Tags
	}
	if atLeast(r, 73) {
		v["locked_reason"] = nullable(in.LockedReason)
	}
}

// serverGroupsView adds server_groups (2.71): the group the server is a
// member of, if any, in a list, as Nova shows one server (not the
// detailed list).
func (h *serversHandler) serverGroupsView(r *http.Request, in *apidb.Instance, v map[string]any) error {
	if !atLeast(r, 71) {
		return nil
	}
	groups, err := apidb.InstanceServerGroups(r.Context(), h.cfg.DB, in.UUID)
	if err != nil {
		return err
	}
	v["server_groups"] = groups
	return nil
}

// updateView is the server as PUT /servers/{id} answers it: from 2.75
// the whole view show gives; before, without the extended attributes
// (availability zone, config drive, key name, usage times, security
// groups, extended server and status attributes, volumes, host status)
// and with plain addresses. From 2.71 it has server_groups, as show does.
func (h *serversHandler) updateView(r *http.Request, in *apidb.Instance) (map[string]any, error) {
	// The addresses of the server's ports its cell has not reported yet,
	// as show has them.
	if err := loadPortAddresses(r.Context(), h.cfg.DB, []*apidb.Instance{in}); err != nil {
		return nil, err
	}
	v := h.serverView(r, in)
	if err := h.serverGroupsView(r, in, v); err != nil {
		return nil, err
	}
	if atLeast(r, 75) {
		return v, nil
	}
	for k := range v {
		for _, p := range []string{"OS-EXT-AZ:", "OS-SRV-USG:", "OS-EXT-SRV-ATTR:", "OS-EXT-STS:", "os-extended-volumes:"} {
			if strings.HasPrefix(k, p) {
				delete(v, k)
			}
		}
	}
	for _, k := range []string{"config_drive", "key_name", "security_groups", "host_status"} {
		delete(v, k)
	}
	addrs := map[string][]map[string]any{}
	for _, ad := range in.Addresses {
		addrs[ad.Network] = append(addrs[ad.Network], map[string]any{"version": ad.Version, "addr": ad.Addr})
	}
	v["addresses"] = addrs
	return v, nil
}

// rebuildView is the server as the rebuild action answers it (Nova's
// rebuild): before 2.75 the update view, with key_name from 2.54; from
// 2.75 the whole view but the extended user_data; and from 2.57 the
// server's user_data, whatever the policy.
func (h *serversHandler) rebuildView(r *http.Request, in *apidb.Instance) (map[string]any, error) {
	v, err := h.updateView(r, in)
	if err != nil {
		return nil, err
	}
	if atLeast(r, 54) && !atLeast(r, 75) {
		v["key_name"] = nullable(in.KeyName)
	}
	delete(v, "OS-EXT-SRV-ATTR:user_data")
	if atLeast(r, 57) {
		v["user_data"] = nullable(in.UserData)
	}
	return v, nil
}

// serverImageView is a server's "image" (Nova's _get_image): its image's
// id and bookmark, or "" for a volume-backed server (no image of its
// own), at every microversion.
func serverImageView(base string, in *apidb.Instance) any {
	if in.ImageRef == "" {
		return ""
	}
	return map[string]any{"id": in.ImageRef, "links": []map[string]string{{"rel": "bookmark", "href": base + "/" + in.ProjectID + "/images/" + in.ImageRef}}}
}
