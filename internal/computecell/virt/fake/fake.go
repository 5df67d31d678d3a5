// Package fake is a hypervisor driver that runs no virtual machines: it
// keeps track of the instances "running" on each of many hosts, so that one
// process can stand in for thousands of hypervisors. Spawn latency and
// failures can be injected for tests and benchmarks.
package fake

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/virt"
)

// Config configures the fake driver.
type Config struct {
	// SpawnLatency is how long a spawn takes.
	SpawnLatency time.Duration
	// OpLatency is how long each lifecycle operation (a key of Ops) takes;
	// an operation not named takes no time. A real hypervisor takes
	// seconds to reboot or rebuild, and clients poll for the transitional
	// status (REBOOT, REBUILD, SHELVING...) in between.
	OpLatency map[string]time.Duration
	// FailRate is the probability (0..1) that a spawn fails.
	FailRate float64
	// FailHosts always fail to spawn.
	FailHosts []string
	// Seed seeds failure injection (0: a fixed default).
	Seed uint64
}

// Driver is the fake driver.
type Driver struct {
	cfg   Config
	mu    sync.Mutex
	hosts map[string]map[string]virt.Instance
	// console holds each instance's console log.
	console map[string][]string
	// filters and sets are the hosts' firewall (firewall.go).
	filters map[vmKey][]virt.PortFilter
	sets    map[string]map[string]map[string]struct{}
	// images are the images each host has cached (CacheImage). Like the
	// instances, they live in memory: a restarted driver has none.
	images map[string]map[string]struct{}
	// disks are the volumes attached to each VM: device to backing path.
	disks map[vmKey]map[string]string
	rng   *rand.Rand
}

// Ops are the lifecycle operations the fake driver knows.
var Ops = []string{"power_off", "power_on", "reboot", "pause", "unpause", "suspend", "resume", "rescue", "unrescue", "rebuild", "snapshot", "shelve"}

// New returns a fake driver.
func New(cfg Config) (*Driver, error) {
	if !(cfg.FailRate >= 0 && cfg.FailRate <= 1) { // also rejects NaN
		return nil, fmt.Errorf("fake driver: fail rate %v must be between 0 and 1", cfg.FailRate)
	}
	if cfg.SpawnLatency < 0 {
		return nil, fmt.Errorf("fake driver: spawn latency %v must not be negative", cfg.SpawnLatency)
	}
	for op, d := range cfg.OpLatency {
		if !slices.Contains(Ops, op) {
			return nil, fmt.Errorf("fake driver: latency of unknown operation %q (operations: %s)", op, strings.Join(Ops, ", "))
		}
		if d < 0 {
			return nil, fmt.Errorf("fake driver: latency %v of %s must not be negative", d, op)
		}
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = 1
	}
	return &Driver{cfg: cfg, hosts: map[string]map[string]virt.Instance{}, console: map[string][]string{},
		filters: map[vmKey][]virt.PortFilter{}, sets: map[string]map[string]map[string]struct{}{}, images: map[string]map[string]struct{}{}, disks: map[vmKey]map[string]string{}, rng: rand.New(rand.NewPCG(seed, seed))}, nil
}

// Spawn pretends to start an instance.
func (d *Driver) Spawn(ctx context.Context, host string, in virt.Instance) error {
	if err := wait(ctx, d.cfg.SpawnLatency); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if slices.Contains(d.cfg.FailHosts, host) || (d.cfg.FailRate > 0 && d.rng.Float64() < d.cfg.FailRate) {
		return fmt.Errorf("fake driver: injected spawn failure of %s on %s", in.UUID, host)
	}
	if d.hosts[host] == nil {
		d.hosts[host] = map[string]virt.Instance{}
	}
	d.hosts[host][in.UUID] = in
	d.log(in.UUID, "fake-virt: booting "+in.Name, "login: cirros")
	return nil
}

// wait takes the time an operation takes, or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (d *Driver) log(uuid string, lines ...string) {
	d.console[uuid] = append(d.console[uuid], lines...)
	if n := len(d.console[uuid]); n > 1000 {
		d.console[uuid] = d.console[uuid][n-1000:]
	}
}

// Operate carries out a lifecycle operation on a running instance.
func (d *Driver) Operate(ctx context.Context, host, uuid, op string) error {
	if !slices.Contains(Ops, op) {
		return fmt.Errorf("fake driver: unknown operation %q", op)
	}
	if err := wait(ctx, d.cfg.OpLatency[op]); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.hosts[host][uuid]; !ok {
		return fmt.Errorf("fake driver: instance %s is not on %s", uuid, host)
	}
	if slices.Contains(d.cfg.FailHosts, host) {
		return fmt.Errorf("fake driver: injected %s failure of %s on %s", op, uuid, host)
	}
	d.log(uuid, "fake-virt: "+op)
	if op == "shelve" {
		delete(d.hosts[host], uuid)
		delete(d.filters, vmKey{host, uuid})
		delete(d.disks, vmKey{host, uuid})
	}
	return nil
}

// ConsoleOutput returns the instance's console log.
func (d *Driver) ConsoleOutput(_ context.Context, host, uuid string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.hosts[host][uuid]; !ok {
		return "", fmt.Errorf("fake driver: instance %s is not on %s", uuid, host)
	}
	return strings.Join(d.console[uuid], "\n") + "\n", nil
}

// Destroy pretends to remove an instance.
func (d *Driver) Destroy(_ context.Context, host, uuid string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.hosts[host], uuid)
	delete(d.filters, vmKey{host, uuid})
	delete(d.disks, vmKey{host, uuid})
	// A resize has a copy on two hosts; the log goes with the last one.
	for _, insts := range d.hosts {
		if _, ok := insts[uuid]; ok {
			return nil
		}
	}
	delete(d.console, uuid)
	return nil
}

// List returns the instances on a host.
func (d *Driver) List(host string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.hosts[host]))
	for u := range d.hosts[host] {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// CacheImage pretends to fetch an image into host's cache; a host in
// FailHosts fails. It reports whether the image was new to the host.
func (d *Driver) CacheImage(ctx context.Context, host, imageID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if slices.Contains(d.cfg.FailHosts, host) {
		return false, fmt.Errorf("fake driver: injected failure caching image %s on %s", imageID, host)
	}
	if _, ok := d.images[host][imageID]; ok {
		return false, nil
	}
	if d.images[host] == nil {
		d.images[host] = map[string]struct{}{}
	}
	d.images[host][imageID] = struct{}{}
	return true, nil
}

// CachedImages returns the images host has cached, sorted.
func (d *Driver) CachedImages(host string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.images[host]))
	for id := range d.images[host] {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// AttachVolume pretends to attach the volume at path to the instance as
// device. The instance must run on host; a host in FailHosts fails. The
// same path at the same device again does nothing; another path at a
// device the instance has is an error.
func (d *Driver) AttachVolume(ctx context.Context, host, uuid, device, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.hosts[host][uuid]; !ok {
		return fmt.Errorf("fake driver: instance %s is not on %s", uuid, host)
	}
	if slices.Contains(d.cfg.FailHosts, host) {
		return fmt.Errorf("fake driver: injected failure attaching %s to %s on %s", device, uuid, host)
	}
	k := vmKey{host, uuid}
	if cur, ok := d.disks[k][device]; ok {
		if cur == path {
			return nil
		}
		return fmt.Errorf("fake driver: instance %s has %s at %s already", uuid, cur, device)
	}
	if d.disks[k] == nil {
		d.disks[k] = map[string]string{}
	}
	d.disks[k][device] = path
	d.log(uuid, "fake-virt: attached "+device)
	return nil
}

// DetachVolume pretends to detach device from the instance; one it does
// not have is not an error.
func (d *Driver) DetachVolume(ctx context.Context, host, uuid, device string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := vmKey{host, uuid}
	if _, ok := d.disks[k][device]; !ok {
		return nil
	}
	delete(d.disks[k], device)
	if len(d.disks[k]) == 0 {
		delete(d.disks, k)
	}
	d.log(uuid, "fake-virt: detached "+device)
	return nil
}

// Disks returns the volumes attached to the instance on host: device to
// backing path (empty when none).
func (d *Driver) Disks(host, uuid string) map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.disks[vmKey{host, uuid}])
}
