// Package bench measures cellcloud the way its users meet it: it boots
// instances through the real Compute API with concurrent clients, waits
// until the API shows them ACTIVE, lists them, deletes them, and reads
// what the control plane spent doing it (broker messages, database
// transactions, CPU, memory). It starts a tree of its own in this process,
// or drives a running deployment by URL.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/node"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/up"
)

// Options are a benchmark run.
type Options struct {
	// Cells and HostsPerCell size the tree the bench starts (when URL is
	// empty); Host is each fake host's size.
	Cells, HostsPerCell int
	Host                compute.HostSpec
	// Depth is the tree's number of levels (see up.Options.Depth).
	Depth int
	// N instances are booted by K concurrent clients, Batch per create
	// request (1: single creates; more: multi-creates with max_count).
	N, K, Batch int
	// URL and Token drive a running deployment's Compute API instead
	// (Token sent as X-Auth-Token; it must be an administrator's).
	URL, Token string
	// DataDir holds the bench's own tree (default: a temporary directory,
	// removed afterwards).
	DataDir string
	// Progress receives a line a second while the bench runs.
	Progress io.Writer
	Logger   *slog.Logger
	// BeforeBoot and AfterBoot, when set, run just before the first create
	// and once every instance is booted, before the list and delete phases
	// (to profile the boot phase alone, or take a heap profile at the
	// largest size).
	BeforeBoot, AfterBoot func()
	// RemoteGroup boots every instance in a security group of the bench's
	// own, "bench-remote", whose rule lets in TCP 22 from the group's own
	// members: a remote-group rule whose member set changes with every
	// boot, in every cell (the project's default group has such rules
	// too; this names one explicitly). The group is made through the
	// Networking API beside the Compute API (its URL with /v2.1 replaced
	// by /networking).
	RemoteGroup bool
	// Aggregates spreads every compute host over that many host
	// aggregates (host i in aggregate i mod Aggregates), the first Zones
	// of them with an availability zone each (bench-az0, ...), the others
	// with a property; with Zones, the boots ask for the zones in turn.
	// The aggregates are made through os-aggregates, before the boots,
	// and reach the cells as they would in production.
	Aggregates, Zones int
	// BootFromVolume boots every instance from a new 1-GiB volume made
	// from the image (block_device_mapping_v2 image → volume, boot_index
	// 0, delete_on_termination), in the cell that builds it; the volume
	// quotas of the bench's project are lifted first (Block Storage API
	// beside the Compute API: its URL with /v2.1 replaced by /volume).
	BootFromVolume bool
	// Postgres, when set, is a PostgreSQL URL: every cell of the bench's
	// own tree keeps its database in a fresh schema of that database,
	// made before the run and dropped after it. DatabasePool sizes each
	// cell's pool of connections.
	Postgres     string
	DatabasePool config.DatabasePool
}

// Validate refuses nonsense at once.
func (o *Options) Validate() error {
	switch {
	case o.N <= 0:
		return fmt.Errorf("-n %d: the number of instances must be positive", o.N)
	case o.K <= 0:
		return fmt.Errorf("-k %d: the number of concurrent clients must be positive", o.K)
	case o.Batch <= 0 || o.Batch > 1000:
		return fmt.Errorf("--batch %d must be between 1 and 1000", o.Batch)
	case o.URL == "" && (o.Cells <= 0 || o.Cells > 250):
		return fmt.Errorf("--cells %d must be between 1 and 250", o.Cells)
	case o.URL == "" && (o.HostsPerCell <= 0 || o.HostsPerCell > 100000):
		return fmt.Errorf("--hosts-per-cell %d must be between 1 and 100000", o.HostsPerCell)
	case o.URL == "" && o.Depth != 0 && o.Depth != 2 && o.Depth != 3:
		return fmt.Errorf("--depth %d: 2 (compute cells below the API cell) or 3 (below routing cells) are built", o.Depth)
	case o.URL != "" && o.Postgres != "":
		return errors.New("--postgres puts the bench's own tree on PostgreSQL; a deployment given by --url has its own databases")
	case o.Postgres != "" && !strings.HasPrefix(o.Postgres, "postgres://") && !strings.HasPrefix(o.Postgres, "postgresql://"):
		return fmt.Errorf("--postgres %q: want a postgres:// URL", db.Redact(o.Postgres))
	case o.URL != "" && o.Token == "":
		return errors.New("--url needs --token (an administrator's token)")
	case o.Aggregates < 0 || o.Zones < 0 || o.Zones > o.Aggregates:
		return fmt.Errorf("--aggregates %d --zones %d: zones are some of the aggregates", o.Aggregates, o.Zones)
	case o.URL == "" && o.N > o.Fits():
		return fmt.Errorf("-n %d: %d cells of %d hosts (%d vCPUs, %d MB, %d GB each) hold only %d m1.tiny instances; give bigger hosts (--host-vcpus, --host-ram-mb, --host-disk-gb) or more",
			o.N, o.Cells, o.HostsPerCell, o.Host.VCPUs, o.Host.RAMMB, o.Host.DiskGB, o.Fits())
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Fits is how many instances of the bench's flavor (m1.tiny: 1 vCPU,
// 512 MB, 1 GB) the bench's own tree holds.
func (o *Options) Fits() int {
	h, def := o.Host, compute.DefaultSpec() // the compute role's defaults for what is unset
	pick := func(v, d float64) float64 {
		if v <= 0 {
			return d
		}
		return v
	}
	vcpus := pick(float64(h.VCPUs), float64(def.VCPUs)) * pick(h.CPURatio, def.CPURatio)
	ram := pick(float64(h.RAMMB), float64(def.RAMMB)) * pick(h.RAMRatio, def.RAMRatio) / 512
	disk := pick(float64(h.DiskGB), float64(def.DiskGB)) * pick(h.DiskRatio, def.DiskRatio)
	return o.Cells * o.HostsPerCell * int(min(vcpus, ram, disk))
}

// Percentiles of a latency, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return float64(s[max(i, 0)]) / float64(time.Millisecond)
	}
	return Percentiles{P50: at(0.50), P99: at(0.99), Max: at(1)}
}

// CellCost is what one cell spent during the boot phase.
type CellCost struct {
	Cell            string  `json:"cell"`
	Transactions    int64   `json:"transactions"`
	TxPerBoot       float64 `json:"transactions_per_boot"`
	Statements      int64   `json:"statements"`
	StmtPerBoot     float64 `json:"statements_per_boot"`
	RoundTrips      int64   `json:"round_trips"`
	TripsPerBoot    float64 `json:"round_trips_per_boot"`
	Envelopes       int64   `json:"envelopes"`
	BrokerMessages  int64   `json:"broker_messages"`
	MessagesPerBoot float64 `json:"broker_messages_per_boot"`
}

// Result is a run's figures.
type Result struct {
	Options struct {
		Cells, HostsPerCell, N, K, Batch int
		URL                              string `json:",omitempty"`
		RemoteGroup                      bool   `json:",omitempty"`
		Aggregates                       int    `json:",omitempty"`
		Zones                            int    `json:",omitempty"`
		BootFromVolume                   bool   `json:",omitempty"`
		Database                         string `json:"database"`
		// Schemas prefixes the schemas of Options.Postgres, dropped
		// after the run.
		Schemas string `json:"postgres_schemas,omitempty"`
	} `json:"options"`
	// VolumeBytesPerBoot is what a boot from volume copies into its
	// volume: the image's size (its bytes, the rest of the volume a hole).
	VolumeBytesPerBoot int64  `json:"volume_bytes_per_boot,omitempty"`
	Machine            string `json:"machine"`
	// Booted instances became ACTIVE; Errors went to ERROR or were refused.
	Booted int `json:"booted"`
	Errors int `json:"errors"`
	// BootSeconds is from the first create to the moment the API showed
	// no instance building.
	BootSeconds   float64     `json:"boot_seconds"`
	BootsPerSec   float64     `json:"boots_per_second"`
	CreateLatency Percentiles `json:"create_latency"`
	// ActiveLatency is from a create request to its instance's launch,
	// as the instance's launched_at says.
	ActiveLatency Percentiles `json:"time_to_active"`
	// ListLatency is GET /servers/detail?limit=1000 at the final size.
	ListLatency   Percentiles `json:"list_detail_latency"`
	DeleteSeconds float64     `json:"delete_seconds"`
	DeletesPerSec float64     `json:"deletes_per_second"`
	// EnvelopesPerBoot are the cells' protocol messages (durable and
	// calls) per instance booted; BrokerMessagesPerBoot everything the
	// brokers received, JetStream's acknowledgements and API included.
	EnvelopesPerBoot      float64 `json:"envelopes_per_boot"`
	BrokerMessagesPerBoot float64 `json:"broker_messages_per_boot"`
	StatementsPerBoot     float64 `json:"statements_per_boot"`
	// RoundTripsPerBoot are the exchanges with the databases per boot:
	// statements, begins, commits, rollbacks and savepoints.
	RoundTripsPerBoot float64    `json:"round_trips_per_boot"`
	Cells             []CellCost `json:"cells,omitempty"`
	// CPUSeconds and PeakRSSMB are this process's (the control plane and
	// the bench's clients, when the bench runs its own tree).
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	// BootCPUSeconds is the CPU the process spent in the boot phase, and
	// CPUMsPerBoot the same per instance booted: steadier than boots per
	// second on a machine shared with others.
	BootCPUSeconds float64 `json:"boot_cpu_seconds"`
	CPUMsPerBoot   float64 `json:"cpu_ms_per_boot"`
	// MachineBootCPUSeconds is the CPU every process on the machine spent
	// in the boot phase (a database server's, other deployments'
	// processes' and whatever else runs there too; from /proc/stat, zero
	// where there is none), and MachineCPUMsPerBoot the same per instance
	// booted: on a machine the run keeps busy, boots per second is cores
	// over this.
	MachineBootCPUSeconds float64  `json:"machine_boot_cpu_seconds,omitempty"`
	MachineCPUMsPerBoot   float64  `json:"machine_cpu_ms_per_boot,omitempty"`
	Targets               []Target `json:"targets"`
}

// Target is one of issue 6's targets, and whether the run met it.
type Target struct {
	Name  string  `json:"name"`
	Want  string  `json:"want"`
	Value float64 `json:"value"`
	Met   bool    `json:"met"`
}

// Run runs the benchmark.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	res := &Result{Machine: machine()}
	res.Options.Cells, res.Options.HostsPerCell, res.Options.N, res.Options.K, res.Options.Batch, res.Options.URL =
		o.Cells, o.HostsPerCell, o.N, o.K, o.Batch, o.URL
	res.Options.RemoteGroup = o.RemoteGroup
	res.Options.Aggregates, res.Options.Zones = o.Aggregates, o.Zones
	res.Options.BootFromVolume = o.BootFromVolume
	res.Options.Database = "sqlite"
	if o.Postgres != "" {
		res.Options.Database = "postgres"
	}

	var tree *up.Tree
	api, token := strings.TrimSuffix(o.URL, "/"), o.Token
	if api == "" {
		dir := o.DataDir
		if dir == "" {
			d, err := os.MkdirTemp("", "cellcloud-bench-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(d)
			dir = d
		}
		fmt.Fprintf(o.Progress, "starting a tree: %d cells x %d hosts in %s\n", o.Cells, o.HostsPerCell, dir)
		uo := up.Options{DataDir: dir, Cells: o.Cells, HostsPerCell: o.HostsPerCell, Depth: o.Depth, Listen: "127.0.0.1:0",
			Host: config.HostSpec(o.Host), Auth: "noauth", Quota: quota.Defaults{Instances: quota.Unlimited, Cores: quota.Unlimited, RAM: quota.Unlimited},
			DatabasePool: o.DatabasePool}
		if o.Postgres != "" {
			schemas, err := newSchemas(ctx, o.Postgres)
			if err != nil {
				return nil, err
			}
			// Dropped after the tree has shut down (deferred first, run last).
			defer schemas.drop()
			uo.Database = schemas.dsn
			res.Options.Schemas = schemas.prefix
			fmt.Fprintf(o.Progress, "every cell's database in a schema %s_* of %s\n", schemas.prefix, db.Redact(o.Postgres))
		}
		var err error
		tree, err = up.Start(ctx, uo, o.Logger)
		if err != nil {
			return nil, fmt.Errorf("start the tree: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tree.Shutdown(sctx)
		}()
		api, token = tree.APIURL(), "admin:admin"
		if err := waitReports(ctx, tree, o.Cells*o.HostsPerCell); err != nil {
			return nil, err
		}
	}
	c := &client{base: api, token: token, http: &http.Client{Timeout: 120 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.K + 4, MaxConnsPerHost: o.K + 4}}}
	if err := c.check(ctx); err != nil {
		return nil, err
	}

	if o.RemoteGroup {
		if err := remoteGroup(ctx, c); err != nil {
			return nil, err
		}
	}
	if o.Aggregates > 0 {
		if err := makeAggregates(ctx, c, o, tree); err != nil {
			return nil, err
		}
	}
	if o.BootFromVolume {
		n, err := liftVolumeQuota(ctx, c)
		if err != nil {
			return nil, err
		}
		res.VolumeBytesPerBoot = n
	}
	before := statsOf(tree)
	if o.BeforeBoot != nil {
		o.BeforeBoot()
	}
	cpu0 := cpuSeconds()
	machine0, machineOK := machineCPUSeconds()
	created, err := boot(ctx, c, o, res)
	// Whatever happens next, the instances this run created are deleted.
	defer func() {
		if ctx.Err() != nil && len(created) > 0 {
			fmt.Fprintf(o.Progress, "interrupted: deleting the %d creates of this run\n", len(created))
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			_, _ = deleteAll(cctx, c, o)
		}
	}()
	if err != nil {
		return nil, err
	}
	after := statsOf(tree)
	res.BootCPUSeconds = cpuSeconds() - cpu0
	if machine1, ok := machineCPUSeconds(); ok && machineOK {
		res.MachineBootCPUSeconds = machine1 - machine0
	}
	if o.AfterBoot != nil {
		o.AfterBoot()
	}
	costs(res, tree, before, after)

	if err := list(ctx, c, o, res, created); err != nil {
		return nil, err
	}
	start := time.Now()
	n, err := deleteAll(ctx, c, o)
	if err != nil {
		return nil, err
	}
	res.DeleteSeconds = time.Since(start).Seconds()
	if res.DeleteSeconds > 0 {
		res.DeletesPerSec = float64(n) / res.DeleteSeconds
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		res.PeakRSSMB = float64(ru.Maxrss) / 1024
	}
	res.CPUSeconds = cpuSeconds()
	if res.Booted > 0 {
		res.CPUMsPerBoot = 1000 * res.BootCPUSeconds / float64(res.Booted)
		res.MachineCPUMsPerBoot = 1000 * res.MachineBootCPUSeconds / float64(res.Booted)
	}
	res.Targets = targets(res, o)
	return res, nil
}

// benchZone prefixes the zones of Options.Zones.
const benchZone = "bench-az"

// makeAggregates makes Options.Aggregates over every compute host and
// waits, on the bench's own tree, until the cells' reports name every
// zone (so the boots do not race the snapshots).
func makeAggregates(ctx context.Context, c *client, o Options, tree *up.Tree) error {
	var svcs struct {
		Services []struct{ Host string } `json:"services"`
	}
	if _, err := c.do(ctx, "GET", "/os-services?binary=nova-compute", nil, &svcs); err != nil {
		return err
	}
	hosts := make([]string, 0, len(svcs.Services))
	for _, s := range svcs.Services {
		hosts = append(hosts, s.Host)
	}
	slices.Sort(hosts)
	ids := make([]int, o.Aggregates)
	for i := range ids {
		agg := map[string]any{"name": fmt.Sprintf("bench-agg%d", i)}
		if i < o.Zones {
			agg["availability_zone"] = fmt.Sprintf("%s%d", benchZone, i)
		}
		var out struct {
			Aggregate struct{ ID int } `json:"aggregate"`
		}
		if _, err := c.do(ctx, "POST", "/os-aggregates", map[string]any{"aggregate": agg}, &out); err != nil {
			return fmt.Errorf("create aggregate %d: %w", i, err)
		}
		ids[i] = out.Aggregate.ID
		if i >= o.Zones {
			if _, err := c.do(ctx, "POST", fmt.Sprintf("/os-aggregates/%d/action", ids[i]),
				map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"bench": fmt.Sprint(i)}}}, nil); err != nil {
				return err
			}
		}
	}
	stop := progress(ctx, o.Progress, func() string { return fmt.Sprintf("adding %d hosts to %d aggregates", len(hosts), o.Aggregates) })
	defer stop()
	for i, h := range hosts {
		if _, err := c.do(ctx, "POST", fmt.Sprintf("/os-aggregates/%d/action", ids[i%o.Aggregates]),
			map[string]any{"add_host": map[string]any{"host": h}}, nil); err != nil {
			return fmt.Errorf("add host %s: %w", h, err)
		}
	}
	if tree == nil {
		return nil
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		ns, err := cells.ListNeighbours(ctx, tree.API.DB)
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, n := range ns {
			if n.Relation == cells.Child && n.Report != nil {
				for _, z := range n.Report.AvailabilityZones {
					have[z] = true
				}
			}
		}
		all := true
		for i := range o.Zones {
			all = all && have[fmt.Sprintf("%s%d", benchZone, i)]
		}
		if all {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cells' reports name zones %v after 120s, want %d bench zones", have, o.Zones)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// liftVolumeQuota makes the volumes and gigabytes of the bench's project
// unlimited (Options.BootFromVolume) and answers the image's size, the
// bytes each boot copies into its volume.
func liftVolumeQuota(ctx context.Context, c *client) (int64, error) {
	root := strings.TrimSuffix(c.base, "/v2.1")
	// The bench's own tree runs noauth, whose tokens are "user:project".
	i := strings.LastIndex(c.token, ":")
	if i < 0 {
		return 0, errors.New("--boot-from-volume runs on the bench's own tree (a noauth token names its project)")
	}
	project := c.token[i+1:]
	vc := &client{base: root + "/volume/v3/" + project, token: c.token, http: c.http}
	if _, err := vc.do(ctx, "PUT", "/os-quota-sets/"+project, map[string]any{"quota_set": map[string]any{"volumes": -1, "gigabytes": -1}}, nil); err != nil {
		return 0, fmt.Errorf("boot from volume needs the Block Storage API: %w", err)
	}
	ic := &client{base: root + "/image/v2", token: c.token, http: c.http}
	var img struct {
		Size int64 `json:"size"`
	}
	if _, err := ic.do(ctx, "GET", "/images/"+up.DefaultImageID, nil, &img); err != nil {
		return 0, err
	}
	return img.Size, nil
}

// remoteGroupName is the group of Options.RemoteGroup.
const remoteGroupName = "bench-remote"

// remoteGroup makes the group of Options.RemoteGroup, unless the project
// has it already, with its rule naming itself as remote.
func remoteGroup(ctx context.Context, c *client) error {
	nc := &client{base: strings.TrimSuffix(c.base, "/v2.1") + "/networking/v2.0", token: c.token, http: c.http}
	var list struct {
		SecurityGroups []struct{ ID string } `json:"security_groups"`
	}
	if _, err := nc.do(ctx, "GET", "/security-groups?name="+remoteGroupName, nil, &list); err != nil {
		return fmt.Errorf("the remote-group variant needs the Networking API: %w", err)
	}
	if len(list.SecurityGroups) > 0 {
		return nil
	}
	var made struct {
		SecurityGroup struct{ ID string } `json:"security_group"`
	}
	if _, err := nc.do(ctx, "POST", "/security-groups", map[string]any{"security_group": map[string]any{"name": remoteGroupName}}, &made); err != nil {
		return err
	}
	id := made.SecurityGroup.ID
	_, err := nc.do(ctx, "POST", "/security-group-rules", map[string]any{"security_group_rule": map[string]any{
		"security_group_id": id, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
		"port_range_min": 22, "port_range_max": 22, "remote_group_id": id}}, nil)
	return err
}

// cpuSeconds is the CPU time this process has used so far.
// machineCPUSeconds is the CPU the machine's processors have spent busy
// since it started (user, nice, system, irq and softirq time; not idle,
// iowait or time stolen by a hypervisor), and whether the system tells.
func machineCPUSeconds() (float64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	return parseProcStat(string(b))
}

// parseProcStat reads the busy seconds from /proc/stat's "cpu" line,
// whose fields count USER_HZ (100 a second on Linux) ticks: user, nice,
// system, idle, iowait, irq, softirq, steal, ...
func parseProcStat(stat string) (float64, bool) {
	for line := range strings.Lines(stat) {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] != "cpu" {
			continue
		}
		var busy float64
		for _, i := range []int{1, 2, 3, 6, 7} {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return 0, false
			}
			busy += float64(n)
		}
		return busy / 100, true
	}
	return 0, false
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// waitReports waits until the API cell's children have reported hosts.
func waitReports(ctx context.Context, tree *up.Tree, hosts int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ns, err := cells.ListNeighbours(ctx, tree.API.DB)
		if err != nil {
			return err
		}
		seen := 0
		for _, n := range ns {
			if n.Report != nil {
				seen += n.Report.Hosts
			}
		}
		if seen >= hosts {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cells reported %d of %d hosts within 60s", seen, hosts)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// client speaks to the Compute API.
type client struct {
	base, token string
	http        *http.Client
}

func (c *client) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Auth-Token", c.token)
	req.Header.Set("X-OpenStack-Nova-API-Version", "2.60")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// check signs in: an unreachable URL or a refused token stops the bench.
func (c *client) check(ctx context.Context) error {
	_, err := c.do(ctx, "GET", "/servers?limit=1&all_tenants=1", nil, nil)
	if err != nil {
		return fmt.Errorf("the Compute API at %s: %w", c.base, err)
	}
	return nil
}

// boot creates N instances with K clients and waits until none is
// building. It returns the reservation ids it created, with their send
// times.
func boot(ctx context.Context, c *client, o Options, res *Result) (map[string]time.Time, error) {
	type job struct{ n, seq int }
	jobs := make(chan job)
	var mu sync.Mutex
	created := map[string]time.Time{}
	var lat []time.Duration
	var sent, refused atomic.Int64
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range o.K {
		wg.Go(func() {
			for j := range jobs {
				body := map[string]any{"server": map[string]any{"name": benchName, "flavorRef": "1",
					"imageRef": up.DefaultImageID, "networks": "auto", "min_count": j.n, "max_count": j.n, "return_reservation_id": true}}
				if o.BootFromVolume {
					srv := body["server"].(map[string]any)
					delete(srv, "imageRef")
					srv["block_device_mapping_v2"] = []map[string]any{{"source_type": "image", "uuid": up.DefaultImageID,
						"destination_type": "volume", "volume_size": 1, "boot_index": 0, "delete_on_termination": true}}
				}
				if o.RemoteGroup {
					body["server"].(map[string]any)["security_groups"] = []map[string]string{{"name": remoteGroupName}}
				}
				if o.Zones > 0 {
					body["server"].(map[string]any)["availability_zone"] = fmt.Sprintf("%s%d", benchZone, j.seq%o.Zones)
				}
				t0 := time.Now()
				var out struct {
					ReservationID string `json:"reservation_id"`
				}
				_, err := c.do(ctx, "POST", "/servers", body, &out)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					refused.Add(int64(j.n))
					if firstErr == nil && ctx.Err() == nil {
						firstErr = err
					}
				} else {
					created[out.ReservationID] = t0
					lat = append(lat, d)
					sent.Add(int64(j.n))
				}
				mu.Unlock()
			}
		})
	}
	stop := progress(ctx, o.Progress, func() string {
		return fmt.Sprintf("booting: %d of %d created", sent.Load(), o.N)
	})
	for left, seq := o.N, 0; left > 0 && ctx.Err() == nil; {
		n := min(o.Batch, left)
		select {
		case jobs <- job{n, seq}:
			left -= n
			seq++
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	stop()
	if ctx.Err() != nil {
		return created, ctx.Err()
	}
	if refused.Load() > 0 {
		return created, fmt.Errorf("%d creates refused; the first: %w", refused.Load(), firstErr)
	}
	res.CreateLatency = percentiles(lat)
	// Wait until the API shows none building.
	stop = progress(ctx, o.Progress, func() string { return "waiting until no instance is building" })
	defer stop()
	for {
		var page struct {
			Servers []any `json:"servers"`
		}
		if _, err := c.do(ctx, "GET", "/servers?status=BUILD&limit=1&all_tenants=1", nil, &page); err != nil {
			return created, err
		}
		if len(page.Servers) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return created, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	res.BootSeconds = time.Since(start).Seconds()
	return created, nil
}

// list walks GET /servers/detail at the final size, records each
// instance's time to ACTIVE, and times the first page.
func list(ctx context.Context, c *client, o Options, res *Result, created map[string]time.Time) error {
	var active []time.Duration
	marker := ""
	for {
		var page struct {
			Servers []struct {
				Status      string `json:"status"`
				Reservation string `json:"OS-EXT-SRV-ATTR:reservation_id"`
				LaunchedAt  string `json:"OS-SRV-USG:launched_at"`
				ID          string `json:"id"`
			} `json:"servers"`
		}
		path := "/servers/detail?limit=1000&all_tenants=1"
		if marker != "" {
			path += "&marker=" + marker
		}
		if _, err := c.do(ctx, "GET", path, nil, &page); err != nil {
			return err
		}
		for _, s := range page.Servers {
			t0, ok := created[s.Reservation]
			if !ok {
				continue
			}
			if s.Status != "ACTIVE" {
				res.Errors++
				continue
			}
			res.Booted++
			if at, err := time.Parse("2006-01-02T15:04:05.000000", s.LaunchedAt); err == nil {
				active = append(active, at.Sub(t0))
			}
		}
		if len(page.Servers) < 1000 {
			break
		}
		marker = page.Servers[len(page.Servers)-1].ID
	}
	res.ActiveLatency = percentiles(active)
	if res.BootSeconds > 0 {
		res.BootsPerSec = float64(res.Booted) / res.BootSeconds
	}
	var lat []time.Duration
	for range 20 {
		t0 := time.Now()
		if _, err := c.do(ctx, "GET", "/servers/detail?limit=1000&all_tenants=1", nil, nil); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	res.ListLatency = percentiles(lat)
	return nil
}

// benchName names the instances the bench creates; a multi-create names
// them benchName-1, benchName-2, ... as Nova does.
const benchName = "cellcloud-bench"

// benchFilter lists the instances the bench creates.
var benchFilter = "all_tenants=1&name=" + url.QueryEscape("^"+benchName+"(-[0-9]+)?$")

// deleteAll deletes every instance the bench created, K at a time, and
// waits until the API lists none.
func deleteAll(ctx context.Context, c *client, o Options) (int, error) {
	var ids []string
	marker := ""
	for {
		var page struct {
			Servers []struct {
				ID string `json:"id"`
			} `json:"servers"`
		}
		path := "/servers?limit=1000&" + benchFilter
		if marker != "" {
			path += "&marker=" + marker
		}
		if _, err := c.do(ctx, "GET", path, nil, &page); err != nil {
			return 0, err
		}
		for _, s := range page.Servers {
			ids = append(ids, s.ID)
		}
		if len(page.Servers) < 1000 {
			break
		}
		marker = page.Servers[len(page.Servers)-1].ID
	}
	var sent atomic.Int64
	stop := progress(ctx, o.Progress, func() string { return fmt.Sprintf("deleting: %d of %d sent", sent.Load(), len(ids)) })
	defer stop()
	work := make(chan string)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range o.K {
		wg.Go(func() {
			for id := range work {
				if code, err := c.do(ctx, "DELETE", "/servers/"+id, nil, nil); err != nil && code != http.StatusNotFound {
					failed.Add(1)
				}
				sent.Add(1)
			}
		})
	}
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if failed.Load() > 0 {
		return len(ids), fmt.Errorf("%d deletes failed", failed.Load())
	}
	for {
		var left struct {
			Servers []any `json:"servers"`
		}
		if _, err := c.do(ctx, "GET", "/servers?limit=1&"+benchFilter, nil, &left); err != nil {
			return len(ids), err
		}
		if len(left.Servers) == 0 {
			return len(ids), nil
		}
		select {
		case <-ctx.Done():
			return len(ids), ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// progress prints what line says once a second until stop is called;
// stop returns once the printing goroutine has returned, so nothing prints
// after it.
func progress(ctx context.Context, w io.Writer, line func() string) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	var once sync.Once
	go func() {
		defer close(exited)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				fmt.Fprintln(w, line())
			}
		}
	}()
	return func() {
		once.Do(func() { close(done) })
		<-exited
	}
}

// cellStats are the counters of every node of the tree, by cell.
func statsOf(tree *up.Tree) map[string]node.Stats {
	if tree == nil {
		return nil
	}
	out := map[string]node.Stats{tree.API.Config().Cell: tree.API.Stats()}
	for _, n := range tree.Cells {
		out[n.Config().Cell] = n.Stats()
	}
	return out
}

func costs(res *Result, tree *up.Tree, before, after map[string]node.Stats) {
	if tree == nil || res.Options.N == 0 {
		return
	}
	n := float64(res.Options.N)
	var env, raw, stmts, trips int64
	for cell, a := range after {
		b := before[cell]
		cc := CellCost{Cell: cell, Transactions: a.Commits - b.Commits, Envelopes: (a.Durable - b.Durable) + (a.Calls - b.Calls),
			BrokerMessages: a.BrokerIn - b.BrokerIn}
		cc.TxPerBoot = float64(cc.Transactions) / n
		cc.Statements = a.Statements - b.Statements
		cc.StmtPerBoot = float64(cc.Statements) / n
		stmts += cc.Statements
		cc.RoundTrips = a.RoundTrips - b.RoundTrips
		cc.TripsPerBoot = float64(cc.RoundTrips) / n
		trips += cc.RoundTrips
		cc.MessagesPerBoot = float64(cc.BrokerMessages) / n
		env += cc.Envelopes
		raw += cc.BrokerMessages
		res.Cells = append(res.Cells, cc)
	}
	slices.SortFunc(res.Cells, func(x, y CellCost) int { return strings.Compare(x.Cell, y.Cell) })
	res.EnvelopesPerBoot = float64(env) / n
	res.BrokerMessagesPerBoot = float64(raw) / n
	res.StatementsPerBoot = float64(stmts) / n
	res.RoundTripsPerBoot = float64(trips) / n
}

// targets are issue 6's, where this run can say.
func targets(res *Result, o Options) []Target {
	var ts []Target
	add := func(name, want string, v float64, met bool) { ts = append(ts, Target{name, want, v, met}) }
	if o.Batch == 1 {
		add("boots/s to ACTIVE, single creates", ">= 1000", res.BootsPerSec, res.BootsPerSec >= 1000)
		add("envelopes per single boot", "<= 8", res.EnvelopesPerBoot, res.EnvelopesPerBoot <= 8)
	} else {
		add(fmt.Sprintf("boots/s to ACTIVE, multi-creates of %d", o.Batch), ">= 5000", res.BootsPerSec, res.BootsPerSec >= 5000)
		add("envelopes per instance in a multi-create", "<= 1", res.EnvelopesPerBoot, res.EnvelopesPerBoot <= 1)
	}
	add("create latency p99 (ms)", "< 100", res.CreateLatency.P99, res.CreateLatency.P99 < 100)
	add("GET /servers/detail?limit=1000 p99 (ms)", "< 100", res.ListLatency.P99, res.ListLatency.P99 < 100)
	add("peak RSS (MiB)", "< 1024", res.PeakRSSMB, res.PeakRSSMB > 0 && res.PeakRSSMB < 1024)
	return ts
}

// machine describes this machine.
func machine() string {
	cpus := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = strings.Count(string(b), "\nprocessor")
		if strings.HasPrefix(string(b), "processor") {
			cpus++
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if line, _, ok := strings.Cut(string(b), "\n"); ok {
			mem = strings.Join(strings.Fields(line)[1:], " ")
		}
	}
	return fmt.Sprintf("%d CPUs, %s memory", cpus, mem)
}

// WriteTable prints the result for people.
func WriteTable(w io.Writer, r *Result) {
	fmt.Fprintf(w, "\ncellcloud bench: %d instances, %d clients, %d per create; ", r.Options.N, r.Options.K, r.Options.Batch)
	if r.Options.URL != "" {
		fmt.Fprintf(w, "against %s\n", r.Options.URL)
	} else {
		fmt.Fprintf(w, "%d cells x %d hosts in this process, databases on %s\n", r.Options.Cells, r.Options.HostsPerCell, r.Options.Database)
	}
	fmt.Fprintf(w, "machine: %s\n\n", r.Machine)
	fmt.Fprintf(w, "  booted to ACTIVE        %d (%d errors) in %.2fs: %.0f boots/s\n", r.Booted, r.Errors, r.BootSeconds, r.BootsPerSec)
	fmt.Fprintf(w, "  create latency          p50 %.1f ms  p99 %.1f ms  max %.1f ms\n", r.CreateLatency.P50, r.CreateLatency.P99, r.CreateLatency.Max)
	fmt.Fprintf(w, "  time to ACTIVE          p50 %.1f ms  p99 %.1f ms  max %.1f ms\n", r.ActiveLatency.P50, r.ActiveLatency.P99, r.ActiveLatency.Max)
	fmt.Fprintf(w, "  GET /servers/detail     p50 %.1f ms  p99 %.1f ms  (limit=1000, %d instances)\n", r.ListLatency.P50, r.ListLatency.P99, r.Booted)
	fmt.Fprintf(w, "  deletes                 %.0f/s (%.2fs)\n", r.DeletesPerSec, r.DeleteSeconds)
	if len(r.Cells) > 0 {
		fmt.Fprintf(w, "  envelopes per boot      %.2f (cells protocol: durable messages and calls)\n", r.EnvelopesPerBoot)
		fmt.Fprintf(w, "  broker msgs per boot    %.2f (all, JetStream acks and API included)\n", r.BrokerMessagesPerBoot)
		fmt.Fprintf(w, "  SQL statements per boot %.2f (every cell's database)\n", r.StatementsPerBoot)
		fmt.Fprintf(w, "  DB round trips per boot %.2f (statements, begins, commits, rollbacks, savepoints)\n", r.RoundTripsPerBoot)
		for _, c := range r.Cells {
			fmt.Fprintf(w, "    %-14s %8.2f transactions/boot  %8.2f statements/boot  %8.2f round trips/boot  %8.2f broker msgs/boot\n",
				c.Cell, c.TxPerBoot, c.StmtPerBoot, c.TripsPerBoot, c.MessagesPerBoot)
		}
	}
	fmt.Fprintf(w, "  CPU                     %.1f s   peak RSS %.0f MiB\n", r.CPUSeconds, r.PeakRSSMB)
	if r.Options.BootFromVolume {
		fmt.Fprintf(w, "  boot from volume        a 1-GiB volume per boot, %d bytes of image copied into each\n", r.VolumeBytesPerBoot)
	}
	fmt.Fprintf(w, "  CPU while booting       %.1f s: %.2f ms per boot\n", r.BootCPUSeconds, r.CPUMsPerBoot)
	if r.MachineBootCPUSeconds > 0 {
		fmt.Fprintf(w, "  machine CPU, booting    %.1f s: %.2f ms per boot (every process: a database server's too)\n", r.MachineBootCPUSeconds, r.MachineCPUMsPerBoot)
	}
	fmt.Fprintln(w)
	for _, t := range r.Targets {
		mark := "MISSED"
		if t.Met {
			mark = "met"
		}
		fmt.Fprintf(w, "  target %-45s %-8s %10.2f  %s\n", t.Name, t.Want, t.Value, mark)
	}
}
