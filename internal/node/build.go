package node

import (
	"context"
	"fmt"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/aggsync"
	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/compute"
	identityapi "github.com/cellcloud/cellcloud/internal/apicell/api/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	networkapi "github.com/cellcloud/cellcloud/internal/apicell/api/network"
	volumeapi "github.com/cellcloud/cellcloud/internal/apicell/api/volume"
	"github.com/cellcloud/cellcloud/internal/apicell/apicopy"
	"github.com/cellcloud/cellcloud/internal/apicell/leases"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/reclaim"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	computerole "github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/hostaggs"
	"github.com/cellcloud/cellcloud/internal/computecell/hostops"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/computecell/imagecache"
	"github.com/cellcloud/cellcloud/internal/computecell/instanceops"
	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/computecell/scheduler"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/rpc"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// buildRoles builds the roles this process runs, wired to one another
// through the ports, in the order they start.
func (n *Node) buildRoles(ctx context.Context) ([]role, error) {
	cfg := n.cfg
	// The cells service comes first: the process's sender is its own.
	if cfg.Has(config.RoleCells) {
		svc, err := cells.New(cells.Config{
			Path: cfg.Cell, DB: n.DB, Conn: n.nc, Logger: n.log, LinkOptions: n.linkOpts,
			Prefix: cfg.Broker.Prefix, Stream: streamSettings(cfg.Broker.Stream),
			ReportInterval: cfg.Cells.ReportInterval.D(), RefreshInterval: cfg.Cells.RefreshInterval.D(),
			MuteAfter: cfg.Cells.MuteAfter.D(), MaxBuildAttempts: cfg.Cells.MaxBuildAttempts, DownAfter: cfg.Cells.DownAfter.D(), UnreachableAfter: cfg.Cells.UnreachableAfter.D(),
			InboxAckWait: cfg.Cells.InboxAckWait.D(),
			CallTimeout:  cfg.Cells.CallTimeout.D(), BuildAcceptTimeout: cfg.Cells.BuildAcceptTimeout.D(),
			Capacity: n.ownCapacity(),
			Faults:   relayFaults(cfg.Cells.FaultInjection),
		})
		if err != nil {
			return nil, err
		}
		n.Cells = svc
	}
	sender := senderPort(n.nc, cfg.Broker.Prefix, cfg.Cell, n.Cells)

	// A compute cell's roles that this process runs.
	local, roles, err := n.computeCellRoles(sender)
	if err != nil {
		return nil, err
	}
	n.compute = local.compute

	// The API cell's policy, authentication and image store: the Image API
	// serves the images, and the cells send server snapshots' data up to it.
	var api apiParts
	if cfg.IsRoot() {
		if api, err = n.apiParts(ctx); err != nil {
			return nil, err
		}
	}

	if cfg.IsRoot() && cfg.Has(config.RoleAPI) {
		roles = append(roles, role{"seed", &apiSeed{db: n.DB, images: api.images, identity: n.Identity}})
	}
	if n.Cells != nil {
		roles = append(roles, role{"cells", &cellsRole{svc: n.Cells, srv: n.rpcServer(), cell: subjectRoot(cfg.Broker.Prefix, cfg.Cell)}})
		n.Cells.HandleCall(wire.MethodCellInfo, 1, 0, n.cellInfo)
		if cfg.IsRoot() {
			n.offerAPICellHandlers(sender, api.images)
			// The security groups' member changes go down from where
			// the cells' messages about them are handled.
			fl, err := sgsync.NewFlusher(sgsync.FlusherConfig{DB: n.DB, Sender: sender, Interval: cfg.Cells.SGFlushInterval.D(),
				Logger: n.log.With("cell", cfg.Cell, "role", "sgsync")})
			if err != nil {
				return nil, err
			}
			roles = append(roles, role{"security group flusher", fl})
		} else {
			comp := computeHostsPort(n.nc, subjectRoot(cfg.Broker.Prefix, cfg.Cell), local.compute)
			// The volume role is told of the instances the conductor
			// deletes; its attachments' host work goes to the compute
			// hosts.
			var vols conductor.Volumes
			var volRole []role
			if cfg.Has(config.RoleVolume) {
				m, vr, err := n.volumeRole(sender, comp)
				if err != nil {
					return nil, err
				}
				vols, volRole = m, []role{vr}
			}
			hosted, err := n.offerComputeCellHandlers(sender, schedulerPort(n.nc, subjectRoot(cfg.Broker.Prefix, cfg.Cell), local.scheduler),
				networkPort(n.nc, subjectRoot(cfg.Broker.Prefix, cfg.Cell), local.network), comp, local.firewallWake(), local.firewallMembers(),
				local.imageCacheWake(), vols)
			if err != nil {
				return nil, err
			}
			roles = append(roles, hosted...)
			roles = append(roles, volRole...)
		}
	}

	if hk := cfg.Housekeeping; hk.ArchiveInterval > 0 && cfg.Has(config.RoleCells) {
		h, err := NewHousekeeper(HousekeepingConfig{DB: n.DB, Root: cfg.IsRoot(), Cell: cfg.Cell, Settings: hk, Logger: n.log})
		if err != nil {
			return nil, err
		}
		roles = append(roles, role{"housekeeping", h})
	}

	if reg, err := n.registrar(sender); err != nil {
		return nil, err
	} else if reg != nil {
		roles = append(roles, role{"registrar", reg})
	}

	if cfg.Has(config.RoleAPI) {
		a, err := n.newAPIRole(sender, api)
		if err != nil {
			return nil, err
		}
		n.api = a
		roles = append(roles, role{"api", a})
		if iv := cfg.API.ReclaimInstanceInterval.D(); iv > 0 {
			rc, err := reclaim.New(reclaim.Config{DB: n.DB, Sender: sender, Interval: iv, Logger: n.log.With("cell", cfg.Cell, "role", "reclaim")})
			if err != nil {
				return nil, err
			}
			roles = append(roles, role{"reclaim", rc})
		}
	}
	return roles, nil
}

// rpcServer is a server of the requests of other processes of the cell.
func (n *Node) rpcServer() *rpc.Server { return rpc.NewServer(n.nc, n.log.With("cell", n.cfg.Cell)) }

// ownCapacity is what the cells service reports of this cell's own hosts:
// a compute cell's, none in the API cell.
func (n *Node) ownCapacity() cells.CapacityReporter {
	if n.cfg.IsRoot() {
		return nil
	}
	return hostsCapacity{network: n.cfg.Network.Name}
}

// offerAPICellHandlers registers the API cell's handlers with its cells
// service: what comes up from the cells (instance updates, snapshots' data,
// host mappings) and the record of the builds it sends down.
func (n *Node) offerAPICellHandlers(sender *cells.Sender, images *image.API) {
	h := &apicopy.Handlers{Sender: sender, Images: images, Logger: n.log.With("cell", n.cfg.Cell), Now: time.Now}
	n.Cells.RecordPlacements(h)
	n.Cells.RecordBuildErrors(h)
	n.Cells.HandleCast(wire.MethodInstanceUpdate, 1, 0, h.InstanceUpdate)
	n.Cells.HandleCast(wire.MethodSnapshotDone, 1, 0, h.SnapshotDone)
	n.Cells.HandleCast(wire.MethodHostMappings, 1, 0, h.HostMappings)
	n.Cells.HandleCast(wire.MethodVolumeUpdate, 1, 0, h.VolumeUpdate)
	// The volumes' image data: read for a volume made from an image,
	// written for a volume uploaded to one.
	data := &apicopy.ImageDataHandlers{Images: images, Logger: n.log.With("cell", n.cfg.Cell, "role", "image data")}
	n.Cells.HandleCall(wire.MethodImageRead, 1, 0, data.Read)
	n.Cells.HandleCall(wire.MethodImageWrite, 1, 0, data.Write)
	l := &leases.Handlers{Sender: sender, Logger: n.log.With("cell", n.cfg.Cell, "role", "leases"), Now: time.Now}
	n.Cells.HandleCast(wire.MethodLeaseBlocks, 1, 0, l.LeaseBlocks)
	n.Cells.HandleCast(wire.MethodReturnBlocks, 1, 0, l.ReturnBlocks)
	sg := &sgsync.Handlers{Sender: sender, Logger: n.log.With("cell", n.cfg.Cell, "role", "sgsync")}
	n.Cells.HandleCast(wire.MethodSecurityGroupsSync, 1, 0, sg.Sync)
	ag := &aggsync.Handlers{Pusher: &aggsync.Pusher{Sender: sender, DefaultZone: n.cfg.API.DefaultAvailabilityZone},
		Logger: n.log.With("cell", n.cfg.Cell, "role", "aggsync")}
	n.Cells.HandleCast(wire.MethodHostAggregatesSync, 1, 0, ag.Sync)
}

// offerComputeCellHandlers builds what a compute cell's cells service
// hosts (the conductor, the instance operations and the host operations),
// registers their handlers with it, and returns the ones to start after it.
//
// vols, if not nil, is the cell's volume role, told of each instance the
// conductor deletes.
//
// sgWake, if not nil, is called when the cell's security groups or its
// ports' groups changed (this process's compute agent's wake; agents of
// other processes find the change when they poll); sgMembers, if not
// nil, is given the member deltas applied instead (this process's compute
// agent applies them in memory).
func (n *Node) offerComputeCellHandlers(sender *cells.Sender, sched conductor.HostScheduler, netw conductor.Network, comp computePort,
	sgWake func(), sgMembers func([]wire.MemberDelta), cacheWake func(), vols conductor.Volumes) ([]role, error) {
	cfg := n.cfg
	// The security group messages work on the cell database; the builds
	// and interfaces ask for the groups the cell does not hold.
	sg, err := network.NewSecGroups(network.SecGroupsConfig{Cell: cfg.Cell, DB: n.DB, Sender: sender, Logger: n.log,
		HealInterval: cfg.Cells.HealInterval.D(), OnChange: sgWake, OnMembers: sgMembers})
	if err != nil {
		return nil, err
	}
	n.Cells.HandleCast(wire.MethodSecurityGroups, 1, 0, sg.SecurityGroups)
	n.Cells.HandleCast(wire.MethodSecurityGroupMembers, 1, 0, sg.SecurityGroupMembers)
	// The aggregates' snapshots work on the cell database (the claims,
	// the host scheduler and the reports read them there); a new one is
	// reported up at once, with the zones it gives.
	aggs, err := hostaggs.New(hostaggs.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Logger: n.log,
		HealInterval: cfg.Cells.HealInterval.D(), OnChange: n.Cells.ReportSoon})
	if err != nil {
		return nil, err
	}
	n.Cells.HandleCast(wire.MethodHostAggregates, 1, 0, aggs.HostAggregates)
	n.Cells.HandleCast(wire.MethodPortUpdate, 1, 0, sg.PortUpdate)
	cd, err := conductor.New(conductor.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Scheduler: sched,
		Network: netw, Compute: comp, HealInterval: cfg.Cells.HealInterval.D(), HealWindow: cfg.Cells.HealWindow.D(),
		Capacity: n.Cells, SecurityGroups: sg, Volumes: vols, Logger: n.log})
	if err != nil {
		return nil, err
	}
	n.Cells.AcceptBuilds(cd)
	n.Cells.HandleCast(wire.MethodDeleteInstances, 1, 0, cd.DeleteInstances)
	// The address messages from the API cell work on the cell database,
	// whichever process runs the network role; new blocks wake the builds
	// that wait for addresses.
	addrs := &network.Handlers{DB: n.DB, Logger: n.log.With("cell", cfg.Cell, "role", "network"), Now: time.Now,
		OnBlocks: func() { cd.BlocksArrived(); n.Cells.ReportSoon() }}
	n.Cells.HandleCast(wire.MethodBlocksLeased, 1, 0, addrs.BlocksLeased)
	n.Cells.HandleCast(wire.MethodRevokeBlocks, 1, 0, addrs.RevokeBlocks)
	n.Cells.HandleCast(wire.MethodReleaseAddresses, 1, 0, addrs.ReleaseAddresses)
	n.Cells.HandleCall(wire.MethodReserveAddress, 1, 0, addrs.ReserveAddress)
	// The volume role re-images a volume-backed server's boot volume in
	// its rebuild (2.93).
	boot, _ := vols.(instanceops.BootVolumes)
	ops, err := instanceops.New(instanceops.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Host: comp, VMs: comp, Volumes: comp, Filters: comp, Scheduler: sched, Ports: sg, Logger: n.log,
		BootVolumes: boot, ShelvedOffloadTime: cfg.Compute.ShelvedOffloadTime.D(), ShelvedPollInterval: cfg.Compute.ShelvedPollInterval.D()})
	if err != nil {
		return nil, err
	}
	n.Cells.HandleCast(wire.MethodInstanceAction, 1, 0, ops.HandleAction)
	n.Cells.HandleCast(wire.MethodAttachInterface, 1, 0, ops.AttachInterface)
	n.Cells.HandleCast(wire.MethodDetachInterface, 1, 0, ops.DetachInterface)
	n.Cells.HandleCall(wire.MethodConsoleOutput, 1, 0, ops.ConsoleOutput)
	n.Cells.HandleCall(wire.MethodResetState, 1, 0, ops.ResetState)
	n.Cells.HandleCall(wire.MethodInstanceActions, 1, 0, ops.InstanceActions)
	n.Cells.HandleCall(wire.MethodInstanceFilter, 1, 0, ops.InstanceFilter)
	// The images to pre-cache are recorded in the cell database; this
	// process's compute agent is woken, the others look every heartbeat.
	ic, err := imagecache.New(imagecache.Config{Cell: cfg.Cell, OnRequest: cacheWake, Logger: n.log})
	if err != nil {
		return nil, err
	}
	n.Cells.HandleCast(wire.MethodCacheImages, 1, 0, ic.CacheImages)
	hops, err := hostops.New(hostops.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, DownAfter: cfg.Cells.ServiceDownTime.D(), Logger: n.log})
	if err != nil {
		return nil, err
	}
	n.Cells.HandleCall(wire.MethodHypervisors, 1, 0, hops.Hypervisors)
	n.Cells.HandleCall(wire.MethodServices, 1, 0, hops.Services)
	n.Cells.HandleCall(wire.MethodServiceUpdate, 1, 0, hops.UpdateService)
	n.Cells.HandleCall(wire.MethodServiceDelete, 1, 0, hops.DeleteService)
	n.Cells.HandleCall(wire.MethodHostDescribe, 1, 0, hops.DescribeHost)
	n.Cells.HandleCall(wire.MethodHostAction, 1, 0, hops.HostAction)
	n.Cells.HandleCall(wire.MethodTenantUsage, 1, 0, hops.TenantUsage)
	n.Cells.HandleCall(wire.MethodUsageAudit, 1, 0, hops.UsageAudit)
	return []role{{"conductor", cd}, {"instance operations", ops}, {"security groups", sg}, {"host aggregates", aggs}}, nil
}

// registrar keeps the heartbeat of the controller services this process
// runs in a compute cell, for os-services; nil when it runs none.
func (n *Node) registrar(sender *cells.Sender) (component, error) {
	cfg := n.cfg
	if cfg.IsRoot() {
		return nil, nil
	}
	var bins []string
	for r, bin := range map[string]string{config.RoleCells: celldb.BinaryConductor, config.RoleScheduler: celldb.BinaryScheduler,
		config.RoleNetwork: celldb.BinaryNetwork} {
		if cfg.Has(r) {
			bins = append(bins, bin)
		}
	}
	if len(bins) == 0 {
		return nil, nil
	}
	slices.Sort(bins)
	reg, err := hostops.NewRegistrar(hostops.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Logger: n.log}, cfg.Host, bins,
		cfg.Cells.ReportInterval.D())
	if err != nil {
		return nil, err
	}
	return registrarRole{reg}, nil
}

// apiParts are the API cell's pieces that more than the api role uses.
type apiParts struct {
	images *image.API
	pol    *policy.Enforcer
	auth   authn.Authenticator
}

func (n *Node) apiParts(ctx context.Context) (apiParts, error) {
	var p apiParts
	var err error
	if p.pol, err = policy.New(PolicyRules(), n.cfg.API.PolicyFile); err != nil {
		return p, fmt.Errorf("policy: %w", err)
	}
	if p.auth, err = n.authenticator(ctx); err != nil {
		return p, err
	}
	p.images, err = image.New(image.Config{DB: n.DB, StoreDir: filepath.Join(n.cfg.DataDir, "images"), Cell: n.cfg.Cell, Logger: n.log,
		Auth: p.auth, Policy: p.pol, DataTimeout: n.cfg.API.ImageDataTimeout.D(),
		StorageQuota: n.cfg.API.ImageStorageQuota, CountQuota: n.cfg.API.ImageCountQuota})
	return p, err
}

// newAPIRole builds the public APIs. They share the listener, under
// devstack's paths: the Compute API at /v2.1, Identity at /identity (and
// /v3), the Image API at /image, Networking at /networking, Block Storage
// at /volume.
func (n *Node) newAPIRole(sender *cells.Sender, p apiParts) (*apiRole, error) {
	cfg := n.cfg
	down := downCells{db: n.DB, downAfter: cfg.Cells.DownAfter.D(), since: time.Now()}
	// Builds go through the sender in the request's own transaction: with
	// the cells service in this process, it schedules them across the
	// cells at once.
	calls := cellsCallPort(n.nc, subjectRoot(cfg.Broker.Prefix, cfg.Cell), n.Cells)
	reserver := addressReserver{calls}
	vtypes, err := voltypes.New(voltypes.Config{})
	if err != nil {
		return nil, err
	}
	volumes, err := volumeapi.New(volumeapi.Config{Cell: cfg.Cell, Logger: n.log, Auth: p.auth, Policy: p.pol,
		StorageZone: cfg.API.DefaultAvailabilityZone, Host: cfg.Host, Cells: calls, Calls: calls, DownCells: down,
		DB: n.DB, Types: vtypes, Quotas: vtypes, TypeUsage: voldb.Counter{}, QuotaUsage: voldb.Counter{},
		Sender: sender, Images: volumeapi.ImageStore{Store: &imagedb.Store{}}, Zones: storageZones(n.DB, cfg.Cells.DownAfter.D(), time.Now(), n.log.With("cell", cfg.Cell))})
	if err != nil {
		return nil, err
	}
	api, err := compute.New(compute.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Caller: calls, Reserver: reserver,
		VolumeTypes: vtypes, VolumeQuotas: vtypes,
		Logger: n.log, AuditPeriod: cfg.InstanceUsageAuditPeriod, DownCells: down,
		Auth: p.auth, Policy: p.pol, Quota: cfg.API.Quota, NetworkQuota: cfg.API.NetworkQuota, ReclaimInterval: cfg.API.ReclaimInstanceInterval.D(),
		DefaultAvailabilityZone: cfg.API.DefaultAvailabilityZone, BlockStorage: volumes})
	if err != nil {
		return nil, err
	}
	networks, err := networkapi.New(networkapi.Config{Cell: cfg.Cell, DB: n.DB, Logger: n.log, Auth: p.auth, Policy: p.pol,
		Quota: cfg.API.NetworkQuota, Reserver: reserver, Sender: sender})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	if n.Identity != nil {
		ids, err := identityapi.New(identityapi.Config{Cell: cfg.Cell, Store: n.Identity, Policy: p.pol, Cache: n.tokenCache,
			Catalog: Catalog(), Region: cfg.API.Region, Logger: n.log})
		if err != nil {
			return nil, err
		}
		// Keystone at /identity, as devstack puts it, and at /v3 for
		// clients given the bare host.
		mux.Handle("/identity/", http.StripPrefix("/identity", ids))
		mux.Handle("/identity", http.StripPrefix("/identity", ids))
		mux.Handle("/v3/", ids)
		mux.Handle("/v3", ids)
	}
	mux.Handle("/image/", http.StripPrefix("/image", p.images))
	mux.Handle("/image", http.StripPrefix("/image", p.images)) // version discovery asks without a slash
	mux.Handle("/networking/", http.StripPrefix("/networking", networks))
	mux.Handle("/networking", http.StripPrefix("/networking", networks))
	mux.Handle("/volume/", http.StripPrefix("/volume", volumes))
	mux.Handle("/volume", http.StripPrefix("/volume", volumes))
	mux.Handle("/", api)
	return &apiRole{httpServer: httpServer{handler: mux, listen: cfg.API.Listen, errs: n.serveErr,
		readTimeout: cfg.API.ReadTimeout.D(), writeTimeout: cfg.API.WriteTimeout.D(), idleTimeout: cfg.API.IdleTimeout.D(),
		maxPerClient: cfg.API.MaxConnectionsPerClient, log: n.log.With("cell", cfg.Cell)}}, nil
}

// localRoles are the compute cell's roles this process runs; nil for
// those another process runs.
type localRoles struct {
	scheduler *scheduler.Service
	network   *network.Service
	compute   *computerole.Service
}

// firewallWake is what wakes this process's compute agent when the cell's
// security groups or its ports' groups change: nil when this process runs
// no compute role (the agents of other processes poll sg_state).
func (l localRoles) firewallWake() func() {
	if l.compute == nil {
		return nil
	}
	return l.compute.WakeFirewall
}

// imageCacheWake is what wakes this process's compute agent when the cell
// recorded images to pre-cache: nil when this process runs no compute
// role (the agents of other processes look every heartbeat).
func (l localRoles) imageCacheWake() func() {
	if l.compute == nil {
		return nil
	}
	return l.compute.WakeImageCache
}

// firewallMembers is what gives this process's compute agent the member
// deltas the cell applied: nil when this process runs no compute role.
func (l localRoles) firewallMembers() func([]wire.MemberDelta) {
	if l.compute == nil {
		return nil
	}
	return l.compute.FirewallMembers
}

// computeCellRoles builds the scheduler, network and compute roles this
// process runs, in the order they start.
func (n *Node) computeCellRoles(sender *cells.Sender) (l localRoles, roles []role, err error) {
	cfg := n.cfg
	if cfg.Has(config.RoleScheduler) {
		hs := hostsched.Default()
		if m := cfg.Scheduler.RAMWeightMultiplier; m != nil {
			hs = hs.WithRAMMultiplier(*m)
		}
		if l.scheduler, err = scheduler.New(n.DB, hs, cfg.Scheduler.HostDownAfter.D()); err != nil {
			return l, nil, err
		}
		roles = append(roles, role{"scheduler", &schedulerRole{svc: l.scheduler, srv: n.rpcServer(), cell: subjectRoot(cfg.Broker.Prefix, cfg.Cell)}})
	}
	if cfg.Has(config.RoleNetwork) {
		if l.network, err = network.New(network.Config{Cell: cfg.Cell, Network: cfg.Network.Name, DB: n.DB, Sender: sender, Logger: n.log}); err != nil {
			return l, nil, err
		}
		roles = append(roles, role{"network", &networkRole{svc: l.network, srv: n.rpcServer(), cell: subjectRoot(cfg.Broker.Prefix, cfg.Cell)}})
	}
	if cfg.Has(config.RoleCompute) {
		ops := make(map[string]time.Duration, len(cfg.Compute.OpLatency))
		for op, d := range cfg.Compute.OpLatency {
			ops[op] = d.D()
		}
		drv, err := fake.New(fake.Config{SpawnLatency: cfg.Compute.SpawnLatency.D(), OpLatency: ops, FailRate: cfg.Compute.FailRate, FailHosts: cfg.Compute.FailHosts})
		if err != nil {
			return l, nil, fmt.Errorf("compute: %w", err)
		}
		l.compute, err = computerole.New(computerole.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Driver: drv,
			Hosts: cfg.HostNames(), Spec: computerole.HostSpec(cfg.Compute.Host), Logger: n.log, UsageAudit: *cfg.Compute.InstanceUsageAudit,
			AuditPeriod: cfg.InstanceUsageAuditPeriod, AuditInterval: cfg.Compute.UsageAuditInterval.D(),
			FirewallInterval: cfg.Compute.FirewallPollInterval.D()})
		if err != nil {
			return l, nil, err
		}
		roles = append(roles, role{"compute", &computeRole{svc: l.compute, srv: n.rpcServer(), cell: subjectRoot(cfg.Broker.Prefix, cfg.Cell), hosts: cfg.HostNames()}})
	}
	return l, roles, nil
}

// relayFaults is the cells service's fault injection from the
// configuration: nil, unless a fault test asked for it.
func relayFaults(f *config.FaultInjection) *cells.Faults {
	if f == nil {
		return nil
	}
	return &cells.Faults{Duplicate: f.Duplicate, Reorder: f.Reorder, Delay: f.Delay, MaxDelay: f.MaxDelay.D(), Seed: f.Seed}
}
