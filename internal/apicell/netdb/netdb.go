// Package netdb is the API cell's networking data: the networks and subnets
// the Networking API serves, the security groups and their rules, and which
// groups each server is in, in the API cell's own database (migration set
// "netapi"), and the ports (ports.go): those made through the Networking
// API, those the API cell makes for a fixed IP asked on a boot, and those a
// compute cell makes on a boot, recorded when the API cell's copy of the
// instance (package apidb) first carries their addresses.
//
// Every IPv4 address of a subnet is handed out by the holder of its block
// (blocks.go): a compute cell, from the blocks the API cell leases to it on
// demand, on the boot path; or the API cell itself, for ports made through
// the Networking API and fixed IPs asked on a boot. Network names are unique
// (compute cells ask for their default network by name). A change of a
// subnet's allocation pools or gateway applies to the blocks leased after
// it (and to the usable ranges a cell's blocks are sent with again).
package netdb

import (
	"errors"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
)

// MigrationSet names this package's migrations in schema_migrations.
const MigrationSet = "netapi"

// Migrations is the schema of networks and subnets (1), of security
// groups and their rules (2), of the servers' security groups (3,
// secgroupbindings.go), of the address blocks leased to cells (4,
// blocks.go), of the projects' own networking quota limits (5,
// quotas.go), of the networks' and subnets' tags (6, tags.go) and of the
// ports (7, ports.go; it makes the ports of the live instances'
// addresses) and of the security groups the cells hold and the log of
// their member changes (8, sgcells.go), and the device tags of servers'
// interfaces (9, devicetags.go). Network names are
// unique when not empty: compute cells and instance addresses name a
// network, so a name must say which one. The ports read the API cell's
// instances, so the database also needs apidb's migrations.
var Migrations = []db.Migration{
	{Version: 1, Name: "networks and subnets", SQL: `
CREATE TABLE networks (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL DEFAULT '',
	project_id TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	shared INTEGER NOT NULL DEFAULT 0,
	admin_state_up INTEGER NOT NULL DEFAULT 1,
	mtu INTEGER NOT NULL DEFAULT 1500,
	revision_number {{bigint}} NOT NULL DEFAULT 1,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL
);
CREATE UNIQUE INDEX networks_name ON networks (name) WHERE name <> '';
CREATE TABLE subnets (
	id TEXT PRIMARY KEY,
	network_id TEXT NOT NULL REFERENCES networks (id),
	name TEXT NOT NULL DEFAULT '',
	project_id TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	ip_version INTEGER NOT NULL,
	cidr TEXT NOT NULL,
	gateway_ip TEXT NOT NULL DEFAULT '',
	allocation_pools TEXT NOT NULL DEFAULT '[]',
	dns_nameservers TEXT NOT NULL DEFAULT '[]',
	host_routes TEXT NOT NULL DEFAULT '[]',
	enable_dhcp INTEGER NOT NULL DEFAULT 1,
	revision_number {{bigint}} NOT NULL DEFAULT 1,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL
);
CREATE INDEX subnets_network ON subnets (network_id)`},
	{Version: 2, Name: "security groups and rules", SQL: `
CREATE TABLE security_groups (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL DEFAULT '',
	project_id TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	stateful INTEGER NOT NULL DEFAULT 1,
	is_default INTEGER NOT NULL DEFAULT 0,
	tags TEXT NOT NULL DEFAULT '[]',
	revision_number {{bigint}} NOT NULL DEFAULT 1,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL
);
CREATE INDEX security_groups_project ON security_groups (project_id);
CREATE UNIQUE INDEX security_groups_default ON security_groups (project_id) WHERE is_default = 1;
CREATE TABLE security_group_rules (
	id TEXT PRIMARY KEY,
	security_group_id TEXT NOT NULL REFERENCES security_groups (id),
	project_id TEXT NOT NULL,
	direction TEXT NOT NULL,
	ethertype TEXT NOT NULL,
	protocol TEXT,
	port_range_min INTEGER,
	port_range_max INTEGER,
	remote_ip_prefix TEXT,
	remote_group_id TEXT,
	description TEXT NOT NULL DEFAULT '',
	revision_number {{bigint}} NOT NULL DEFAULT 1,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL
);
CREATE INDEX security_group_rules_group ON security_group_rules (security_group_id);
CREATE INDEX security_group_rules_remote ON security_group_rules (remote_group_id)`},
	{Version: 3, Name: "servers' security groups", SQL: `
CREATE TABLE security_group_bindings (
	instance_uuid TEXT NOT NULL,
	security_group_id TEXT NOT NULL,
	PRIMARY KEY (instance_uuid, security_group_id)
);
CREATE INDEX security_group_bindings_group ON security_group_bindings (security_group_id)`},
	{Version: 4, Name: "address blocks", SQL: `
CREATE TABLE address_blocks (
	subnet_id TEXT NOT NULL REFERENCES subnets (id),
	first_int {{bigint}} NOT NULL,
	size INTEGER NOT NULL,
	holder TEXT NOT NULL,
	leased_at {{bigint}} NOT NULL,
	PRIMARY KEY (subnet_id, first_int)
);
CREATE INDEX address_blocks_holder ON address_blocks (holder)`},
	{Version: 5, Name: "networking quotas", SQL: `
CREATE TABLE network_quotas (
	project_id TEXT NOT NULL,
	resource TEXT NOT NULL,
	hard_limit {{bigint}} NOT NULL,
	PRIMARY KEY (project_id, resource)
)`},
	tagsMigration,
	{Version: 7, Name: "ports", SQL: `
CREATE TABLE ports (
	id TEXT PRIMARY KEY,
	network_id TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	project_id TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	mac_address TEXT NOT NULL,
	admin_state_up INTEGER NOT NULL DEFAULT 1,
	device_id TEXT NOT NULL DEFAULT '',
	device_owner TEXT NOT NULL DEFAULT '',
	port_security_enabled INTEGER NOT NULL DEFAULT 1,
	allowed_address_pairs TEXT NOT NULL DEFAULT '[]',
	binding_host_id TEXT NOT NULL DEFAULT '',
	binding_vnic_type TEXT NOT NULL DEFAULT 'normal',
	binding_profile TEXT NOT NULL DEFAULT '{}',
	tags TEXT NOT NULL DEFAULT '[]',
	made_by TEXT NOT NULL DEFAULT 'user',
	server_groups INTEGER NOT NULL DEFAULT 0,
	revision_number {{bigint}} NOT NULL DEFAULT 1,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL
);
CREATE INDEX ports_network ON ports (network_id, mac_address);
CREATE INDEX ports_device ON ports (device_id);
CREATE INDEX ports_project ON ports (project_id);
CREATE TABLE port_fixed_ips (
	network_id TEXT NOT NULL,
	ip_address TEXT NOT NULL,
	port_id TEXT NOT NULL,
	subnet_id TEXT NOT NULL DEFAULT '',
	ip_int {{bigint}} NOT NULL DEFAULT 0,
	reserved_in TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (network_id, ip_address)
);
CREATE INDEX port_fixed_ips_port ON port_fixed_ips (port_id);
CREATE INDEX port_fixed_ips_subnet ON port_fixed_ips (subnet_id, ip_int);
CREATE TABLE port_security_groups (
	port_id TEXT NOT NULL,
	security_group_id TEXT NOT NULL,
	PRIMARY KEY (port_id, security_group_id)
);
CREATE INDEX port_security_groups_group ON port_security_groups (security_group_id)`, Go: backfillPorts},
	sgCellsMigration,
	deviceTagsMigration,
}

// The kinds of failure; every error this package returns for a request that
// cannot succeed is an *Error that wraps one of them.
var (
	ErrNotFound = notfound.New("not found")
	ErrInUse    = errors.New("in use")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	// ErrUnavailable is a cell that had to answer and did not.
	ErrUnavailable = errors.New("unavailable")
	// ErrPrecondition is an If-Match revision constraint that the resource
	// no longer meets.
	ErrPrecondition = errors.New("precondition failed")
)

// Error is a request that cannot succeed. Code names the failure with the
// Networking API's fault type (e.g. "NetworkNotFound", "NetworkInUse",
// "OverlappingAllocationPools"); Message is the fault's text.
type Error struct {
	Kind    error
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrNotFound) and the like work.
func (e *Error) Unwrap() error { return e.Kind }

func fail(kind error, code, msg string) error { return &Error{Kind: kind, Code: code, Message: msg} }

// Network is a network as clients see it. Its status is always ACTIVE and it
// is never external (there are no routers).
type Network struct {
	ID             string
	Name           string
	ProjectID      string
	Description    string
	Shared         bool
	AdminStateUp   bool
	MTU            int
	RevisionNumber int64
	// Subnets are the ids of its subnets, oldest first.
	Subnets   []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// VisibleTo reports whether a caller of the project may see the network:
// admins see every network, others their own and shared ones.
func (n *Network) VisibleTo(projectID string, admin bool) bool {
	return admin || n.Shared || n.ProjectID == projectID
}

// Pool is an allocation pool: an inclusive range of addresses.
type Pool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// HostRoute is a static route a subnet's DHCP hands out.
type HostRoute struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

// Subnet is an IPv4 subnet of a network.
type Subnet struct {
	ID          string
	NetworkID   string
	Name        string
	ProjectID   string
	Description string
	IPVersion   int
	// CIDR is canonical (no host bits).
	CIDR string
	// GatewayIP is "" when the subnet has no gateway.
	GatewayIP       string
	AllocationPools []Pool
	DNSNameservers  []string
	HostRoutes      []HostRoute
	EnableDHCP      bool
	RevisionNumber  int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
