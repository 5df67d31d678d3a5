package compute

import (
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

// Persona rules, as Nova's nova/policies/base.py names them.
const (
	ruleAdmin    = policy.Admin
	ruleMember   = policy.ProjectMemberOrAdmin
	ruleReader   = policy.ProjectReaderOrAdmin
	ruleKeyOwner = "(rule:context_is_admin) or user_id:%(user_id)s"
)

// The rules a server's view checks (Nova's views/servers.py): who sees
// the OS-EXT-SRV-ATTR attributes, and host_status (2.16).
const (
	ruleExtendedAttrs = "os_compute_api:os-extended-server-attributes"
	ruleHostStatus    = "os_compute_api:servers:show:host_status"
)

// Rules are the Compute API's policy defaults: Nova's names and defaults
// (admin-only operator APIs, project members act on their project's
// servers, readers only read). A policy file overrides any of them.
var Rules = []policy.Rule{
	{Name: "os_compute_api:os-hypervisors:list", Check: ruleAdmin},
	{Name: "os_compute_api:os-hypervisors:list-detail", Check: ruleAdmin},
	{Name: "os_compute_api:os-hypervisors:statistics", Check: ruleAdmin},
	{Name: "os_compute_api:os-hypervisors:show", Check: ruleAdmin},
	{Name: "os_compute_api:os-hypervisors:uptime", Check: ruleAdmin},
	{Name: "os_compute_api:os-hypervisors:search", Check: ruleAdmin},
	{Name: "os_compute_api:os-hypervisors:servers", Check: ruleAdmin},
	{Name: "os_compute_api:os-hosts:list", Check: ruleAdmin},
	{Name: "os_compute_api:os-hosts:show", Check: ruleAdmin},
	{Name: "os_compute_api:os-hosts:update", Check: ruleAdmin},
	{Name: "os_compute_api:os-hosts:reboot", Check: ruleAdmin},
	{Name: "os_compute_api:os-hosts:shutdown", Check: ruleAdmin},
	{Name: "os_compute_api:os-hosts:start", Check: ruleAdmin},
	{Name: "os_compute_api:os-availability-zone:list", Check: policy.Anyone},
	{Name: "os_compute_api:os-availability-zone:detail", Check: ruleAdmin},
	{Name: "os_compute_api:os-simple-tenant-usage:list", Check: ruleAdmin},
	{Name: "os_compute_api:os-simple-tenant-usage:show", Check: ruleReader},
	{Name: "os_compute_api:os-instance-usage-audit-log:list", Check: ruleAdmin},
	{Name: "os_compute_api:os-instance-usage-audit-log:show", Check: ruleAdmin},
	{Name: "os_compute_api:os-cells", Check: ruleAdmin},
	{Name: "os_compute_api:os-services:list", Check: ruleAdmin},
	{Name: "os_compute_api:os-services:update", Check: ruleAdmin},
	{Name: "os_compute_api:os-services:delete", Check: ruleAdmin},
	{Name: "os_compute_api:servers:index", Check: ruleReader},
	{Name: "os_compute_api:servers:detail", Check: ruleReader},
	{Name: "os_compute_api:servers:index:get_all_tenants", Check: ruleAdmin},
	{Name: "os_compute_api:servers:detail:get_all_tenants", Check: ruleAdmin},
	{Name: "os_compute_api:servers:show", Check: ruleReader},
	{Name: ruleHostStatus, Check: ruleAdmin},
	{Name: ruleExtendedAttrs, Check: ruleAdmin},
	{Name: "os_compute_api:servers:create", Check: ruleMember},
	{Name: "os_compute_api:servers:create:forced_host", Check: ruleAdmin},
	{Name: "os_compute_api:servers:update", Check: ruleMember},
	{Name: "os_compute_api:servers:delete", Check: ruleMember},
	{Name: "os_compute_api:servers:reboot", Check: ruleMember},
	{Name: "os_compute_api:servers:resize", Check: ruleMember},
	{Name: "os_compute_api:servers:confirm_resize", Check: ruleMember},
	{Name: "os_compute_api:servers:revert_resize", Check: ruleMember},
	{Name: "os_compute_api:servers:rebuild", Check: ruleMember},
	{Name: "os_compute_api:servers:create_image", Check: ruleMember},
	{Name: "os_compute_api:servers:start", Check: ruleMember},
	{Name: "os_compute_api:servers:stop", Check: ruleMember},
	{Name: "os_compute_api:os-pause-server:pause", Check: ruleMember},
	{Name: "os_compute_api:os-pause-server:unpause", Check: ruleMember},
	{Name: "os_compute_api:os-suspend-server:suspend", Check: ruleMember},
	{Name: "os_compute_api:os-suspend-server:resume", Check: ruleMember},
	{Name: "os_compute_api:os-rescue", Check: ruleMember},
	{Name: "os_compute_api:os-unrescue", Check: ruleMember},
	{Name: "os_compute_api:os-shelve:shelve", Check: ruleMember},
	{Name: "os_compute_api:os-shelve:unshelve", Check: ruleMember},
	{Name: "os_compute_api:os-shelve:shelve_offload", Check: ruleAdmin},
	{Name: "os_compute_api:os-lock-server:lock", Check: ruleMember},
	{Name: "os_compute_api:os-lock-server:unlock", Check: ruleMember},
	{Name: "os_compute_api:os-lock-server:unlock:unlock_override", Check: ruleAdmin},
	{Name: "os_compute_api:os-admin-actions:reset_state", Check: ruleAdmin},
	{Name: "os_compute_api:os-deferred-delete:restore", Check: ruleMember},
	{Name: "os_compute_api:os-deferred-delete:force", Check: ruleMember},
	{Name: "os_compute_api:os-migrate-server:migrate", Check: ruleAdmin},
	{Name: "os_compute_api:os-console-output", Check: ruleMember},
	{Name: "os_compute_api:os-instance-actions:list", Check: ruleReader},
	{Name: "os_compute_api:os-instance-actions:show", Check: ruleReader},
	{Name: "os_compute_api:os-instance-actions:events", Check: ruleAdmin},
	{Name: "os_compute_api:ips:index", Check: ruleReader},
	{Name: "os_compute_api:ips:show", Check: ruleReader},
	{Name: "os_compute_api:server-metadata:index", Check: ruleReader},
	{Name: "os_compute_api:server-metadata:show", Check: ruleReader},
	{Name: "os_compute_api:server-metadata:create", Check: ruleMember},
	{Name: "os_compute_api:server-metadata:update", Check: ruleMember},
	{Name: "os_compute_api:server-metadata:update_all", Check: ruleMember},
	{Name: "os_compute_api:server-metadata:delete", Check: ruleMember},
	{Name: "os_compute_api:os-server-tags:index", Check: ruleReader},
	{Name: "os_compute_api:os-server-tags:show", Check: ruleReader},
	{Name: "os_compute_api:os-server-tags:update", Check: ruleMember},
	{Name: "os_compute_api:os-server-tags:update_all", Check: ruleMember},
	{Name: "os_compute_api:os-server-tags:delete", Check: ruleMember},
	{Name: "os_compute_api:os-server-tags:delete_all", Check: ruleMember},
	{Name: "os_compute_api:os-keypairs:index", Check: ruleKeyOwner},
	{Name: "os_compute_api:os-keypairs:show", Check: ruleKeyOwner},
	{Name: "os_compute_api:os-keypairs:create", Check: ruleKeyOwner},
	{Name: "os_compute_api:os-keypairs:delete", Check: ruleKeyOwner},
	{Name: "os_compute_api:os-flavor-manage:create", Check: ruleAdmin},
	{Name: "os_compute_api:os-flavor-manage:update", Check: ruleAdmin},
	{Name: "os_compute_api:os-flavor-manage:delete", Check: ruleAdmin},
	{Name: "os_compute_api:os-flavor-access", Check: ruleAdmin},
	{Name: "os_compute_api:os-flavor-access:add_tenant_access", Check: ruleAdmin},
	{Name: "os_compute_api:os-flavor-access:remove_tenant_access", Check: ruleAdmin},
	{Name: "os_compute_api:os-flavor-extra-specs:index", Check: ruleReader},
	{Name: "os_compute_api:os-flavor-extra-specs:show", Check: ruleReader},
	{Name: "os_compute_api:os-flavor-extra-specs:create", Check: ruleAdmin},
	{Name: "os_compute_api:os-flavor-extra-specs:update", Check: ruleAdmin},
	{Name: "os_compute_api:os-flavor-extra-specs:delete", Check: ruleAdmin},
	{Name: "os_compute_api:os-server-groups:index", Check: ruleReader},
	{Name: "os_compute_api:os-server-groups:index:all_projects", Check: ruleAdmin},
	{Name: "os_compute_api:os-server-groups:show", Check: ruleReader},
	{Name: "os_compute_api:os-server-groups:create", Check: ruleMember},
	{Name: "os_compute_api:os-server-groups:delete", Check: ruleMember},
	{Name: "os_compute_api:os-quota-sets:show", Check: ruleReader},
	{Name: "os_compute_api:os-quota-sets:detail", Check: ruleReader},
	{Name: "os_compute_api:os-quota-sets:defaults", Check: policy.Anyone},
	{Name: "os_compute_api:os-quota-sets:update", Check: ruleAdmin},
	{Name: "os_compute_api:os-quota-sets:delete", Check: ruleAdmin},
	{Name: "os_compute_api:os-quota-class-sets:show", Check: ruleAdmin},
	{Name: "os_compute_api:os-quota-class-sets:update", Check: ruleAdmin},
	{Name: "os_compute_api:limits", Check: policy.Anyone},
	{Name: "os_compute_api:limits:other_project", Check: ruleAdmin},
}
