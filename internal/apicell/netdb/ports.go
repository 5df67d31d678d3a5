package netdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/portid"
)

// Ports (migration 7): Neutron's ports, in three kinds by who made them
// (made_by):
//
//   - MadeByUser: created through the Networking API. A boot on it binds
//     it to the server; deleting the server unbinds it and keeps it.
//   - MadeByBoot: made by the API cell for a fixed IP asked on a boot
//     (networks: [{"uuid": NET, "fixed_ip": ADDR}]); it goes with its
//     server.
//   - MadeByCell: made by a compute cell on a boot, with an address of the
//     cell's own blocks. The API cell records it when the copy of its
//     instance first carries the address (MaterializeServerPorts), and
//     deletes it with the server.
//
// Each fixed IP is a row of port_fixed_ips whose key (network, address)
// says that no address is given twice on a network. The API cell hands
// out the addresses of the blocks it holds (HolderAPI, blocks.go) itself;
// an address asked explicitly whose block a cell holds is reserved in that
// cell first (a reserve_address call), and the fixed IP records which cell
// reserved it (reserved_in), to which the port's deletion sends
// release_addresses. A port's security groups are its own
// (port_security_groups), except for the ports a boot made, which have
// their server's (server_groups: the groups of secgroupbindings.go), until
// an update gives them their own.

// Who made a port.
const (
	MadeByUser = "user"
	MadeByBoot = "boot"
	MadeByCell = "cell"
)

// PortID is the id of the port that a compute cell makes for addr in
// network for an instance: a UUID v5, the same every time it is derived
// (portid.Derive, which the compute cells use too).
func PortID(instanceUUID, network, addr string) string {
	return portid.Derive(instanceUUID, network, addr)
}

// FixedIP is a port's address and the subnet it belongs to ("" when no
// subnet of the network holds it).
type FixedIP struct {
	SubnetID  string
	IPAddress string
}

// AddressPair is an allowed address pair: an address or CIDR and a MAC
// ("" in a request: the port's).
type AddressPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address"`
}

// Port is a Neutron port.
type Port struct {
	ID        string
	NetworkID string
	// NetworkName is the network's name ("" if the network is gone).
	NetworkName  string
	Name         string
	ProjectID    string
	Description  string
	MACAddress   string
	AdminStateUp bool
	DeviceID     string
	DeviceOwner  string
	// Status is ACTIVE while the server it is bound to is active, else
	// DOWN.
	Status string
	// HostID is binding:host_id: the one an admin set, else its server's
	// host.
	HostID   string
	VNICType string
	// Profile is binding:profile, a JSON object.
	Profile  string
	FixedIPs []FixedIP
	// SecurityGroups are the ids of its groups.
	SecurityGroups      []string
	PortSecurity        bool
	AllowedAddressPairs []AddressPair
	Tags                []string
	MadeBy              string
	// ServerGroups says that its groups are its server's.
	ServerGroups   bool
	RevisionNumber int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// BoundToServer reports whether the port is a live server's interface.
func (p *Port) BoundToServer() bool {
	return p.DeviceID != "" && strings.HasPrefix(p.DeviceOwner, "compute:") && p.Status != ""
}

// PortNotFound is Neutron's PortNotFound.
func PortNotFound(id string) error {
	return fail(ErrNotFound, "PortNotFound", fmt.Sprintf("Port %s could not be found.", id))
}

// PortFilter narrows a list of ports in the database; the Networking API
// applies every other filter itself.
type PortFilter struct {
	// IDs, DeviceIDs: if any, the only ports (or devices) to read.
	IDs       []string
	DeviceIDs []string
	// ProjectID and NetworkID, if set, are the only project and network.
	ProjectID string
	NetworkID string
}

func (f PortFilter) where() (string, []any) {
	var conds []string
	var args []any
	in := func(col string, vals []string) {
		conds = append(conds, col+` IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")+`)`)
		for _, v := range vals {
			args = append(args, v)
		}
	}
	if len(f.IDs) > 0 {
		in("p.id", f.IDs)
	}
	if len(f.DeviceIDs) > 0 {
		in("p.device_id", f.DeviceIDs)
	}
	if f.ProjectID != "" {
		conds, args = append(conds, "p.project_id = ?"), append(args, f.ProjectID)
	}
	if f.NetworkID != "" {
		conds, args = append(conds, "p.network_id = ?"), append(args, f.NetworkID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

const portSelect = `SELECT p.id, p.network_id, COALESCE(n.name, ''), p.name, p.project_id, p.description, p.mac_address,
	p.admin_state_up, p.device_id, p.device_owner, p.port_security_enabled, p.allowed_address_pairs, p.binding_host_id,
	p.binding_vnic_type, p.binding_profile, p.tags, p.made_by, p.server_groups, p.revision_number, p.created_at, p.updated_at,
	COALESCE(i.vm_state, ''), COALESCE(i.host, '')
	FROM ports p LEFT JOIN networks n ON n.id = p.network_id LEFT JOIN instances i ON i.uuid = p.device_id AND i.deleted = 0`

func scanPort(r db.Scanner) (*Port, error) {
	var p Port
	var up, psec, sg int
	var pairs, tags string
	var created, updated int64
	var vmState, host string
	if err := r.Scan(&p.ID, &p.NetworkID, &p.NetworkName, &p.Name, &p.ProjectID, &p.Description, &p.MACAddress, &up, &p.DeviceID,
		&p.DeviceOwner, &psec, &pairs, &p.HostID, &p.VNICType, &p.Profile, &tags, &p.MadeBy, &sg, &p.RevisionNumber, &created, &updated,
		&vmState, &host); err != nil {
		return nil, err
	}
	p.AdminStateUp, p.PortSecurity, p.ServerGroups = up != 0, psec != 0, sg != 0
	_ = json.Unmarshal([]byte(pairs), &p.AllowedAddressPairs)
	_ = json.Unmarshal([]byte(tags), &p.Tags)
	if p.AllowedAddressPairs == nil {
		p.AllowedAddressPairs = []AddressPair{}
	}
	if p.Tags == nil {
		p.Tags = []string{}
	}
	p.CreatedAt, p.UpdatedAt = db.FromMicros(created), db.FromMicros(updated)
	p.Status = "DOWN"
	if vmState != "" {
		if vmState == "active" {
			p.Status = "ACTIVE"
		}
		if p.HostID == "" {
			p.HostID = host
		}
	}
	p.FixedIPs = []FixedIP{}
	p.SecurityGroups = []string{}
	return &p, nil
}

// ListPorts reads the ports f selects, by id, with their addresses and
// security groups.
func ListPorts(ctx context.Context, q db.Querier, f PortFilter) ([]*Port, error) {
	where, args := f.where()
	ports, err := db.Collect(ctx, q, scanPort, portSelect+where+` ORDER BY p.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	if len(ports) == 0 {
		return ports, nil
	}
	return ports, fillPorts(ctx, q, ports, where, args)
}

// GetPort reads one port (PortNotFound when there is none). It does not
// check who may see it.
func GetPort(ctx context.Context, q db.Querier, id string) (*Port, error) {
	ports, err := ListPorts(ctx, q, PortFilter{IDs: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(ports) == 0 {
		return nil, PortNotFound(id)
	}
	return ports[0], nil
}

// fillPorts reads the ports' fixed IPs and security groups, with the
// filter that read the ports.
func fillPorts(ctx context.Context, q db.Querier, ports []*Port, where string, args []any) error {
	byID := make(map[string]*Port, len(ports))
	for _, p := range ports {
		byID[p.ID] = p
	}
	type ipRow struct{ port, subnet, addr, network string }
	ips, err := db.Collect(ctx, q, func(s db.Scanner) (ipRow, error) {
		var r ipRow
		return r, s.Scan(&r.port, &r.subnet, &r.addr, &r.network)
	}, `SELECT f.port_id, f.subnet_id, f.ip_address, f.network_id FROM port_fixed_ips f JOIN ports p ON p.id = f.port_id`+where+
		` ORDER BY f.ip_int, f.ip_address`, args...)
	if err != nil {
		return fmt.Errorf("fixed ips of ports: %w", err)
	}
	var subs map[string][]subnetPrefix
	for _, r := range ips {
		p := byID[r.port]
		if p == nil {
			continue
		}
		if r.subnet == "" {
			// A cell's address recorded before its subnet was known.
			if subs == nil {
				if subs, err = subnetPrefixes(ctx, q); err != nil {
					return err
				}
			}
			if a, err := netip.ParseAddr(r.addr); err == nil {
				for _, s := range subs[r.network] {
					if s.prefix.Contains(a) {
						r.subnet = s.id
						break
					}
				}
			}
		}
		p.FixedIPs = append(p.FixedIPs, FixedIP{SubnetID: r.subnet, IPAddress: r.addr})
	}
	type sgRow struct{ port, group string }
	sgs, err := db.Collect(ctx, q, func(s db.Scanner) (sgRow, error) {
		var r sgRow
		return r, s.Scan(&r.port, &r.group)
	}, `SELECT g.port_id, g.security_group_id FROM port_security_groups g JOIN ports p ON p.id = g.port_id`+where+
		` ORDER BY g.security_group_id`, args...)
	if err != nil {
		return fmt.Errorf("security groups of ports: %w", err)
	}
	for _, r := range sgs {
		if p := byID[r.port]; p != nil && !p.ServerGroups {
			p.SecurityGroups = append(p.SecurityGroups, r.group)
		}
	}
	var devices []string
	for _, p := range ports {
		if p.ServerGroups && p.DeviceID != "" && !slices.Contains(devices, p.DeviceID) {
			devices = append(devices, p.DeviceID)
		}
	}
	if len(devices) == 0 {
		return nil
	}
	groups, err := InstancesSecurityGroups(ctx, q, devices)
	if err != nil {
		return err
	}
	for _, p := range ports {
		if p.ServerGroups {
			for _, g := range groups[p.DeviceID] {
				p.SecurityGroups = append(p.SecurityGroups, g.ID)
			}
		}
	}
	return nil
}

type subnetPrefix struct {
	id     string
	prefix netip.Prefix
}

// subnetPrefixes are the subnets of every network, by network id.
func subnetPrefixes(ctx context.Context, q db.Querier) (map[string][]subnetPrefix, error) {
	subs, err := ListSubnets(ctx, q)
	if err != nil {
		return nil, err
	}
	out := map[string][]subnetPrefix{}
	for _, s := range subs {
		if p, err := netip.ParsePrefix(s.CIDR); err == nil {
			out[s.NetworkID] = append(out[s.NetworkID], subnetPrefix{s.ID, p})
		}
	}
	return out, nil
}

// fallbackMAC is a MAC for an address whose cell reported none: Neutron's
// fa:16:3e prefix and three bytes of the port id's hash.
func fallbackMAC(portID string) string {
	h := sha256.Sum256([]byte(portID))
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", h[0], h[1], h[2])
}

// randomMAC is a new MAC with Neutron's base_mac fa:16:3e:00:00:00.
func randomMAC() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
}

// macInUse reports whether a port of the network has mac (other than
// port except).
func macInUse(ctx context.Context, q db.Querier, network, mac, except string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM ports WHERE network_id = ? AND mac_address = ? AND id <> ?`, network, mac, except).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("mac %s on network %s: %w", mac, network, err)
	}
	return n > 0, nil
}

// MacAddressInUse is Neutron's MacAddressInUse.
func MacAddressInUse(network, mac string) error {
	return fail(ErrConflict, "MacAddressInUse", fmt.Sprintf(
		"Unable to complete operation for network %s. The mac address %s is in use.", network, mac))
}

// FixedIPRequest is one entry of a port's fixed_ips: a subnet to take an
// address of, an address, or both.
type FixedIPRequest struct {
	SubnetID  string
	IPAddress string
}

// Placement is an address asked explicitly, placed in its subnet, with
// the holder of its block.
type Placement struct {
	SubnetID string
	Addr     string
	Holder   string
}

// ipAlreadyAllocated is Neutron's IpAddressAlreadyAllocated.
func ipAlreadyAllocated(addr, subnet string) error {
	return fail(ErrConflict, "IpAddressAlreadyAllocated", fmt.Sprintf("IP address %s already allocated in subnet %s", addr, subnet))
}

// IPAlreadyAllocated is Neutron's IpAddressAlreadyAllocated: a cell that
// holds the address's block answered that it is taken.
func IPAlreadyAllocated(addr, subnet string) error { return ipAlreadyAllocated(addr, subnet) }

// subnetFor finds the subnet of network that r names or that its address
// lies in, and checks the address against it (Neutron's
// _get_subnet_for_fixed_ip).
func subnetFor(ctx context.Context, q db.Querier, networkID string, subs []*Subnet, r FixedIPRequest) (*Subnet, netip.Addr, error) {
	var a netip.Addr
	if r.IPAddress != "" {
		var err error
		if a, err = netip.ParseAddr(r.IPAddress); err != nil {
			return nil, a, badAttr("fixed_ips", fmt.Sprintf("'%s' is not a valid IP address", r.IPAddress))
		}
	}
	if r.SubnetID != "" {
		var s *Subnet
		for _, x := range subs {
			if x.ID == r.SubnetID {
				s = x
			}
		}
		if s == nil {
			if _, err := GetSubnet(ctx, q, r.SubnetID); err != nil {
				return nil, a, err
			}
			return nil, a, invalidInput(fmt.Sprintf("Failed to create port on network %s, because fixed_ips included invalid subnet %s", networkID, r.SubnetID))
		}
		if r.IPAddress != "" && !validIPFor(s, a) {
			return nil, a, fail(ErrInvalid, "InvalidIpForSubnet", fmt.Sprintf("IP address %s is not a valid IP for the specified subnet.", r.IPAddress))
		}
		return s, a, nil
	}
	if r.IPAddress == "" {
		return nil, a, invalidInput("IP allocation requires subnet_id or ip_address")
	}
	for _, s := range subs {
		if validIPFor(s, a) {
			return s, a, nil
		}
	}
	return nil, a, fail(ErrInvalid, "InvalidIpForNetwork", fmt.Sprintf("IP address %s is not a valid IP for any of the subnets on the specified network.", r.IPAddress))
}

// validIPFor is Neutron's check_subnet_ip: in the subnet, and for IPv4 not
// its network or broadcast address.
func validIPFor(s *Subnet, a netip.Addr) bool {
	p, err := netip.ParsePrefix(s.CIDR)
	if err != nil || !p.Contains(a) {
		return false
	}
	p = p.Masked()
	if a.Is4() && p.Bits() < 31 {
		first := u32(p.Addr())
		last := first + (uint32(1)<<(32-p.Bits()) - 1)
		return u32(a) != first && u32(a) != last
	}
	return true
}

// PlaceAddresses checks the addresses a port asks for explicitly and finds
// the holder of each one's block, leasing the blocks no one holds to the
// API cell (in their own transaction: a lease is not undone if the port is
// not made). The caller reserves the addresses whose block a cell holds in
// that cell before it creates the port.
func PlaceAddresses(ctx context.Context, d *db.DB, networkID string, reqs []FixedIPRequest, now time.Time) ([]Placement, error) {
	var out []Placement
	subs, err := subnetsOf(ctx, d, networkID)
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		s, a, err := subnetFor(ctx, d, networkID, subs, r)
		if err != nil {
			return nil, err
		}
		if r.IPAddress == "" {
			continue
		}
		pl := Placement{SubnetID: s.ID, Addr: a.String()}
		if a.Is4() {
			err = d.InTx(ctx, func(tx *db.Tx) (err error) {
				pl.Holder, err = LeaseBlockOf(ctx, tx, s.ID, HolderAPI, a, now)
				return err
			})
			if err != nil {
				return nil, err
			}
		}
		out = append(out, pl)
	}
	return out, nil
}

// NewPort is a port to create.
type NewPort struct {
	Port
	// FixedIPs are the addresses asked for; nil: one address of the first
	// IPv4 subnet with one free (none if the network has no subnet).
	FixedIPs []FixedIPRequest
	// Reserved are the addresses asked for that a cell holding their block
	// has reserved for the port: address → cell.
	Reserved map[string]string
}

// CreatePort inserts a port with its addresses, its security groups
// (which must be of its project) and a MAC (a new one when none is given),
// filling in p's id (when empty), revision and times. The network's row
// lock orders the allocations of concurrent creates.
func CreatePort(ctx context.Context, tx *db.Tx, np *NewPort, now time.Time) (*Port, error) {
	p := np.Port
	if p.ID == "" {
		p.ID = uuid.NewString()
	}
	nw, err := NetworkByID(ctx, tx, p.NetworkID)
	if err != nil {
		return nil, err
	}
	if err := lockNetwork(ctx, tx, p.NetworkID); err != nil {
		return nil, err
	}
	p.NetworkName = nw.Name
	if p.MACAddress == "" {
		for range 16 {
			p.MACAddress = randomMAC()
			if used, err := macInUse(ctx, tx, p.NetworkID, p.MACAddress, ""); err != nil {
				return nil, err
			} else if !used {
				break
			}
		}
	} else if used, err := macInUse(ctx, tx, p.NetworkID, p.MACAddress, ""); err != nil {
		return nil, err
	} else if used {
		return nil, MacAddressInUse(p.NetworkID, p.MACAddress)
	}
	if err := checkGroups(ctx, tx, p.ProjectID, p.SecurityGroups); err != nil {
		return nil, err
	}
	subs, err := subnetsOf(ctx, tx, p.NetworkID)
	if err != nil {
		return nil, err
	}
	var ips []fixedIPRow
	if np.FixedIPs == nil {
		for _, s := range subs {
			if !strings.Contains(s.CIDR, ".") {
				continue
			}
			a, ok, err := allocate(ctx, tx, s, now)
			if err != nil {
				return nil, err
			}
			if ok {
				ips = append(ips, fixedIPRow{subnet: s.ID, addr: a})
				break
			}
		}
		if len(ips) == 0 && len(subs) > 0 {
			return nil, ipExhausted(p.NetworkID)
		}
	}
	for _, r := range np.FixedIPs {
		s, a, err := subnetFor(ctx, tx, p.NetworkID, subs, r)
		if err != nil {
			return nil, err
		}
		if r.IPAddress == "" {
			got, ok, err := allocate(ctx, tx, s, now)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, ipExhausted(p.NetworkID)
			}
			ips = append(ips, fixedIPRow{subnet: s.ID, addr: got})
			continue
		}
		row := fixedIPRow{subnet: s.ID, addr: a}
		if err := takeAddress(ctx, tx, p.NetworkID, s, a, np.Reserved[a.String()], now); err != nil {
			return nil, err
		}
		row.reservedIn = np.Reserved[a.String()]
		ips = append(ips, row)
	}
	if len(p.SecurityGroups) > 0 && !p.PortSecurity {
		return nil, fail(ErrInvalid, "PortSecurityAndIPRequiredForSecurityGroups",
			"Port security must be enabled and port must have an IP address in order to use security groups.")
	}
	if err := insertPort(ctx, tx, &p, now); err != nil {
		return nil, err
	}
	for _, r := range ips {
		if err := insertFixedIP(ctx, tx, p.NetworkID, p.ID, r); err != nil {
			if db.IsUniqueViolation(err) {
				return nil, ipAlreadyAllocated(r.addr.String(), r.subnet)
			}
			return nil, err
		}
		p.FixedIPs = append(p.FixedIPs, FixedIP{SubnetID: r.subnet, IPAddress: r.addr.String()})
	}
	if err := setPortGroups(ctx, tx, p.ID, p.SecurityGroups); err != nil {
		return nil, err
	}
	if err := logPortMembers(ctx, tx, []string{p.ID}, nil); err != nil {
		return nil, err
	}
	return &p, nil
}

type fixedIPRow struct {
	subnet     string
	addr       netip.Addr
	reservedIn string
}

func ipExhausted(network string) error {
	return fail(ErrConflict, "IpAddressGenerationFailure", fmt.Sprintf("No more IP addresses available on network %s.", network))
}

// takeAddress checks that an address asked explicitly is free and that
// whoever holds its block gave it: the API cell (leasing the block now if
// no one holds it), or the cell that reserved it.
func takeAddress(ctx context.Context, tx *db.Tx, network string, s *Subnet, a netip.Addr, reservedIn string, now time.Time) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM port_fixed_ips WHERE network_id = ? AND ip_address = ?`, network, a.String()).Scan(&n); err != nil {
		return fmt.Errorf("address %s on network %s: %w", a, network, err)
	}
	if n > 0 {
		return ipAlreadyAllocated(a.String(), s.ID)
	}
	if !a.Is4() {
		return nil
	}
	holder, err := LeaseBlockOf(ctx, tx, s.ID, HolderAPI, a, now)
	if err != nil {
		return err
	}
	if holder != HolderAPI && holder != reservedIn {
		// Its block went to a cell since it was placed: that cell may
		// hand it out.
		return ipAlreadyAllocated(a.String(), s.ID)
	}
	return nil
}

// allocate takes the lowest free usable address of the blocks of s that
// the API cell holds, leasing one more block of s when they have none;
// ok is false when s has no address left.
func allocate(ctx context.Context, tx *db.Tx, s *Subnet, now time.Time) (netip.Addr, bool, error) {
	for attempt := 0; attempt < 2; attempt++ {
		type blk struct{ first, size int64 }
		blocks, err := db.Collect(ctx, tx, func(r db.Scanner) (blk, error) {
			var b blk
			return b, r.Scan(&b.first, &b.size)
		}, `SELECT first_int, size FROM address_blocks WHERE subnet_id = ? AND holder = ? ORDER BY first_int`, s.ID, HolderAPI)
		if err != nil {
			return netip.Addr{}, false, fmt.Errorf("blocks of subnet %s: %w", s.ID, err)
		}
		for _, b := range blocks {
			first, last := uint32(b.first), uint32(b.first+b.size-1)
			used, err := db.Collect(ctx, tx, func(r db.Scanner) (int64, error) {
				var v int64
				return v, r.Scan(&v)
			}, `SELECT ip_int FROM port_fixed_ips WHERE network_id = ? AND ip_int >= ? AND ip_int <= ?`, s.NetworkID, int64(first), int64(last))
			if err != nil {
				return netip.Addr{}, false, fmt.Errorf("addresses in use in subnet %s: %w", s.ID, err)
			}
			taken := make(map[uint32]bool, len(used))
			for _, v := range used {
				taken[uint32(v)] = true
			}
			for _, rg := range usableIn(s, first, last) {
				lo, hi := u32(netip.MustParseAddr(rg.First)), u32(netip.MustParseAddr(rg.Last))
				for v := lo; ; v++ {
					if !taken[v] {
						return addr(v), true, nil
					}
					if v == hi {
						break
					}
				}
			}
		}
		ok, err := leaseSubnetBlock(ctx, tx, s, now)
		if err != nil || !ok {
			return netip.Addr{}, false, err
		}
	}
	return netip.Addr{}, false, nil
}

// leaseSubnetBlock leases to the API cell the lowest block of s that no
// one holds and that has a usable address; false when there is none.
func leaseSubnetBlock(ctx context.Context, tx *db.Tx, s *Subnet, now time.Time) (bool, error) {
	p, err := netip.ParsePrefix(s.CIDR)
	if err != nil || !p.Addr().Is4() {
		return false, nil
	}
	p = p.Masked()
	leased, err := leasedFirsts(ctx, tx, s.ID)
	if err != nil {
		return false, err
	}
	size := uint32(1) << (32 - BlockBits(p))
	start := u32(p.Addr())
	end := start + (uint32(1)<<(32-p.Bits()) - 1)
	for first := start; ; first += size {
		if !leased[first] {
			if u := usableIn(s, first, first+size-1); len(u) > 0 {
				_, err := LeaseBlockOf(ctx, tx, s.ID, HolderAPI, netip.MustParseAddr(u[0].First), now)
				return err == nil, err
			}
		}
		if first+size-1 >= end {
			return false, nil
		}
	}
}

func insertPort(ctx context.Context, tx *db.Tx, p *Port, now time.Time) error {
	if p.AllowedAddressPairs == nil {
		p.AllowedAddressPairs = []AddressPair{}
	}
	if p.Tags == nil {
		p.Tags = []string{}
	}
	if p.SecurityGroups == nil {
		p.SecurityGroups = []string{}
	}
	if p.VNICType == "" {
		p.VNICType = "normal"
	}
	if p.Profile == "" {
		p.Profile = "{}"
	}
	if p.MadeBy == "" {
		p.MadeBy = MadeByUser
	}
	pairs, _ := json.Marshal(p.AllowedAddressPairs)
	tags, _ := json.Marshal(p.Tags)
	p.RevisionNumber, p.CreatedAt, p.UpdatedAt = 1, now.UTC(), now.UTC()
	p.Status = "DOWN"
	p.FixedIPs = []FixedIP{}
	_, err := tx.Exec(ctx, `INSERT INTO ports (id, network_id, name, project_id, description, mac_address, admin_state_up, device_id,
		device_owner, port_security_enabled, allowed_address_pairs, binding_host_id, binding_vnic_type, binding_profile, tags, made_by,
		server_groups, revision_number, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.NetworkID, p.Name, p.ProjectID, p.Description, p.MACAddress, boolInt(p.AdminStateUp), p.DeviceID, p.DeviceOwner,
		boolInt(p.PortSecurity), string(pairs), p.HostID, p.VNICType, p.Profile, string(tags), p.MadeBy, boolInt(p.ServerGroups),
		p.RevisionNumber, db.Micros(now), db.Micros(now))
	if err != nil {
		return fmt.Errorf("create port: %w", err)
	}
	return nil
}

func ipInt(a netip.Addr) int64 {
	if a.Is4() {
		return int64(u32(a))
	}
	return 0
}

func insertFixedIP(ctx context.Context, tx *db.Tx, network, port string, r fixedIPRow) error {
	_, err := tx.Exec(ctx, `INSERT INTO port_fixed_ips (network_id, ip_address, port_id, subnet_id, ip_int, reserved_in) VALUES (?, ?, ?, ?, ?, ?)`,
		network, r.addr.String(), port, r.subnet, ipInt(r.addr), r.reservedIn)
	if err != nil {
		return fmt.Errorf("address %s of port %s: %w", r.addr, port, err)
	}
	return nil
}

// checkGroups refuses groups that do not exist or are not of project
// (SecurityGroupNotFound, as Neutron for another project's group).
func checkGroups(ctx context.Context, q db.Querier, project string, ids []string) error {
	for _, id := range ids {
		var owner string
		err := q.QueryRow(ctx, `SELECT project_id FROM security_groups WHERE id = ?`, id).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && owner != project) {
			return SecurityGroupNotFound(id)
		}
		if err != nil {
			return fmt.Errorf("security group %s: %w", id, err)
		}
	}
	return nil
}

func setPortGroups(ctx context.Context, tx *db.Tx, port string, ids []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM port_security_groups WHERE port_id = ?`, port); err != nil {
		return fmt.Errorf("security groups of port %s: %w", port, err)
	}
	for _, id := range ids {
		if _, err := tx.Exec(ctx, `INSERT INTO port_security_groups (port_id, security_group_id) VALUES (?, ?)`, port, id); err != nil {
			return fmt.Errorf("security group %s of port %s: %w", id, port, err)
		}
	}
	return nil
}

// PortPatch is an update: nil fields stay as they are.
type PortPatch struct {
	Name, Description, DeviceID, DeviceOwner *string
	AdminStateUp, PortSecurity               *bool
	SecurityGroups                           *[]string
	AllowedAddressPairs                      *[]AddressPair
	MACAddress, HostID, VNICType, Profile    *string
	Tags                                     *[]string
}

// UpdatePort changes a port, if its revision is still ifMatch (when not
// nil). A change bumps the revision.
func UpdatePort(ctx context.Context, tx *db.Tx, id string, pp PortPatch, ifMatch *int64, now time.Time) (*Port, error) {
	if err := lockRow(ctx, tx, "ports", id); err != nil {
		return nil, err
	}
	p, err := GetPort(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if err := checkRevision(ifMatch, p.RevisionNumber); err != nil {
		return nil, err
	}
	// What the port gives its groups' member sets, when the update may
	// change it.
	var members map[Member]bool
	if pp.PortSecurity != nil || pp.SecurityGroups != nil || pp.AllowedAddressPairs != nil {
		if members, err = portMembers(ctx, tx, []string{id}); err != nil {
			return nil, err
		}
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.Name, pp.Name)
	set(&p.Description, pp.Description)
	set(&p.DeviceID, pp.DeviceID)
	set(&p.DeviceOwner, pp.DeviceOwner)
	set(&p.VNICType, pp.VNICType)
	set(&p.Profile, pp.Profile)
	if pp.HostID != nil {
		p.HostID = *pp.HostID
	} else {
		// The stored binding, not the server's host that reads show.
		if err := tx.QueryRow(ctx, `SELECT binding_host_id FROM ports WHERE id = ?`, id).Scan(&p.HostID); err != nil {
			return nil, fmt.Errorf("binding of port %s: %w", id, err)
		}
	}
	if pp.AdminStateUp != nil {
		p.AdminStateUp = *pp.AdminStateUp
	}
	if pp.MACAddress != nil && *pp.MACAddress != p.MACAddress {
		if p.DeviceID != "" {
			return nil, fail(ErrConflict, "PortBound", fmt.Sprintf(
				"Unable to complete operation on port %s, port is already bound, port type: ovs, old_mac %s, new_mac %s.", id, p.MACAddress, *pp.MACAddress))
		}
		if used, err := macInUse(ctx, tx, p.NetworkID, *pp.MACAddress, id); err != nil {
			return nil, err
		} else if used {
			return nil, MacAddressInUse(p.NetworkID, *pp.MACAddress)
		}
		p.MACAddress = *pp.MACAddress
	}
	if pp.PortSecurity != nil {
		p.PortSecurity = *pp.PortSecurity
	}
	groupsChanged := false
	if pp.SecurityGroups != nil {
		if err := checkGroups(ctx, tx, p.ProjectID, *pp.SecurityGroups); err != nil {
			return nil, err
		}
		p.SecurityGroups, p.ServerGroups, groupsChanged = append([]string{}, *pp.SecurityGroups...), false, true
	}
	if pp.AllowedAddressPairs != nil {
		p.AllowedAddressPairs = append([]AddressPair{}, *pp.AllowedAddressPairs...)
	}
	if pp.Tags != nil {
		p.Tags = append([]string{}, *pp.Tags...)
	}
	if !p.PortSecurity {
		if len(p.SecurityGroups) > 0 {
			return nil, fail(ErrInUse, "PortSecurityPortHasSecurityGroup",
				"Port has security group associated. Cannot disable port security or IP address until security group is removed.")
		}
		if len(p.AllowedAddressPairs) > 0 {
			return nil, fail(ErrConflict, "AddressPairAndPortSecurityRequired",
				"Port Security must be enabled in order to have allowed address pairs on a port.")
		}
	}
	p.RevisionNumber++
	p.UpdatedAt = now.UTC()
	pairs, _ := json.Marshal(p.AllowedAddressPairs)
	tags, _ := json.Marshal(p.Tags)
	_, err = tx.Exec(ctx, `UPDATE ports SET name = ?, description = ?, device_id = ?, device_owner = ?, admin_state_up = ?, mac_address = ?,
		port_security_enabled = ?, allowed_address_pairs = ?, binding_host_id = ?, binding_vnic_type = ?, binding_profile = ?, tags = ?,
		server_groups = ?, revision_number = ?, updated_at = ? WHERE id = ?`,
		p.Name, p.Description, p.DeviceID, p.DeviceOwner, boolInt(p.AdminStateUp), p.MACAddress, boolInt(p.PortSecurity), string(pairs),
		p.HostID, p.VNICType, p.Profile, string(tags), boolInt(p.ServerGroups), p.RevisionNumber, db.Micros(now), id)
	if err != nil {
		return nil, fmt.Errorf("update port %s: %w", id, err)
	}
	if groupsChanged {
		if err := setPortGroups(ctx, tx, id, p.SecurityGroups); err != nil {
			return nil, err
		}
	}
	if members != nil {
		if err := logPortMembers(ctx, tx, []string{id}, members); err != nil {
			return nil, err
		}
	}
	return GetPort(ctx, tx, id)
}

// Released are the ports whose addresses cells reserved, by cell: a port's
// deletion leaves them to be released there (release_addresses).
type Released map[string][]string

// PortInUse is Neutron's PortInUse.
func PortInUse(p *Port) error {
	return fail(ErrInUse, "PortInUse", fmt.Sprintf(
		"Unable to complete operation on port %s for network %s. Port already has an attached device %s.", p.ID, p.NetworkID, p.DeviceID))
}

// DeletePort deletes a port, if its revision is still ifMatch (when not
// nil) and no live server has it (PortInUse: the server lets it go
// first).
func DeletePort(ctx context.Context, tx *db.Tx, id string, ifMatch *int64) (Released, error) {
	if err := lockRow(ctx, tx, "ports", id); err != nil {
		return nil, err
	}
	p, err := GetPort(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if err := checkRevision(ifMatch, p.RevisionNumber); err != nil {
		return nil, err
	}
	bound, err := BoundToLiveServer(ctx, tx, p)
	if err != nil {
		return nil, err
	}
	if bound {
		return nil, PortInUse(p)
	}
	return deletePorts(ctx, tx, []string{id})
}

// BoundToLiveServer reports whether a live server has the port.
func BoundToLiveServer(ctx context.Context, q db.Querier, p *Port) (bool, error) {
	if p.DeviceID == "" || !strings.HasPrefix(p.DeviceOwner, "compute:") {
		return false, nil
	}
	var n int
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM instances WHERE uuid = ? AND deleted = 0`, p.DeviceID).Scan(&n); err != nil {
		return false, fmt.Errorf("server of port %s: %w", p.ID, err)
	}
	return n > 0, nil
}

// deletePorts deletes ports, their addresses and groups, and says which
// cells reserved addresses of theirs.
func deletePorts(ctx context.Context, tx *db.Tx, ids []string) (Released, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	members, err := portMembers(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	if err := logMemberDiff(ctx, tx, members, nil); err != nil {
		return nil, err
	}
	in := `(` + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + `)`
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	type res struct{ port, cell string }
	rs, err := db.Collect(ctx, tx, func(s db.Scanner) (res, error) {
		var r res
		return r, s.Scan(&r.port, &r.cell)
	}, `SELECT port_id, reserved_in FROM port_fixed_ips WHERE reserved_in <> '' AND port_id IN `+in+` ORDER BY port_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("reserved addresses of ports: %w", err)
	}
	var rel Released
	for _, r := range rs {
		if rel == nil {
			rel = Released{}
		}
		if !slices.Contains(rel[r.cell], r.port) {
			rel[r.cell] = append(rel[r.cell], r.port)
		}
	}
	for _, q := range []string{`DELETE FROM port_fixed_ips WHERE port_id IN `, `DELETE FROM port_security_groups WHERE port_id IN `, `DELETE FROM ports WHERE id IN `} {
		if _, err := tx.Exec(ctx, q+in, args...); err != nil {
			return nil, fmt.Errorf("delete ports: %w", err)
		}
	}
	return rel, nil
}

// PortsOnNetwork counts the ports on a network, and those of projects
// other than owner.
func PortsOnNetwork(ctx context.Context, q db.Querier, network, owner string) (all, others int, err error) {
	err = q.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN project_id <> ? THEN 1 ELSE 0 END), 0) FROM ports WHERE network_id = ?`,
		owner, network).Scan(&all, &others)
	if err != nil {
		return 0, 0, fmt.Errorf("ports on network %s: %w", network, err)
	}
	return all, others, nil
}

// addressesInSubnet reports whether a port has an address in s.
func addressesInSubnet(ctx context.Context, q db.Querier, s *Subnet) (bool, error) {
	p, err := netip.ParsePrefix(s.CIDR)
	if err != nil {
		return false, nil
	}
	var n int
	if p.Addr().Is4() {
		p = p.Masked()
		first := int64(u32(p.Addr()))
		last := first + int64(1)<<(32-p.Bits()) - 1
		err = q.QueryRow(ctx, `SELECT COUNT(*) FROM port_fixed_ips WHERE network_id = ? AND (subnet_id = ? OR (ip_int >= ? AND ip_int <= ? AND subnet_id = ''))`,
			s.NetworkID, s.ID, first, last).Scan(&n)
	} else {
		err = q.QueryRow(ctx, `SELECT COUNT(*) FROM port_fixed_ips WHERE subnet_id = ?`, s.ID).Scan(&n)
	}
	if err != nil {
		return false, fmt.Errorf("addresses in subnet %s: %w", s.ID, err)
	}
	return n > 0, nil
}

// countPortsIn is how many ports have group id as their own.
func countPortsIn(ctx context.Context, q db.Querier, id string) (int, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM port_security_groups WHERE security_group_id = ?`, id).Scan(&n); err != nil {
		return 0, fmt.Errorf("ports in security group %s: %w", id, err)
	}
	return n, nil
}

// SetFixedIPs replaces the addresses of port id with those reqs ask for,
// as Neutron's update of fixed_ips: an address the port has and that is
// asked again stays, as does one of a subnet asked by id alone; the others
// asked are taken (reserved ones as NewPort's Reserved); those not asked
// any more are freed, and the cells that reserved them are returned to
// release them. The caller holds the port's row (UpdatePort's lock).
func SetFixedIPs(ctx context.Context, tx *db.Tx, id string, reqs []FixedIPRequest, reserved map[string]string, now time.Time) (Released, error) {
	p, err := GetPort(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if err := lockNetwork(ctx, tx, p.NetworkID); err != nil {
		return nil, err
	}
	members, err := portMembers(ctx, tx, []string{id})
	if err != nil {
		return nil, err
	}
	type cur struct{ addr, subnet, reservedIn string }
	have, err := db.Collect(ctx, tx, func(s db.Scanner) (cur, error) {
		var c cur
		return c, s.Scan(&c.addr, &c.subnet, &c.reservedIn)
	}, `SELECT ip_address, subnet_id, reserved_in FROM port_fixed_ips WHERE port_id = ? ORDER BY ip_int, ip_address`, id)
	if err != nil {
		return nil, fmt.Errorf("addresses of port %s: %w", id, err)
	}
	subs, err := subnetsOf(ctx, tx, p.NetworkID)
	if err != nil {
		return nil, err
	}
	kept := map[string]bool{}
	var pending []FixedIPRequest
	for _, r := range reqs {
		s, a, err := subnetFor(ctx, tx, p.NetworkID, subs, r)
		if err != nil {
			return nil, err
		}
		found := false
		for _, c := range have {
			if kept[c.addr] {
				continue
			}
			if (r.IPAddress != "" && c.addr == a.String()) || (r.IPAddress == "" && c.subnet == s.ID) {
				kept[c.addr], found = true, true
				break
			}
		}
		if !found {
			pending = append(pending, r)
		}
	}
	var rel Released
	for _, c := range have {
		if kept[c.addr] {
			continue
		}
		if _, err := tx.Exec(ctx, `DELETE FROM port_fixed_ips WHERE network_id = ? AND ip_address = ?`, p.NetworkID, c.addr); err != nil {
			return nil, fmt.Errorf("free %s of port %s: %w", c.addr, id, err)
		}
		if c.reservedIn != "" {
			if rel == nil {
				rel = Released{}
			}
			if !slices.Contains(rel[c.reservedIn], id) {
				rel[c.reservedIn] = append(rel[c.reservedIn], id)
			}
		}
	}
	for _, r := range pending {
		s, a, err := subnetFor(ctx, tx, p.NetworkID, subs, r)
		if err != nil {
			return nil, err
		}
		row := fixedIPRow{subnet: s.ID, addr: a}
		if r.IPAddress == "" {
			got, ok, err := allocate(ctx, tx, s, now)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, ipExhausted(p.NetworkID)
			}
			row.addr = got
		} else {
			if err := takeAddress(ctx, tx, p.NetworkID, s, a, reserved[a.String()], now); err != nil {
				return nil, err
			}
			row.reservedIn = reserved[a.String()]
		}
		if err := insertFixedIP(ctx, tx, p.NetworkID, id, row); err != nil {
			if db.IsUniqueViolation(err) {
				return nil, ipAlreadyAllocated(row.addr.String(), row.subnet)
			}
			return nil, err
		}
	}
	if err := logPortMembers(ctx, tx, []string{id}, members); err != nil {
		return nil, err
	}
	return rel, nil
}

// LockPort holds port id's row until tx ends and reads it, if its
// revision is still ifMatch (when not nil).
func LockPort(ctx context.Context, tx *db.Tx, id string, ifMatch *int64) (*Port, error) {
	if err := lockRow(ctx, tx, "ports", id); err != nil {
		return nil, err
	}
	p, err := GetPort(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	return p, checkRevision(ifMatch, p.RevisionNumber)
}
