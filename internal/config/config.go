// Package config is the configuration of one cell process
// (`cellcloud serve --config FILE`): which cell it is, which roles it runs,
// its database and its broker. The file is JSON; unknown fields are errors.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/auditperiod"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
)

// Roles a process may run.
const (
	RoleAPI       = "api"
	RoleCells     = "cells"
	RoleScheduler = "scheduler"
	RoleNetwork   = "network"
	RoleCompute   = "compute"
	// RoleVolume is a compute cell's Block Storage service (the volume
	// manager and its backend); it runs in the process of the cell's
	// cells role, which hands it the volumes placed on the cell.
	RoleVolume = "volume"
)

// AllRoles lists every role.
var AllRoles = []string{RoleAPI, RoleCells, RoleScheduler, RoleNetwork, RoleCompute, RoleVolume}

// Duration is a time.Duration written as "10s" in JSON.
type Duration time.Duration

// UnmarshalJSON reads "10s" (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("duration %s must be a string like \"10s\"", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// MarshalJSON writes "10s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Config is one cell process.
type Config struct {
	// Cell is the cell's path, e.g. "api" or "api!cell1".
	Cell string `json:"cell"`
	// Roles the process runs. Default: api and cells for a root cell;
	// cells, scheduler, network, compute and volume for a compute cell.
	Roles []string `json:"roles,omitempty"`
	// DataDir holds the SQLite file and the embedded broker's store.
	DataDir string `json:"data_dir"`
	// InstanceUsageAuditPeriod is the period of the usage audit (Nova's
	// instance_usage_audit_period: hour, day, month or year, with an
	// optional @offset; default month). The API cell and the compute
	// cells must agree on it.
	InstanceUsageAuditPeriod string `json:"instance_usage_audit_period,omitempty"`
	// Host is the name of the machine the cell's controller services
	// (nova-conductor, nova-scheduler, nova-network) run on, as
	// os-services shows it (default: the machine's host name).
	Host string `json:"host,omitempty"`
	// Database is a PostgreSQL URL or a SQLite path; default
	// DATA_DIR/cell.db.
	Database string `json:"database,omitempty"`
	// DatabasePool sizes the process's pool of PostgreSQL connections
	// (a SQLite database keeps its own small pool).
	DatabasePool DatabasePool `json:"database_pool"`
	Broker       Broker       `json:"broker"`
	API          API          `json:"api"`
	Cells        Cells        `json:"cells"`
	Compute      Compute      `json:"compute"`
	// Scheduler tunes the host scheduler of a compute cell.
	Scheduler Scheduler `json:"scheduler"`
	Network   Network   `json:"network"`
	// Volume configures the volume role of a compute cell.
	Volume Volume `json:"volume"`
	// Housekeeping makes the process of the cell's cells role archive
	// (and purge) the cell database's deleted rows periodically, as
	// "cellcloud db archive" and "db purge" do (off by default).
	Housekeeping Housekeeping `json:"housekeeping"`
}

// Housekeeping is the periodic archive of a cell's deleted rows
// (docs/operations.md, Housekeeping).
type Housekeeping struct {
	// ArchiveInterval is how often the archive runs; zero (the default)
	// turns the periodic archive off.
	ArchiveInterval Duration `json:"archive_interval,omitempty"`
	// ArchiveOlderThan: rows deleted longer ago than this are archived
	// (default 720h, 30 days).
	ArchiveOlderThan Duration `json:"archive_older_than,omitempty"`
	// PurgeOlderThan, if set, purges after each archive the shadow rows
	// deleted longer ago than this (at least ArchiveOlderThan); zero
	// keeps them.
	PurgeOlderThan Duration `json:"purge_older_than,omitempty"`
	// MaxRows is the number of rows a batch (one transaction) takes
	// (1 to 10000, default 1000).
	MaxRows int `json:"max_rows,omitempty"`
	// TaskLog archives the usage audit's task log too, by age (Nova's
	// --task-log).
	TaskLog bool `json:"task_log,omitempty"`
}

func (h *Housekeeping) normalize() error {
	switch {
	case h.ArchiveInterval < 0:
		return fmt.Errorf("housekeeping.archive_interval %s must not be negative", h.ArchiveInterval.D())
	case h.ArchiveOlderThan < 0:
		return fmt.Errorf("housekeeping.archive_older_than %s must not be negative", h.ArchiveOlderThan.D())
	case h.PurgeOlderThan < 0:
		return fmt.Errorf("housekeeping.purge_older_than %s must not be negative", h.PurgeOlderThan.D())
	case h.MaxRows < 0 || h.MaxRows > 10000:
		return fmt.Errorf("housekeeping.max_rows %d must be 1 to 10000", h.MaxRows)
	}
	if h.ArchiveInterval == 0 && (h.PurgeOlderThan != 0 || h.ArchiveOlderThan != 0) {
		return errors.New("housekeeping.archive_older_than and purge_older_than need housekeeping.archive_interval (the periodic archive is off without it)")
	}
	// The default age is filled only when the periodic archive is on, so
	// that a normalized configuration normalizes again unchanged (a
	// written-out configuration is loaded again as it was).
	if h.ArchiveInterval != 0 && h.ArchiveOlderThan == 0 {
		h.ArchiveOlderThan = Duration(30 * 24 * time.Hour)
	}
	if h.PurgeOlderThan != 0 && h.PurgeOlderThan < h.ArchiveOlderThan {
		return fmt.Errorf("housekeeping.purge_older_than %s must be at least archive_older_than %s", h.PurgeOlderThan.D(), h.ArchiveOlderThan.D())
	}
	if h.MaxRows == 0 {
		h.MaxRows = 1000
	}
	return nil
}

// DatabasePool sizes a process's pool of PostgreSQL connections; zero
// fields take the defaults.
type DatabasePool struct {
	// MaxOpen bounds the connections open at once (default 8).
	MaxOpen int `json:"max_open,omitempty"`
	// MaxIdle bounds the connections kept open while idle (default
	// max_open; at most max_open).
	MaxIdle int `json:"max_idle,omitempty"`
	// MaxLifetime closes a connection this long after it opened (default
	// 0: never), so that connections move to a new server behind a
	// proxy or after a failover.
	MaxLifetime Duration `json:"max_lifetime,omitempty"`
}

// Volume configures a compute cell's volume role: its backend and the
// storage zone its volumes are in.
type Volume struct {
	// Backend is the storage backend: "file" (the default and the only
	// one today: a sparse raw file per volume; docs/volume-backends.md).
	Backend string `json:"backend,omitempty"`
	// Dir is the file backend's directory (default DATA_DIR/volumes).
	Dir string `json:"dir,omitempty"`
	// TotalGB, if above zero, is the space the backend may use; zero
	// means the filesystem's size.
	TotalGB int64 `json:"total_gb,omitempty"`
	// AvailabilityZone is the storage zone of the cell's volumes
	// (Cinder's storage_availability_zone; default "nova").
	AvailabilityZone string `json:"availability_zone,omitempty"`
	// MaxOverSubscriptionRatio bounds thin provisioning: the sizes of
	// the volumes and snapshots may add up to this many times the
	// backend's total (Cinder's max_over_subscription_ratio; default 20).
	MaxOverSubscriptionRatio float64 `json:"max_over_subscription_ratio,omitempty"`
}

// Broker is the cell's message broker: an external NATS by URL, or an
// embedded server listening on Listen (default 127.0.0.1 on a free port).
type Broker struct {
	// URL is an external broker, or the embedded broker of another
	// process of the same cell. A user and password in it
	// (nats://user:pass@host:port) are used.
	URL    string `json:"url,omitempty"`
	Listen string `json:"listen,omitempty"`
	// Credentials is the file of the embedded broker's users (the cell's
	// own and the one its neighbours use; default
	// DATA_DIR/broker-credentials.json, mode 0600). The process that runs
	// the embedded broker creates it when missing; a process of the cell
	// that reaches the broker by URL (without a user in it) reads it.
	Credentials string `json:"credentials,omitempty"`
	// CredsFile is a NATS credentials file (user JWT and nkey seed) for
	// an external broker at URL.
	CredsFile string `json:"creds_file,omitempty"`
	// TLSCert and TLSKey are the embedded broker's server certificate and
	// key: with them it takes only TLS connections. CA is the tree CA
	// that signed every broker's certificate: the process verifies its
	// own broker and its neighbours' against it (and connects only with
	// TLS). cellcloud cell cert makes all three.
	TLSCert string `json:"tls_cert,omitempty"`
	TLSKey  string `json:"tls_key,omitempty"`
	CA      string `json:"ca,omitempty"`
	// Prefix begins every subject and stream name of the tree on its
	// brokers (default DefaultBrokerPrefix), so that several trees may
	// share one NATS account. Every cell of a tree must have the same.
	Prefix string `json:"prefix,omitempty"`
	// Stream sets the JetStream stream of the cell's durable inbox.
	Stream BrokerStream `json:"stream"`
}

// DefaultBrokerPrefix is the subject prefix of a tree that names none:
// the one every tree had before the prefix could be set, so that its
// subjects and streams keep their names.
const DefaultBrokerPrefix = "cellcloud"

// BrokerStream is the storage of a cell's inbox stream on its broker.
type BrokerStream struct {
	// Replicas is how many servers of a NATS cluster hold the stream (1
	// to 5; default 1, the only one an embedded broker takes).
	Replicas int `json:"replicas,omitempty"`
	// Storage is "file" (the default) or "memory".
	Storage string `json:"storage,omitempty"`
	// MaxBytes and MaxMsgs bound the stream (zero: no bound). A full
	// stream refuses new messages, which then wait in the senders'
	// outboxes: nothing is dropped.
	MaxBytes int64 `json:"max_bytes,omitempty"`
	MaxMsgs  int64 `json:"max_msgs,omitempty"`
	// MaxAge, when set, drops messages older than this unapplied: only
	// for a tree that may lose messages a cell was down too long for.
	MaxAge Duration `json:"max_age,omitempty"`
}

// normalize fills the stream's defaults and validates it.
func (s *BrokerStream) normalize() error {
	if s.Replicas == 0 {
		s.Replicas = 1
	}
	if s.Replicas < 1 || s.Replicas > 5 {
		return fmt.Errorf("broker.stream.replicas %d: must be 1 to 5 (a NATS cluster holds at most 5 replicas)", s.Replicas)
	}
	switch s.Storage {
	case "":
		s.Storage = "file"
	case "file", "memory":
	default:
		return fmt.Errorf("broker.stream.storage %q: must be \"file\" or \"memory\"", s.Storage)
	}
	if s.MaxBytes < 0 {
		return errors.New("broker.stream.max_bytes must not be negative (0: no bound)")
	}
	if s.MaxMsgs < 0 {
		return errors.New("broker.stream.max_msgs must not be negative (0: no bound)")
	}
	if s.MaxAge < 0 {
		return errors.New("broker.stream.max_age must not be negative (0: no bound)")
	}
	if s.MaxAge > 0 && s.MaxAge.D() < time.Minute {
		return fmt.Errorf("broker.stream.max_age %s: at least 1m (it drops messages not yet applied)", s.MaxAge.D())
	}
	return nil
}

// DefaultAPIListen is where the public APIs listen unless told otherwise:
// loopback only, so that exposing them is a deliberate choice.
const DefaultAPIListen = "127.0.0.1:8774"

// API configures the api role.
type API struct {
	// Listen is the public APIs' address (default DefaultAPIListen).
	Listen string `json:"listen,omitempty"`
	// ReadTimeout bounds reading a whole request, body included (default
	// 60s); WriteTimeout bounds a request from the end of its headers to
	// the end of its response (default 120s); IdleTimeout is how long a
	// kept-alive connection may wait for its next request (default 60s).
	ReadTimeout  Duration `json:"read_timeout,omitempty"`
	WriteTimeout Duration `json:"write_timeout,omitempty"`
	IdleTimeout  Duration `json:"idle_timeout,omitempty"`
	// ImageDataTimeout replaces the read and write timeouts of an image
	// data upload or download (PUT and GET /image/v2/images/{id}/file),
	// once the caller may do it (default 1h).
	ImageDataTimeout Duration `json:"image_data_timeout,omitempty"`
	// ImageStorageQuota is the bytes of image data one project's images
	// may hold together, as Glance's user_storage_quota (default 0: no
	// quota, Glance's default). ImageCountQuota is how many images one
	// project may own, as Glance's image_count_total limit (default 0: no
	// quota).
	ImageStorageQuota int64 `json:"image_storage_quota,omitempty"`
	ImageCountQuota   int64 `json:"image_count_quota,omitempty"`
	// ReclaimInstanceInterval is Nova's reclaim_instance_interval: above
	// zero, deleting a server that has run soft-deletes it (restore brings
	// it back, forceDelete deletes it at once), and it is deleted for good
	// once this long has passed (default 0: deletes are final).
	ReclaimInstanceInterval Duration `json:"reclaim_instance_interval,omitempty"`
	// DefaultAvailabilityZone is Nova's default_availability_zone: the
	// zone of the compute hosts in no aggregate that has one (default
	// "nova"). The API cell sends it to the cells with their aggregates.
	DefaultAvailabilityZone string `json:"default_availability_zone,omitempty"`
	// MaxConnectionsPerClient caps the connections open at once from one
	// client IP address; more are closed as they arrive (default 256; -1
	// is unlimited).
	MaxConnectionsPerClient int `json:"max_connections_per_client,omitempty"`
	// Auth is how callers are authenticated: "local" (the default: the API
	// cell's own Identity v3), "keystone" (tokens validated by the external
	// Keystone at KeystoneURL), or "noauth" (development only).
	Auth        string `json:"auth,omitempty"`
	KeystoneURL string `json:"keystone_url,omitempty"`
	// TokenTTL is how long a local token lives (default 1h).
	TokenTTL Duration `json:"token_ttl,omitempty"`
	// TokenCacheTTL is how long a validated token is remembered (default
	// 10s for local tokens, 30s for Keystone's; a local revocation is seen
	// at once).
	TokenCacheTTL Duration `json:"token_cache_ttl,omitempty"`
	// PolicyFile overrides policy rules (YAML or JSON, as policy.yaml).
	PolicyFile string `json:"policy_file,omitempty"`
	// Region names the region in the service catalog (default RegionOne).
	Region string `json:"region,omitempty"`
	// AdminPassword, when set, makes sure the local identity has the user
	// admin (role admin on project admin) with this password. It is never
	// read from the file (serve takes it from CELLCLOUD_ADMIN_PASSWORD).
	AdminPassword string `json:"-"`
	// Quota is the default quota of every project (nova.conf [quota]);
	// zero fields take Nova's defaults, -1 is unlimited.
	Quota quota.Defaults `json:"quota"`
	// NetworkQuota is the Networking API's default quota of every project
	// (neutron.conf [QUOTAS] quota_<resource>), by Neutron's resource
	// names: network, subnet, port, router, floatingip, security_group,
	// security_group_rule, rbac_policy, subnetpool. A resource not given
	// takes Neutron's default; -1 is unlimited, 0 allows none.
	NetworkQuota quota.NetworkDefaults `json:"network_quota,omitempty"`
	// PasswordProtection: lockout, rate limit and hashing bound (password.go).
	PasswordProtection
}

// The authentication modes of the api role.
const (
	AuthLocal    = "local"
	AuthKeystone = "keystone"
	AuthNoAuth   = "noauth"
)

// Cells configures the cells role.
type Cells struct {
	ReportInterval   Duration `json:"report_interval,omitempty"`
	RefreshInterval  Duration `json:"refresh_interval,omitempty"`
	MuteAfter        Duration `json:"mute_after,omitempty"`
	HealInterval     Duration `json:"heal_interval,omitempty"`
	HealWindow       Duration `json:"heal_window,omitempty"`
	MaxBuildAttempts int      `json:"max_build_attempts,omitempty"`
	// DownAfter is how long a child cell may go without a capacity report
	// before it counts as down: builds go elsewhere and the operator APIs
	// name it as missing (default three report intervals, at least 3s).
	DownAfter Duration `json:"down_after,omitempty"`
	// BuildAcceptTimeout is how long a build sent to a child cell may wait
	// while the child cannot be reached before it is placed elsewhere
	// (default 20s).
	BuildAcceptTimeout Duration `json:"build_accept_timeout,omitempty"`
	// UnreachableAfter is how long a child's inbox stream may refuse
	// publishes, or a cell's own inbox be unreadable, before the cell
	// counts as unable to receive (default 15s: longer than a NATS
	// cluster's stream leader election).
	UnreachableAfter Duration `json:"unreachable_after,omitempty"`
	// InboxAckWait is how long this cell's broker waits for the cells
	// service to acknowledge a durable message it delivered before it
	// delivers it again (default 60s): how long a message waits when the
	// process that took it hangs without dying. A restarted process gets
	// what its predecessor had taken at once, whatever this says.
	InboxAckWait Duration `json:"inbox_ack_wait,omitempty"`
	// ServiceDownTime is how long a service may go without a heartbeat
	// and still be up (Nova's service_down_time; default 60s).
	ServiceDownTime Duration `json:"service_down_time,omitempty"`
	// CallTimeout is how long a call to another cell (a console log, a
	// hypervisor, os-hosts) or a gather waits for its answers (default 10s).
	CallTimeout Duration `json:"call_timeout,omitempty"`
	// SGFlushInterval is how often the API cell sends the security groups'
	// member changes to the cells that hold the groups (default 200ms).
	SGFlushInterval Duration `json:"sg_flush_interval,omitempty"`
	// FaultInjection is for fault testing only, never for production: the
	// relay duplicates, delays and reorders the messages it sends.
	FaultInjection *FaultInjection `json:"fault_injection,omitempty"`
}

// FaultInjection makes a cell's relay misbehave on purpose (for the fault
// suite in test/integration only): each relayed message is published twice
// with probability Duplicate, each batch is shuffled with probability
// Reorder and held back up to MaxDelay with probability Delay.
type FaultInjection struct {
	Duplicate float64  `json:"duplicate,omitempty"`
	Reorder   float64  `json:"reorder,omitempty"`
	Delay     float64  `json:"delay,omitempty"`
	MaxDelay  Duration `json:"max_delay,omitempty"`
	Seed      uint64   `json:"seed,omitempty"`
}

// Compute configures the compute role and its fake driver.
type Compute struct {
	Hosts        int      `json:"hosts,omitempty"`
	HostPrefix   string   `json:"host_prefix,omitempty"`
	Host         HostSpec `json:"host"`
	SpawnLatency Duration `json:"spawn_latency,omitempty"`
	// OpLatency is how long each fake lifecycle operation takes (power_off,
	// power_on, reboot, pause, unpause, suspend, resume, rescue, unrescue,
	// rebuild, snapshot, shelve); one not named takes no time.
	OpLatency map[string]Duration `json:"op_latency,omitempty"`
	FailRate  float64             `json:"fail_rate,omitempty"`
	FailHosts []string            `json:"fail_hosts,omitempty"`
	// InstanceUsageAudit runs the periodic usage audit of each host
	// (default true), every UsageAuditInterval (default 60s).
	InstanceUsageAudit *bool    `json:"instance_usage_audit,omitempty"`
	UsageAuditInterval Duration `json:"usage_audit_interval,omitempty"`
	// ShelvedOffloadTime is Nova's shelved_offload_time: how long a
	// shelved server keeps its host before it is offloaded. 0 (the
	// default) offloads at once; a negative value (-1) never (the
	// shelveOffload action still does); a positive one offloads the
	// servers SHELVED that long, looked for every ShelvedPollInterval
	// (Nova's shelved_poll_interval, default 1h). Read by the process
	// that runs the compute cell's cells role.
	ShelvedOffloadTime  Duration `json:"shelved_offload_time,omitempty"`
	ShelvedPollInterval Duration `json:"shelved_poll_interval,omitempty"`
	// FirewallPollInterval is how often the compute process reads the
	// cell's generations of security groups to enforce their changes
	// (default 1s; a change made in the same process wakes it at once).
	FirewallPollInterval Duration `json:"firewall_poll_interval,omitempty"`
}

// HostSpec is the size of each fake host of the compute role; zero fields
// take the compute role's defaults.
type HostSpec struct {
	VCPUs     int     `json:"vcpus"`
	RAMMB     int64   `json:"ram_mb"`
	DiskGB    int64   `json:"disk_gb"`
	CPURatio  float64 `json:"cpu_allocation_ratio"`
	RAMRatio  float64 `json:"ram_allocation_ratio"`
	DiskRatio float64 `json:"disk_allocation_ratio"`
	// AvailabilityZone is accepted and ignored (see Warnings): a host's
	// zone comes from its host aggregates.
	AvailabilityZone string `json:"availability_zone"`
}

// Scheduler tunes the host scheduler.
type Scheduler struct {
	// RAMWeightMultiplier weighs hosts by free RAM: positive spreads
	// instances (the default, 1.0), negative stacks them, 0 ignores RAM.
	RAMWeightMultiplier *float64 `json:"ram_weight_multiplier,omitempty"`
	// HostDownAfter is how old a host's heartbeat may be before the host
	// counts as down (default 60s).
	HostDownAfter Duration `json:"host_down_after,omitempty"`
}

// Network configures the network role.
type Network struct {
	// Name is the cell's default network, the one a server booted without
	// networks is on (default "private"). The cell leases blocks of its
	// addresses from the API cell as it needs them.
	Name string `json:"name,omitempty"`
	// CIDR was the cell's fixed share of the default network. It is
	// accepted and ignored: the cells lease address blocks from the API
	// cell instead (see Warnings).
	CIDR string `json:"cidr,omitempty"`
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
			return nil, fmt.Errorf("config %s: line %d: %w", path, line, err)
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("config %s: trailing data after the JSON object", path)
	}
	if c.DataDir != "" && !filepath.IsAbs(c.DataDir) {
		c.DataDir = filepath.Join(filepath.Dir(path), c.DataDir)
	}
	for _, f := range []*string{&c.Broker.Credentials, &c.Broker.CredsFile, &c.Broker.TLSCert, &c.Broker.TLSKey, &c.Broker.CA} {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(filepath.Dir(path), *f)
		}
	}
	if err := c.Normalize(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

// IsRoot reports whether the cell is an API (root) cell.
func (c *Config) IsRoot() bool { return cellpath.Parent(c.Cell) == "" }

// Has reports whether the process runs role.
func (c *Config) Has(role string) bool { return slices.Contains(c.Roles, role) }

// Normalize fills defaults and validates.
func (c *Config) Normalize() error {
	if err := cellpath.Validate(c.Cell); err != nil {
		return fmt.Errorf("cell: %w", err)
	}
	if c.DataDir == "" {
		return errors.New("data_dir is required")
	}
	if len(c.Roles) == 0 {
		if c.IsRoot() {
			c.Roles = []string{RoleAPI, RoleCells}
		} else {
			c.Roles = []string{RoleCells, RoleScheduler, RoleNetwork, RoleCompute, RoleVolume}
		}
	}
	for _, r := range c.Roles {
		if !slices.Contains(AllRoles, r) {
			return fmt.Errorf("unknown role %q (roles are %s)", r, strings.Join(AllRoles, ", "))
		}
		if r == RoleAPI && !c.IsRoot() {
			return fmt.Errorf("role api runs only in a root (API) cell, not in %q", c.Cell)
		}
		if r == RoleVolume && !c.Has(RoleCells) {
			return errors.New("role volume runs in the process of the cell's cells role")
		}
		if (r == RoleScheduler || r == RoleNetwork || r == RoleCompute || r == RoleVolume) && c.IsRoot() {
			return fmt.Errorf("role %s runs only in a compute cell, not in the API cell %q", r, c.Cell)
		}
	}
	if c.Database == "" {
		c.Database = filepath.Join(c.DataDir, "cell.db")
	}
	if err := c.Housekeeping.normalize(); err != nil {
		return err
	}
	if p := c.DatabasePool; p.MaxOpen < 0 || p.MaxOpen > 1000 {
		return fmt.Errorf("database_pool.max_open %d must be between 1 and 1000 (0: the default)", p.MaxOpen)
	}
	if p := c.DatabasePool; p.MaxIdle < 0 || (p.MaxOpen > 0 && p.MaxIdle > p.MaxOpen) {
		return fmt.Errorf("database_pool.max_idle %d must be between 1 and max_open %d (0: max_open)", p.MaxIdle, p.MaxOpen)
	}
	if c.DatabasePool.MaxLifetime < 0 {
		return fmt.Errorf("database_pool.max_lifetime %s must not be negative", c.DatabasePool.MaxLifetime.D())
	}
	if c.Host == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		c.Host = h
	}
	if c.InstanceUsageAuditPeriod == "" {
		c.InstanceUsageAuditPeriod = auditperiod.Default
	}
	if err := auditperiod.Validate(c.InstanceUsageAuditPeriod); err != nil {
		return fmt.Errorf("instance_usage_audit_period: %w", err)
	}
	if c.Compute.InstanceUsageAudit == nil {
		yes := true
		c.Compute.InstanceUsageAudit = &yes
	}
	if c.Cells.DownAfter < 0 {
		return errors.New("cells.down_after must not be negative")
	}
	if c.Cells.DownAfter == 0 {
		ri := c.Cells.ReportInterval.D()
		if ri <= 0 {
			ri = 10 * time.Second
		}
		c.Cells.DownAfter = Duration(max(3*ri, 3*time.Second))
	}
	if c.Cells.UnreachableAfter < 0 {
		return errors.New("cells.unreachable_after must not be negative")
	}
	if c.Cells.InboxAckWait < 0 || (c.Cells.InboxAckWait > 0 && c.Cells.InboxAckWait < Duration(time.Second)) {
		return errors.New("cells.inbox_ack_wait must be at least 1s (or unset: 60s)")
	}
	if c.Cells.BuildAcceptTimeout < 0 {
		return errors.New("cells.build_accept_timeout must not be negative")
	}
	if c.Cells.BuildAcceptTimeout == 0 {
		c.Cells.BuildAcceptTimeout = Duration(20 * time.Second)
	}
	if c.Cells.CallTimeout < 0 {
		return errors.New("cells.call_timeout must not be negative")
	}
	if c.Cells.CallTimeout == 0 {
		c.Cells.CallTimeout = Duration(10 * time.Second)
	}
	if c.Cells.SGFlushInterval < 0 {
		return errors.New("cells.sg_flush_interval must not be negative")
	}
	if c.Cells.SGFlushInterval == 0 {
		c.Cells.SGFlushInterval = Duration(200 * time.Millisecond)
	}
	if c.Cells.ServiceDownTime < 0 {
		return errors.New("cells.service_down_time must not be negative")
	}
	if c.Cells.ServiceDownTime == 0 {
		c.Cells.ServiceDownTime = Duration(60 * time.Second)
	}
	if c.Broker.URL != "" && c.Broker.Listen != "" {
		return errors.New("broker: give either url (external) or listen (embedded), not both")
	}
	if c.Broker.URL != "" && !strings.HasPrefix(c.Broker.URL, "nats://") && !strings.HasPrefix(c.Broker.URL, "tls://") {
		return fmt.Errorf("broker url %q must start with nats://", c.Broker.URL)
	}
	if c.Broker.CredsFile != "" && c.Broker.URL == "" {
		return errors.New("broker.creds_file is for an external broker: it needs broker.url")
	}
	if (c.Broker.TLSCert == "") != (c.Broker.TLSKey == "") {
		return errors.New("broker: give both tls_cert and tls_key, or neither")
	}
	if c.Broker.TLSCert != "" && c.Broker.CA == "" {
		return errors.New("broker.tls_cert needs broker.ca (the tree CA that signed it), which the cell's processes verify it against")
	}
	if c.Broker.TLSCert != "" && c.Broker.URL != "" {
		return errors.New("broker.tls_cert and tls_key are the embedded broker's: not with broker.url")
	}
	if c.Broker.Credentials == "" {
		c.Broker.Credentials = filepath.Join(c.DataDir, "broker-credentials.json")
	}
	if c.Broker.Prefix == "" {
		c.Broker.Prefix = DefaultBrokerPrefix
	}
	if err := cellpath.ValidPrefix(c.Broker.Prefix); err != nil {
		return fmt.Errorf("broker.prefix: %w", err)
	}
	if err := c.Broker.Stream.normalize(); err != nil {
		return err
	}
	if c.Broker.Stream.Replicas > 1 && c.Broker.URL == "" {
		return fmt.Errorf("broker.stream.replicas %d needs a NATS cluster (broker.url): the embedded broker is one server", c.Broker.Stream.Replicas)
	}
	if c.API.Listen == "" {
		c.API.Listen = DefaultAPIListen
	}
	if err := c.API.normalize(); err != nil {
		return err
	}
	if err := c.Volume.normalize(c.DataDir); err != nil {
		return err
	}
	if c.Compute.Hosts < 0 {
		return fmt.Errorf("compute.hosts %d must not be negative", c.Compute.Hosts)
	}
	if c.Has(RoleCompute) && c.Compute.Hosts == 0 {
		c.Compute.Hosts = 4
	}
	if c.Compute.HostPrefix == "" {
		c.Compute.HostPrefix = c.Cell[strings.LastIndex(c.Cell, cellpath.Sep)+1:] + "-host"
	}
	for op, d := range c.Compute.OpLatency {
		if d < 0 {
			return fmt.Errorf("compute.op_latency of %s: %v must not be negative", op, d.D())
		}
	}
	if c.Compute.FailRate < 0 || c.Compute.FailRate > 1 {
		return fmt.Errorf("compute.fail_rate %v must be between 0 and 1", c.Compute.FailRate)
	}
	if c.Network.Name == "" {
		c.Network.Name = "private"
	}
	return nil
}

// HostNames are the compute hosts this process runs.
func (c *Config) HostNames() []string {
	out := make([]string, c.Compute.Hosts)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", c.Compute.HostPrefix, i+1)
	}
	return out
}

func (a *API) normalize() error {
	switch a.Auth {
	case "":
		a.Auth = AuthLocal
	case AuthLocal, AuthNoAuth:
	case AuthKeystone:
		if a.KeystoneURL == "" {
			return errors.New("api.auth keystone needs api.keystone_url (the Keystone v3 endpoint)")
		}
	default:
		return fmt.Errorf("api.auth %q is not one of local, keystone, noauth", a.Auth)
	}
	if a.KeystoneURL != "" && a.Auth != AuthKeystone {
		return fmt.Errorf("api.keystone_url is set but api.auth is %q, not keystone", a.Auth)
	}
	if a.ReadTimeout < 0 || a.WriteTimeout < 0 || a.IdleTimeout < 0 || a.ImageDataTimeout < 0 {
		return errors.New("api.read_timeout, api.write_timeout, api.idle_timeout and api.image_data_timeout must not be negative")
	}
	if a.DefaultAvailabilityZone == "" {
		a.DefaultAvailabilityZone = "nova"
	} else if strings.Contains(a.DefaultAvailabilityZone, ":") || len(a.DefaultAvailabilityZone) > 255 {
		return fmt.Errorf("api.default_availability_zone %q: a zone name has no ':' and at most 255 characters", a.DefaultAvailabilityZone)
	}
	if a.ReclaimInstanceInterval < 0 {
		return errors.New("api.reclaim_instance_interval must not be negative (0 is no soft delete)")
	}
	if a.ImageStorageQuota < 0 || a.ImageCountQuota < 0 {
		return errors.New("api.image_storage_quota and api.image_count_quota must not be negative (0 is no quota)")
	}
	a.ReadTimeout = orDefault(a.ReadTimeout, 60*time.Second)
	a.WriteTimeout = orDefault(a.WriteTimeout, 120*time.Second)
	a.IdleTimeout = orDefault(a.IdleTimeout, 60*time.Second)
	a.ImageDataTimeout = orDefault(a.ImageDataTimeout, time.Hour)
	switch {
	case a.MaxConnectionsPerClient == 0:
		a.MaxConnectionsPerClient = DefaultMaxConnectionsPerClient
	case a.MaxConnectionsPerClient < -1:
		return fmt.Errorf("api.max_connections_per_client %d must be positive, or -1 for unlimited", a.MaxConnectionsPerClient)
	}
	if a.TokenTTL < 0 || a.TokenCacheTTL < 0 {
		return errors.New("api.token_ttl and api.token_cache_ttl must not be negative")
	}
	if a.TokenTTL == 0 {
		a.TokenTTL = Duration(time.Hour)
	}
	if a.TokenCacheTTL == 0 {
		a.TokenCacheTTL = Duration(10 * time.Second)
		if a.Auth == AuthKeystone {
			a.TokenCacheTTL = Duration(30 * time.Second)
		}
	}
	if a.Region == "" {
		a.Region = "RegionOne"
	}
	if err := a.PasswordProtection.normalize(); err != nil {
		return err
	}
	if err := a.NetworkQuota.Validate(); err != nil {
		return fmt.Errorf("api.network_quota: %w", err)
	}
	a.NetworkQuota = a.NetworkQuota.WithNeutronDefaults()
	a.Quota = a.Quota.WithNovaDefaults()
	return a.Quota.Validate()
}

// DefaultMaxConnectionsPerClient is api.max_connections_per_client's
// default: room for a benchmark's or a busy tool's clients, not for a
// flood of idle connections from one address.
const DefaultMaxConnectionsPerClient = 256

func orDefault(d Duration, def time.Duration) Duration {
	if d == 0 {
		return Duration(def)
	}
	return d
}

// Warnings are what the configuration asks for that is accepted but has no
// effect; the node logs them at start.
func (c *Config) Warnings() []string {
	var out []string
	if c.Network.CIDR != "" {
		out = append(out, fmt.Sprintf("network.cidr %q is ignored: the cells lease address blocks of network %q from the API cell as they need them", c.Network.CIDR, c.Network.Name))
	}
	if z := c.Compute.Host.AvailabilityZone; z != "" {
		out = append(out, fmt.Sprintf("compute.host.availability_zone %q is ignored: a host's zone is its host aggregate's (os-aggregates), or api.default_availability_zone", z))
	}
	return out
}

func (v *Volume) normalize(dataDir string) error {
	switch v.Backend {
	case "":
		v.Backend = "file"
	case "file":
	default:
		return fmt.Errorf("volume.backend %q is not a backend (the one backend is file)", v.Backend)
	}
	if v.Dir == "" {
		v.Dir = filepath.Join(dataDir, "volumes")
	}
	if v.TotalGB < 0 {
		return fmt.Errorf("volume.total_gb %d must not be negative", v.TotalGB)
	}
	if v.AvailabilityZone == "" {
		v.AvailabilityZone = "nova"
	}
	if v.MaxOverSubscriptionRatio < 0 || (v.MaxOverSubscriptionRatio > 0 && v.MaxOverSubscriptionRatio < 1) {
		return fmt.Errorf("volume.max_over_subscription_ratio %v must be at least 1", v.MaxOverSubscriptionRatio)
	}
	if v.MaxOverSubscriptionRatio == 0 {
		v.MaxOverSubscriptionRatio = 20
	}
	return nil
}
