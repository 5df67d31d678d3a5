package netdb

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/portid"
)

// PortID is the id of the port that holds addr in network for an instance:
// a UUID v5, the same every time it is derived (portid.Derive, which the
// compute cells use too).
func PortID(instanceUUID, network, addr string) string {
	return portid.Derive(instanceUUID, network, addr)
}

// FixedIP is a port's address and the subnet it belongs to ("" when no
// subnet of the network holds it).
type FixedIP struct {
	SubnetID  string
	IPAddress string
}

// Port is one fixed IP of a live instance, seen as a Neutron port.
type Port struct {
	ID string
	// NetworkID is "" when no network of this name exists here.
	NetworkID   string
	NetworkName string
	ProjectID   string
	MACAddress  string
	DeviceID    string
	// DeviceOwner is "compute:<availability zone>" ("compute:nova" when the
	// instance has none yet).
	DeviceOwner string
	// Status is ACTIVE while the instance is active, else DOWN.
	Status string
	// HostID is the instance's host (admins only).
	HostID   string
	FixedIPs []FixedIP
	// SecurityGroups are the ids of the instance's security groups (every
	// port of a server has its server's groups), by name.
	SecurityGroups []string
	// RevisionNumber is the instance's version.
	RevisionNumber int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// topology is what a port needs to know about networks and subnets.
type topology struct {
	byName  map[string]*Network
	subnets map[string][]subnetPrefix // by network id
}

type subnetPrefix struct {
	id     string
	prefix netip.Prefix
}

func loadTopology(ctx context.Context, q db.Querier) (*topology, error) {
	nets, err := ListNetworks(ctx, q)
	if err != nil {
		return nil, err
	}
	subs, err := ListSubnets(ctx, q)
	if err != nil {
		return nil, err
	}
	t := &topology{byName: map[string]*Network{}, subnets: map[string][]subnetPrefix{}}
	for _, n := range nets {
		if n.Name != "" {
			t.byName[n.Name] = n
		}
	}
	for _, s := range subs {
		if p, err := netip.ParsePrefix(s.CIDR); err == nil {
			t.subnets[s.NetworkID] = append(t.subnets[s.NetworkID], subnetPrefix{s.ID, p})
		}
	}
	return t, nil
}

// derive turns an instance's addresses into ports.
func (t *topology) derive(in *apidb.Instance) []*Port {
	if in.Deleted || len(in.Addresses) == 0 {
		return nil
	}
	status := "DOWN"
	if in.VMState == "active" {
		status = "ACTIVE"
	}
	az := in.AvailabilityZone
	if az == "" {
		az = "nova"
	}
	out := make([]*Port, 0, len(in.Addresses))
	for _, a := range in.Addresses {
		p := &Port{
			ID: PortID(in.UUID, a.Network, a.Addr), NetworkName: a.Network, ProjectID: in.ProjectID, MACAddress: a.MAC,
			DeviceID: in.UUID, DeviceOwner: "compute:" + az, Status: status, HostID: in.Host,
			RevisionNumber: in.Version, CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt,
		}
		if p.MACAddress == "" {
			p.MACAddress = fallbackMAC(p.ID)
		}
		ip := FixedIP{IPAddress: a.Addr}
		if n := t.byName[a.Network]; n != nil {
			p.NetworkID = n.ID
			if ad, err := netip.ParseAddr(a.Addr); err == nil {
				for _, s := range t.subnets[n.ID] {
					if s.prefix.Contains(ad) {
						ip.SubnetID = s.id
						break
					}
				}
			}
		}
		p.FixedIPs = []FixedIP{ip}
		out = append(out, p)
	}
	return out
}

// fallbackMAC is a MAC for an address whose cell reported none: Neutron's
// fa:16:3e prefix and three bytes of the port id's hash.
func fallbackMAC(portID string) string {
	h := sha256.Sum256([]byte(portID))
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", h[0], h[1], h[2])
}

// PortFilter narrows the instances ports are derived from; the Networking
// API applies every other filter itself.
type PortFilter struct {
	// DeviceIDs, if any, are the only instances to look at.
	DeviceIDs []string
	// ProjectID, if set, is the only project to look at.
	ProjectID string
}

// batch is how many instances are read at a time.
const batch = 500

// eachInstance calls f for every live instance of the filter's project
// (all projects when empty), reading them in batches.
func eachInstance(ctx context.Context, q db.Querier, project string, f func(*apidb.Instance)) error {
	marker := ""
	for {
		insts, err := apidb.List(ctx, q, apidb.ListOptions{ProjectID: project, Limit: batch, Marker: marker})
		if err != nil {
			return fmt.Errorf("list instances: %w", err)
		}
		for _, in := range insts {
			f(in)
		}
		if len(insts) < batch {
			return nil
		}
		marker = insts[len(insts)-1].UUID
	}
}

// ListPorts derives the ports of the live instances that f selects, by id.
// Without device ids it reads every instance of the project (or of all
// projects): ports are not stored, so this is a scan of the instance copy.
func ListPorts(ctx context.Context, q db.Querier, f PortFilter) ([]*Port, error) {
	t, err := loadTopology(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []*Port
	if len(f.DeviceIDs) > 0 {
		seen := map[string]bool{}
		for _, id := range f.DeviceIDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			in, err := apidb.Get(ctx, q, id)
			if errors.Is(err, apidb.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("get instance %s: %w", id, err)
			}
			if f.ProjectID != "" && in.ProjectID != f.ProjectID {
				continue
			}
			out = append(out, t.derive(in)...)
		}
	} else if err := eachInstance(ctx, q, f.ProjectID, func(in *apidb.Instance) { out = append(out, t.derive(in)...) }); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *Port) int { return cmp.Compare(a.ID, b.ID) })
	return out, loadPortGroups(ctx, q, out)
}

// loadPortGroups fills in the ports' security groups: their servers', in
// one query.
func loadPortGroups(ctx context.Context, q db.Querier, ports []*Port) error {
	var devices []string
	seen := map[string]bool{}
	for _, p := range ports {
		if !seen[p.DeviceID] {
			seen[p.DeviceID] = true
			devices = append(devices, p.DeviceID)
		}
	}
	groups, err := InstancesSecurityGroups(ctx, q, devices)
	if err != nil {
		return err
	}
	for _, p := range ports {
		p.SecurityGroups = []string{}
		for _, g := range groups[p.DeviceID] {
			p.SecurityGroups = append(p.SecurityGroups, g.ID)
		}
	}
	return nil
}

// GetPort derives one port by id (PortNotFound when no live instance has
// it). It scans the instance copy.
func GetPort(ctx context.Context, q db.Querier, id string) (*Port, error) {
	ports, err := portsWhere(ctx, q, func(p *Port) bool { return p.ID == id })
	if err != nil {
		return nil, err
	}
	if len(ports) == 0 {
		return nil, fail(ErrNotFound, "PortNotFound", fmt.Sprintf("Port %s could not be found.", id))
	}
	return ports[0], loadPortGroups(ctx, q, ports[:1])
}

// portsWhere derives every port and keeps those keep accepts.
func portsWhere(ctx context.Context, q db.Querier, keep func(*Port) bool) ([]*Port, error) {
	t, err := loadTopology(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []*Port
	err = eachInstance(ctx, q, "", func(in *apidb.Instance) {
		for _, p := range t.derive(in) {
			if keep(p) {
				out = append(out, p)
			}
		}
	})
	return out, err
}
