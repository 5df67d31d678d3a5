package compute

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// The parts of the server resource that the API cell answers alone: PUT
// /servers/{id}, server metadata, server tags (2.26), the lock, and the
// fields they add to the server view.

func (a *API) serverExtraRoutes() {
	a.mux.HandleFunc("PUT /v2.1/servers/{id}", a.auth("os_compute_api:servers:update", a.updateServer))
	a.mux.HandleFunc("GET /v2.1/servers/{id}/metadata", a.auth("os_compute_api:server-metadata:index", a.listServerMetadata))
	a.mux.HandleFunc("POST /v2.1/servers/{id}/metadata", a.auth("os_compute_api:server-metadata:create", a.createServerMetadata))
	a.mux.HandleFunc("PUT /v2.1/servers/{id}/metadata", a.auth("os_compute_api:server-metadata:update_all", a.replaceServerMetadata))
	a.mux.HandleFunc("GET /v2.1/servers/{id}/metadata/{key}", a.auth("os_compute_api:server-metadata:show", a.showServerMetadatum))
	a.mux.HandleFunc("PUT /v2.1/servers/{id}/metadata/{key}", a.auth("os_compute_api:server-metadata:update", a.updateServerMetadatum))
	a.mux.HandleFunc("DELETE /v2.1/servers/{id}/metadata/{key}", a.auth("os_compute_api:server-metadata:delete", a.deleteServerMetadatum))
	a.mux.HandleFunc("GET /v2.1/servers/{id}/tags", a.auth("os_compute_api:os-server-tags:index", a.listServerTags))
	a.mux.HandleFunc("PUT /v2.1/servers/{id}/tags", a.auth("os_compute_api:os-server-tags:update_all", a.replaceServerTags))
	a.mux.HandleFunc("DELETE /v2.1/servers/{id}/tags", a.auth("os_compute_api:os-server-tags:delete_all", a.deleteServerTags))
	a.mux.HandleFunc("GET /v2.1/servers/{id}/tags/{tag}", a.auth("os_compute_api:os-server-tags:show", a.showServerTag))
	a.mux.HandleFunc("PUT /v2.1/servers/{id}/tags/{tag}", a.auth("os_compute_api:os-server-tags:update", a.addServerTag))
	a.mux.HandleFunc("DELETE /v2.1/servers/{id}/tags/{tag}", a.auth("os_compute_api:os-server-tags:delete", a.deleteServerTag))
}

// checkLocked refuses a change to a locked server unless the caller is an
// admin (Nova's check_instance_lock and InstanceIsLocked).
func (a *API) checkLocked(ctx context.Context, in *apidb.Instance) error {
	if (in.Locked || in.LockedBy != "") && !caller(ctx).Admin {
		return conflict("Instance %s is locked", in.UUID)
	}
	return nil
}

// serverViewExtras adds to a server view what the API cell alone holds:
// the access IPs, locked (2.9), description (2.19) and tags (2.26).
func (a *API) serverViewExtras(r *http.Request, in *apidb.Instance, v map[string]any) {
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
			if err := apidb.LoadTags(r.Context(), a.cfg.DB, []*apidb.Instance{in}); err != nil {
				a.log.Error("load server tags", "request_id", requestID(r.Context()), "uuid", in.UUID, "err", err)
				in.Tags = []string{}
			}
		}
		v["tags"] = in.Tags
	}
}

// updateView is the server as PUT /servers/{id} answers it before 2.75:
// without the extended attributes (availability zone, config drive, key
// name, usage times, security groups, extended server and status
// attributes, volumes, host status) and with plain addresses.
func (a *API) updateView(r *http.Request, in *apidb.Instance) map[string]any {
	v := a.serverView(r, in)
	if atLeast(r, 75) {
		return v
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
	return v
}

// createTags gives each new server the tags of a create request (2.52),
// inside the create's transaction; call it right after apidb.Create. The
// tags are checked as Nova's create schema does (checkServerTags): a bad
// one is a 400 and, since the transaction then rolls back, nothing is
// written.
func (a *API) createTags(ctx context.Context, tx *db.Tx, uuids []string, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	list := make([]any, len(tags))
	for i, t := range tags {
		list[i] = t
	}
	if _, err := checkServerTags(list); err != nil {
		return err
	}
	return apidb.AddTags(ctx, tx, uuids, tags)
}

func isNotFound(err error) bool { return errors.Is(err, apidb.ErrNotFound) }
