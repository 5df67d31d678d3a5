package wire

import "time"

// The operator's methods: what a compute cell answers about its own hosts
// and services. The API cell knows nothing of hosts; it asks the cells.
const (
	// MethodHypervisors (broadcast or targeted, down, call): the cell's
	// compute nodes that match a HypervisorQuery.
	MethodHypervisors = "hypervisors"
	// MethodServices (broadcast or targeted, down, call): the cell's
	// services that match a ServiceQuery.
	MethodServices = "services"
	// MethodServiceUpdate (targeted, down, call): enable, disable or force
	// down a service; the answer is the service after the change.
	MethodServiceUpdate = "service_update"
	// MethodServiceDelete (targeted, down, call): delete a service (a
	// compute service with its node).
	MethodServiceDelete = "service_delete"
	// MethodHostMappings (targeted to the root, up, durable): the UUIDs of
	// a cell's services and compute nodes, so that the API cell routes a
	// request for one to its cell alone.
	MethodHostMappings = "host_mappings"
)

// Service is a service of a compute cell as it travels to the API cell.
// Host is the cell's own host name; the API cell qualifies it.
type Service struct {
	ID             int64     `json:"id"`
	UUID           string    `json:"uuid"`
	Host           string    `json:"host"`
	Binary         string    `json:"binary"`
	Topic          string    `json:"topic"`
	Zone           string    `json:"zone"`
	Disabled       bool      `json:"disabled,omitempty"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	ForcedDown     bool      `json:"forced_down,omitempty"`
	Up             bool      `json:"up"`
	UpdatedAt      time.Time `json:"updated_at,omitzero"`
	LastSeen       time.Time `json:"last_seen,omitzero"`
}

// ServiceQuery selects services; zero fields match all.
type ServiceQuery struct {
	ID     int64  `json:"id,omitempty"`
	UUID   string `json:"uuid,omitempty"`
	Host   string `json:"host,omitempty"`
	Binary string `json:"binary,omitempty"`
}

// ServiceUpdate changes one service (by ID or UUID, or by Host and
// Binary); nil fields stay. ComputeOnly refuses other binaries, as Nova's
// API does.
type ServiceUpdate struct {
	ServiceQuery
	Disabled       *bool   `json:"disabled,omitempty"`
	DisabledReason *string `json:"disabled_reason,omitempty"`
	ForcedDown     *bool   `json:"forced_down,omitempty"`
	ComputeOnly    bool    `json:"compute_only,omitempty"`
}

// Hypervisor is a compute node of a cell with its service.
type Hypervisor struct {
	// ID is the node's id below microversion 2.53: its compute service's.
	ID           int64   `json:"id"`
	UUID         string  `json:"uuid"`
	Hostname     string  `json:"hypervisor_hostname"`
	Type         string  `json:"hypervisor_type"`
	Version      int     `json:"hypervisor_version"`
	Service      Service `json:"service"`
	VCPUs        int     `json:"vcpus"`
	VCPUsUsed    int     `json:"vcpus_used"`
	MemoryMB     int64   `json:"memory_mb"`
	MemoryMBUsed int64   `json:"memory_mb_used"`
	LocalGB      int64   `json:"local_gb"`
	LocalGBUsed  int64   `json:"local_gb_used"`
	RunningVMs   int     `json:"running_vms"`
	// CPUInfo is the driver's CPU description, as JSON text.
	CPUInfo string             `json:"cpu_info"`
	Servers []HypervisorServer `json:"servers,omitempty"`
}

// HypervisorServer is an instance on a hypervisor.
type HypervisorServer struct {
	UUID string `json:"uuid"`
	Name string `json:"name"`
}

// HypervisorQuery selects compute nodes: one by ID or UUID, or those whose
// host name contains Pattern; with their instances when WithServers.
type HypervisorQuery struct {
	ID          int64  `json:"id,omitempty"`
	UUID        string `json:"uuid,omitempty"`
	Pattern     string `json:"pattern,omitempty"`
	WithServers bool   `json:"with_servers,omitempty"`
}

// HostMapping says which cell holds a service or compute node.
type HostMapping struct {
	UUID string `json:"uuid"`
	// Kind is "service" or "hypervisor".
	Kind   string `json:"kind"`
	Host   string `json:"host"`
	Binary string `json:"binary,omitempty"`
}

// The kinds of HostMapping.
const (
	MappingService    = "service"
	MappingHypervisor = "hypervisor"
)

// HostMappings is the payload of host_mappings: mappings to add (or
// refresh) and UUIDs to remove, for the sending cell.
type HostMappings struct {
	Cell    string        `json:"cell"`
	Set     []HostMapping `json:"set,omitempty"`
	Removed []string      `json:"removed,omitempty"`
}

// The host methods of os-hosts.
const (
	// MethodHostDescribe (targeted, down, call): a compute host's
	// resources and their use by project.
	MethodHostDescribe = "host_describe"
	// MethodHostAction (targeted, down, call): enable, disable or put in
	// maintenance a compute host, or a power action on it.
	MethodHostAction = "host_action"
)

// HostQuery names a host of the target cell.
type HostQuery struct {
	Host string `json:"host"`
}

// HostResource is one row of a host's description: its totals, its use
// now, the most its instances may use, or one project's share.
type HostResource struct {
	Project  string `json:"project"`
	CPU      int64  `json:"cpu"`
	MemoryMB int64  `json:"memory_mb"`
	DiskGB   int64  `json:"disk_gb"`
}

// HostAction is the payload of host_action. Action is one of enable,
// disable, maintenance_on, maintenance_off, startup, shutdown, reboot.
type HostAction struct {
	Host   string `json:"host"`
	Action string `json:"action"`
}

// HostActionReply is the driver's answer (Nova's set_host_enabled,
// host_maintenance_mode and host_power_action results).
type HostActionReply struct {
	Result string `json:"result"`
}

// MethodTenantUsage (broadcast, down, call): the instances of the cell
// that ran in a window (os-simple-tenant-usage).
const MethodTenantUsage = "tenant_usage"

// TenantUsageQuery asks for the instances launched before Stop and not
// ended by Start, of one project (all when Project is empty).
type TenantUsageQuery struct {
	Start   time.Time `json:"start"`
	Stop    time.Time `json:"stop"`
	Project string    `json:"project,omitempty"`
}

// InstanceUsage is an instance as usage counts it.
type InstanceUsage struct {
	UUID       string    `json:"uuid"`
	Name       string    `json:"name"`
	ProjectID  string    `json:"project_id"`
	Flavor     Flavor    `json:"flavor"`
	VMState    string    `json:"vm_state"`
	LaunchedAt time.Time `json:"launched_at"`
	// EndedAt is when the instance was deleted (zero while it lives).
	EndedAt time.Time `json:"ended_at,omitzero"`
}

// MethodUsageAudit (broadcast, down, call): the cell's usage audit task
// log for one period, and its compute hosts.
const MethodUsageAudit = "usage_audit"

// UsageAuditQuery names a period.
type UsageAuditQuery struct {
	Begin time.Time `json:"begin"`
	End   time.Time `json:"end"`
}

// UsageAuditReply is a cell's answer: every compute host (disabled ones
// too) and the task log of the hosts that ran the audit.
type UsageAuditReply struct {
	Hosts []string       `json:"hosts"`
	Logs  []AuditTaskLog `json:"logs"`
}

// AuditTaskLog is one host's audit run.
type AuditTaskLog struct {
	Host      string `json:"host"`
	State     string `json:"state"`
	Instances int    `json:"instances"`
	Errors    int    `json:"errors"`
	Message   string `json:"message"`
}
