package wire

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

// Method names. Each is documented in docs/architecture.md with its
// direction and delivery. New behaviour gets a new method or a new minor
// version; a method is never changed in place.
const (
	// MethodBuildInstances (targeted, down, durable): build these instances
	// in the target cell or, if it has children, in a cell it chooses below.
	MethodBuildInstances = "build_instances"
	// MethodBuildFailed (targeted, up, durable): the cell could not place
	// these instances; the scheduling parent retries elsewhere.
	MethodBuildFailed = "build_failed"
	// MethodDeleteInstances (targeted, down, durable): delete these
	// instances in the target cell.
	MethodDeleteInstances = "delete_instances"
	// MethodInstanceUpdate (targeted to the root, up, durable): the owning
	// cell's current state of some instances, each with its version.
	MethodInstanceUpdate = "instance_update"
	// MethodCapacityReport (targeted to the parent, up, best effort): the
	// cell's capacity and capabilities, its subtree summed.
	MethodCapacityReport = "capacity_report"
	// MethodCellInfo (broadcast, down, call): each cell answers with what it
	// is and holds.
	MethodCellInfo = "cell_info"
	// MethodInstanceGet (targeted, down, call): the owning cell's record of
	// one instance.
	MethodInstanceGet = "instance_get"
	// MethodInstanceAction (targeted, down, durable): carry out a server
	// action (stop, start, reboot, ...) on an instance of the target cell.
	MethodInstanceAction = "instance_action"
	// MethodConsoleOutput (targeted, down, call): the tail of an instance's
	// console log.
	MethodConsoleOutput = "console_output"
	// MethodResetState (targeted, down, call): os-resetState carried out
	// by the instance's cell at once; the answer is the instance's new
	// state (an InstanceState), which the API cell applies before it
	// answers, so a read right after shows it.
	MethodResetState = "reset_state"
	// MethodInstanceActions (targeted, down, call): the instance actions
	// and events the owning cell recorded for an instance.
	MethodInstanceActions = "instance_actions"
	// MethodSnapshotDone (targeted to the root, up, durable): a server
	// snapshot's data, for the API cell's image store.
	MethodSnapshotDone = "snapshot_done"
)

// V1 is the first version of every method.
const V1 = "1.0"

// Flavor is the flavor an instance is built with, as the API cell knows it.
type Flavor struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	VCPUs       int               `json:"vcpus"`
	RAMMB       int64             `json:"ram_mb"`
	RootGB      int64             `json:"root_gb"`
	EphemeralGB int64             `json:"ephemeral_gb"`
	SwapMB      int64             `json:"swap_mb"`
	ExtraSpecs  map[string]string `json:"extra_specs,omitempty"`
}

// Need is what the flavor asks of a host.
func (f Flavor) Need() capacity.Flavor {
	return capacity.Flavor{VCPUs: f.VCPUs, RAMMB: f.RAMMB + f.SwapMB, DiskGB: f.RootGB + f.EphemeralGB}
}

// InstanceSpec is one instance to build.
type InstanceSpec struct {
	UUID             string            `json:"uuid"`
	Name             string            `json:"name"`
	ProjectID        string            `json:"project_id"`
	UserID           string            `json:"user_id"`
	ImageRef         string            `json:"image_ref"`
	KeyName          string            `json:"key_name,omitempty"`
	UserData         string            `json:"user_data,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	AvailabilityZone string            `json:"availability_zone,omitempty"`
	ReservationID    string            `json:"reservation_id"`
	LaunchIndex      int               `json:"launch_index"`
	CreatedAt        time.Time         `json:"created_at"`
	// NICs are the instance's network interfaces, in order. None (and not
	// NoNetwork): one interface on the cell's default network, its address
	// handed out by the cell (the boot path of almost every instance).
	NICs []NIC `json:"nics,omitempty"`
	// SecurityGroups are the ids of the server's security groups: those
	// of the interface the cell makes when NICs is empty (enforced as a
	// NIC's SecurityGroups at port revision 1). The API cells that send
	// NICs with PortRevision set it; without it, nothing is enforced on
	// that interface.
	SecurityGroups []string `json:"security_groups,omitempty"`
	// BlockDevices are the instance's volume mappings (a boot from volume
	// or volumes attached at boot); none: an image boot.
	BlockDevices []BlockDevice `json:"block_devices,omitempty"`
}

// NIC is one network interface a build asks for.
type NIC struct {
	NetworkID   string `json:"network_id"`
	NetworkName string `json:"network_name"`
	// PortID is the interface's port id: a port the API cell holds already
	// (created through the Networking API, or for a fixed IP asked for on
	// the boot), or "" for a port the cell makes.
	PortID string `json:"port_id,omitempty"`
	MAC    string `json:"mac,omitempty"`
	// FixedIPs are addresses the API cell has handed out already: the cell
	// uses them as they are. None: the cell hands out one IPv4 address from
	// the blocks of the network it holds.
	FixedIPs []FixedIP `json:"fixed_ips,omitempty"`
	// SecurityGroups are the ids of the port's security groups, which the
	// cell enforces on it (secgroups.go). A NIC with PortRevision 0 comes
	// from an API cell of an earlier release: nothing is enforced on it.
	SecurityGroups []string `json:"security_groups,omitempty"`
	// NoPortSecurity is a port whose port_security_enabled is false: no
	// group and no filter.
	NoPortSecurity bool `json:"no_port_security,omitempty"`
	// AllowedAddressPairs are the port's allowed address pairs.
	AllowedAddressPairs []AddressPair `json:"allowed_address_pairs,omitempty"`
	// PortRevision is the port's revision_number when the API cell sent
	// this NIC (a later port_update is newer).
	PortRevision int64 `json:"port_revision,omitempty"`
}

// FixedIP is one address of a port, in its subnet.
type FixedIP struct {
	SubnetID string `json:"subnet_id"`
	Addr     string `json:"addr"`
}

// BuildInstances is the payload of build_instances: one message per cell
// chosen, however many instances it carries.
type BuildInstances struct {
	Flavor    Flavor         `json:"flavor"`
	Instances []InstanceSpec `json:"instances"`
	// ImageProperties constrain placement (e.g. hypervisor_type).
	ImageProperties map[string]string `json:"image_properties,omitempty"`
	// Hints are the scheduler hints as the API received them.
	Hints map[string][]string `json:"hints,omitempty"`
	// TargetCell is an admin's forced cell, already checked by the API.
	TargetCell string `json:"target_cell,omitempty"`
	// SameCell/DifferentCell are cell paths resolved from hints.
	SameCell      []string `json:"same_cell,omitempty"`
	DifferentCell []string `json:"different_cell,omitempty"`
	// Scheduler is the cell that chose this cell and retries on failure.
	Scheduler string `json:"scheduler"`
	// Attempts counts cell-level attempts so far, starting at 1.
	Attempts int `json:"attempts"`
	// Tried lists the cells that have failed this build.
	Tried []string `json:"tried,omitempty"`
	// NoNetwork asks for instances without any network (2.37 "none").
	NoNetwork bool `json:"no_network,omitempty"`
	// BaseVersion is the highest instance version a cell that handed the
	// build back has used; the next cell counts on from it, so versions only
	// grow however often a build moves between cells.
	BaseVersion int64 `json:"base_version,omitempty"`
	// Recorded says that the sender has recorded, in the API cell's copy,
	// that the receiving cell holds these instances at BaseVersion+1. A
	// cell that then builds them itself does not send that state up (it
	// is there already); one that passes them on counts its versions on
	// from BaseVersion+1.
	Recorded bool `json:"recorded,omitempty"`
	// Group is the server group the instances join (the "group" hint), for
	// the compute cell's host scheduler; nil for none.
	Group *GroupPlacement `json:"group,omitempty"`
	// ForcedHost and ForcedNode are an admin's availability_zone
	// "zone:host", "zone:host:node" or "zone::node" (Nova's force_hosts,
	// force_nodes): the host by its name in its cell (TargetCell is then
	// that cell, when the API cell knows the host) and the node. The
	// compute cell places the instances there without its filters and
	// does not retry them on another host; the cell scheduler does not
	// filter by zone (the API cell matched the zone to the host).
	ForcedHost string `json:"forced_host,omitempty"`
	ForcedNode string `json:"forced_node,omitempty"`
	// RequestedHost and RequestedNode are an admin's requested
	// destination (Compute API 2.74's host and hypervisor_hostname, Nova's
	// requested_destination): the host by its name in its cell and the
	// node, checked by the API cell, which sets TargetCell to their cell.
	// Unlike a forced host, the cell's host scheduler runs its filters on
	// that host (node) alone, and the cell scheduler its filters on the
	// cells on the way; a host they refuse fails the build with no valid
	// host.
	RequestedHost string `json:"requested_host,omitempty"`
	RequestedNode string `json:"requested_node,omitempty"`
}

// Forced reports whether the build names its host or node.
func (b *BuildInstances) Forced() bool { return b.ForcedHost != "" || b.ForcedNode != "" }

// GroupPlacement is a server group as a build carries it: its policy
// (affinity, anti-affinity, soft-affinity or soft-anti-affinity) and where
// the API cell's copy says its live members already are.
type GroupPlacement struct {
	UUID   string `json:"uuid"`
	Policy string `json:"policy"`
	// MaxServerPerHost is an anti-affinity group's rule (0: 1).
	MaxServerPerHost int `json:"max_server_per_host,omitempty"`
	// MemberHosts lists, by cell path, the host of each live member that
	// has one (a host appears once per member on it).
	MemberHosts map[string][]string `json:"member_hosts,omitempty"`
}

// BuildFailed is the payload of build_failed.
type BuildFailed struct {
	Build  BuildInstances `json:"build"`
	Cell   string         `json:"cell"`
	Reason string         `json:"reason"`
	// Exhausted is set when Cell's whole subtree had nowhere left to try
	// (it only passes the failure up); it is not set when Cell tried to
	// build on its own hosts and failed, which counts as an attempt.
	Exhausted bool `json:"exhausted,omitempty"`
}

// DeleteInstances is the payload of delete_instances.
type DeleteInstances struct {
	UUIDs []string `json:"uuids"`
}

// Fault is why an instance is in ERROR.
type Fault struct {
	Code    int       `json:"code"`
	Message string    `json:"message"`
	Details string    `json:"details,omitempty"`
	Created time.Time `json:"created"`
}

// Address is one fixed IP of an instance.
type Address struct {
	Network string `json:"network"`
	Addr    string `json:"addr"`
	Version int    `json:"version"`
	MAC     string `json:"mac,omitempty"`
	// NetworkID, SubnetID and PortID say where the address belongs and
	// the port it is on; empty from cells of an earlier release (the port
	// is then derived from the instance, network and address).
	NetworkID string `json:"network_id,omitempty"`
	SubnetID  string `json:"subnet_id,omitempty"`
	PortID    string `json:"port_id,omitempty"`
}

// InstanceState is an instance as its owning cell holds it.
type InstanceState struct {
	UUID       string    `json:"uuid"`
	Cell       string    `json:"cell"`
	Version    int64     `json:"version"`
	Host       string    `json:"host,omitempty"`
	Node       string    `json:"node,omitempty"`
	VMState    string    `json:"vm_state"`
	TaskState  string    `json:"task_state,omitempty"`
	PowerState int       `json:"power_state"`
	Addresses  []Address `json:"addresses,omitempty"`
	Fault      *Fault    `json:"fault,omitempty"`
	// AvailabilityZone is the zone of the instance's host, once it has one.
	AvailabilityZone string `json:"availability_zone,omitempty"`
	// Flavor and ImageRef are the instance's current ones (they change on
	// resize and rebuild).
	Flavor     *Flavor   `json:"flavor,omitempty"`
	ImageRef   string    `json:"image_ref,omitempty"`
	LaunchedAt time.Time `json:"launched_at,omitzero"`
	Deleted    bool      `json:"deleted,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
	// RequestID is the request that caused the change, when the update
	// travels in an envelope merged from several (the envelope's own
	// request id is then the first one's).
	RequestID string `json:"request_id,omitempty"`
}

// InstanceUpdate is the payload of instance_update. Heal marks resends.
type InstanceUpdate struct {
	Instances []InstanceState `json:"instances"`
	Heal      bool            `json:"heal,omitempty"`
}

// CapacityReport is the payload of capacity_report.
type CapacityReport struct {
	Cell   string          `json:"cell"`
	Report capacity.Report `json:"report"`
	At     time.Time       `json:"at"`
}

// CellInfo is a cell's answer to cell_info.
type CellInfo struct {
	Path      string   `json:"path"`
	Roles     []string `json:"roles,omitempty"`
	Hosts     int      `json:"hosts"`
	Instances int      `json:"instances"`
	Children  []string `json:"children,omitempty"`
	// Capacity is the cell's capacity now: its own hosts and its live
	// children's last reports (which name the cells below that are down).
	Capacity *capacity.Report `json:"capacity,omitempty"`
	// BrokerURL is the cell's broker.
	BrokerURL string `json:"broker_url,omitempty"`
}

// InstanceGet is the payload of instance_get.
type InstanceGet struct {
	UUID string `json:"uuid"`
}

// InstanceAction is the payload of instance_action. Action is a key of
// vmstate.Actions, or "reset_state".
type InstanceAction struct {
	UUID      string          `json:"uuid"`
	Action    string          `json:"action"`
	Params    json.RawMessage `json:"params,omitempty"`
	UserID    string          `json:"user_id"`
	ProjectID string          `json:"project_id"`
}

// ActionParams are the params of resize (the new flavor, already checked
// by the API) and rebuild (the new image).
type ActionParams struct {
	Flavor   *Flavor `json:"flavor,omitempty"`
	ImageRef string  `json:"image_ref,omitempty"`
	// ImageMissing (unshelve) says the shelved image ImageRef is no
	// longer in the image store: an offloaded instance cannot boot.
	ImageMissing bool `json:"image_missing,omitempty"`
	// AvailabilityZone (unshelve, 2.77) is the zone an offloaded
	// instance is to be scheduled into, among the cell's hosts, and its
	// zone once unshelved; "" keeps the instance's own.
	AvailabilityZone string `json:"availability_zone,omitempty"`
	// AnyZone (unshelve, 2.91) schedules an offloaded instance in no
	// particular zone (it is unpinned, or an admin unpinned it); its zone
	// once unshelved is its host's.
	AnyZone bool `json:"any_zone,omitempty"`
	// Host (unshelve, 2.91) is the host, by its name in the cell, an
	// offloaded instance is to go to (Nova's requested_destination: that
	// host alone, through the filters).
	Host string `json:"host,omitempty"`
	// Reimage (rebuild, 2.93) has a volume-backed instance's boot volume
	// re-imaged with ImageRef (Nova's reimage_boot_volume), whether or
	// not the image changes. Without it a volume-backed rebuild leaves
	// the volume.
	Reimage *ReimageImage `json:"reimage,omitempty"`
}

// ReimageImage is the image a boot volume is re-imaged with.
type ReimageImage struct {
	// Size is the image's size in bytes, MinDisk its min_disk in GiB.
	Size    int64 `json:"size"`
	MinDisk int   `json:"min_disk,omitempty"`
	// Metadata is the image as Cinder's volume_image_metadata, which
	// the volume takes once re-imaged.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// SnapshotDone is the payload of snapshot_done.
type SnapshotDone struct {
	ImageID string `json:"image_id"`
	UUID    string `json:"uuid"`
	Data    []byte `json:"data"`
	// Failed says the snapshot could not be taken; the image is deleted.
	Failed bool `json:"failed,omitempty"`
}

// ResetState is the params of the reset_state action.
type ResetState struct {
	State string `json:"state"`
}

// ConsoleOutput asks for a console's log: all of it when Length is 0,
// else its tail of Length pieces (TailConsole).
type ConsoleOutput struct {
	UUID   string `json:"uuid"`
	Length int    `json:"length,omitempty"`
}

// TailConsole is Nova's tail of a console log (the compute manager's
// _tail_log): the log split on "\n", the pieces from the n-th last on,
// joined with "\n". n > 0 keeps the last n pieces (so a log ending in a
// newline keeps n-1 lines and the empty piece after the last newline); 0
// keeps none; n < 0 keeps all but the first -n, as Python's [-n:] does.
func TailConsole(log string, n int) string {
	if n == 0 {
		return ""
	}
	pieces := strings.Split(log, "\n")
	from := 0
	if n > 0 {
		from = max(len(pieces)-n, 0)
	} else {
		from = min(-n, len(pieces))
	}
	return strings.Join(pieces[from:], "\n")
}

// ConsoleOutputReply is the answer to console_output.
type ConsoleOutputReply struct {
	Output string `json:"output"`
}

// InstanceActionsQuery asks for an instance's actions (one, when RequestID
// is set).
type InstanceActionsQuery struct {
	UUID      string `json:"uuid"`
	RequestID string `json:"request_id,omitempty"`
}

// ActionRecord is one instance action with its events.
type ActionRecord struct {
	Action    string        `json:"action"`
	UUID      string        `json:"instance_uuid"`
	RequestID string        `json:"request_id"`
	UserID    string        `json:"user_id"`
	ProjectID string        `json:"project_id"`
	StartTime time.Time     `json:"start_time"`
	UpdatedAt time.Time     `json:"updated_at"`
	Message   string        `json:"message,omitempty"`
	Events    []EventRecord `json:"events,omitempty"`
}

// EventRecord is one event of an instance action.
type EventRecord struct {
	Event      string    `json:"event"`
	StartTime  time.Time `json:"start_time"`
	FinishTime time.Time `json:"finish_time,omitzero"`
	Result     string    `json:"result,omitempty"`
	Host       string    `json:"host,omitempty"`
	Traceback  string    `json:"traceback,omitempty"`
}
