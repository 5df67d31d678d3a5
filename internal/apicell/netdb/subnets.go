package netdb

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
)

// Limits on a subnet's lists (Neutron's max_dns_nameservers and
// max_subnet_host_routes defaults).
const (
	MaxDNSNameservers = 5
	MaxHostRoutes     = 20
)

const subnetCols = `id, network_id, name, project_id, description, ip_version, cidr, gateway_ip, allocation_pools,
	dns_nameservers, host_routes, enable_dhcp, revision_number, created_at, updated_at`

func scanSubnet(r db.Scanner) (*Subnet, error) {
	var s Subnet
	var pools, dns, routes string
	var dhcp int
	var created, updated int64
	err := r.Scan(&s.ID, &s.NetworkID, &s.Name, &s.ProjectID, &s.Description, &s.IPVersion, &s.CIDR, &s.GatewayIP, &pools,
		&dns, &routes, &dhcp, &s.RevisionNumber, &created, &updated)
	if err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(pools), &s.AllocationPools)
	_ = json.Unmarshal([]byte(dns), &s.DNSNameservers)
	_ = json.Unmarshal([]byte(routes), &s.HostRoutes)
	if s.AllocationPools == nil {
		s.AllocationPools = []Pool{}
	}
	if s.DNSNameservers == nil {
		s.DNSNameservers = []string{}
	}
	if s.HostRoutes == nil {
		s.HostRoutes = []HostRoute{}
	}
	s.EnableDHCP = dhcp != 0
	s.CreatedAt, s.UpdatedAt = db.FromMicros(created), db.FromMicros(updated)
	return &s, nil
}

func subnetNotFound(id string) error {
	return fail(ErrNotFound, "SubnetNotFound", fmt.Sprintf("Subnet %s could not be found.", id))
}

// GetSubnet reads one subnet.
func GetSubnet(ctx context.Context, q db.Querier, id string) (*Subnet, error) {
	s, err := scanSubnet(q.QueryRow(ctx, `SELECT `+subnetCols+` FROM subnets WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, subnetNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get subnet %s: %w", id, err)
	}
	return s, nil
}

// ListSubnets returns every subnet, by id.
func ListSubnets(ctx context.Context, q db.Querier) ([]*Subnet, error) {
	out, err := db.Collect(ctx, q, scanSubnet, `SELECT `+subnetCols+` FROM subnets ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list subnets: %w", err)
	}
	return out, nil
}

// SubnetSpec is a subnet to create.
type SubnetSpec struct {
	// ID is the new subnet's id; empty means a new UUID.
	ID          string
	NetworkID   string
	Name        string
	Description string
	ProjectID   string
	IPVersion   int
	CIDR        string
	// GatewayIP nil means the first address of the CIDR; "" means none.
	GatewayIP *string
	// AllocationPools nil means every address but the network, broadcast
	// and gateway addresses.
	AllocationPools []Pool
	DNSNameservers  []string
	HostRoutes      []HostRoute
	EnableDHCP      bool
}

// lockNetwork takes the network's row lock for the rest of the transaction
// (PostgreSQL; SQLite transactions here hold the write lock already), so
// that checks over its subnets and inserts do not race another writer.
func lockNetwork(ctx context.Context, tx *db.Tx, id string) error {
	res, err := tx.Exec(ctx, `UPDATE networks SET revision_number = revision_number WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("lock network %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return networkNotFound(id)
	}
	return nil
}

func subnetsOf(ctx context.Context, q db.Querier, networkID string) ([]*Subnet, error) {
	out, err := db.Collect(ctx, q, scanSubnet, `SELECT `+subnetCols+` FROM subnets WHERE network_id = ? ORDER BY created_at, id`, networkID)
	if err != nil {
		return nil, fmt.Errorf("list subnets of network %s: %w", networkID, err)
	}
	return out, nil
}

// CreateSubnet validates and inserts a subnet on an existing network. Its
// CIDR must not overlap another subnet of the network.
func CreateSubnet(ctx context.Context, tx *db.Tx, spec SubnetSpec, now time.Time) (*Subnet, error) {
	if err := lockNetwork(ctx, tx, spec.NetworkID); err != nil {
		return nil, err
	}
	s := &Subnet{ID: spec.ID, NetworkID: spec.NetworkID, Name: spec.Name, Description: spec.Description, ProjectID: spec.ProjectID,
		IPVersion: spec.IPVersion, CIDR: spec.CIDR, AllocationPools: spec.AllocationPools, DNSNameservers: spec.DNSNameservers,
		HostRoutes: spec.HostRoutes, EnableDHCP: spec.EnableDHCP}
	if s.ID == "" {
		s.ID = uuid.NewString()
	}
	if spec.GatewayIP != nil {
		s.GatewayIP = *spec.GatewayIP
	}
	if err := normalize(s, spec.GatewayIP == nil, spec.AllocationPools == nil); err != nil {
		return nil, err
	}
	siblings, err := subnetsOf(ctx, tx, s.NetworkID)
	if err != nil {
		return nil, err
	}
	if err := checkOverlap(s, siblings); err != nil {
		return nil, err
	}
	s.RevisionNumber, s.CreatedAt, s.UpdatedAt = 1, now.UTC(), now.UTC()
	if err := insertSubnet(ctx, tx, s); err != nil {
		return nil, err
	}
	return s, nil
}

func insertSubnet(ctx context.Context, tx *db.Tx, s *Subnet) error {
	pools, _ := json.Marshal(s.AllocationPools)
	dns, _ := json.Marshal(s.DNSNameservers)
	routes, _ := json.Marshal(s.HostRoutes)
	_, err := tx.Exec(ctx, `INSERT INTO subnets (`+subnetCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.NetworkID, s.Name, s.ProjectID, s.Description, s.IPVersion, s.CIDR, s.GatewayIP, string(pools),
		string(dns), string(routes), boolInt(s.EnableDHCP), s.RevisionNumber, db.Micros(s.CreatedAt), db.Micros(s.UpdatedAt))
	if db.IsUniqueViolation(err) {
		return fail(ErrConflict, "Conflict", fmt.Sprintf("A subnet with id %s already exists.", s.ID))
	}
	if err != nil {
		return fmt.Errorf("create subnet: %w", err)
	}
	return nil
}

func checkOverlap(s *Subnet, siblings []*Subnet) error {
	p := netip.MustParsePrefix(s.CIDR)
	for _, o := range siblings {
		if o.ID == s.ID {
			continue
		}
		if q, err := netip.ParsePrefix(o.CIDR); err == nil && q.Overlaps(p) {
			return invalidInput(fmt.Sprintf("Requested subnet with cidr: %s for network: %s overlaps with another subnet", s.CIDR, s.NetworkID))
		}
	}
	return nil
}

// SubnetPatch is an update: nil fields stay as they are. A GatewayIP of ""
// removes the gateway.
type SubnetPatch struct {
	Name            *string
	Description     *string
	GatewayIP       *string
	AllocationPools *[]Pool
	DNSNameservers  *[]string
	HostRoutes      *[]HostRoute
	EnableDHCP      *bool
}

// UpdateSubnet changes a subnet and validates the result as a whole (a new
// gateway must not fall in a pool, and so on).
func UpdateSubnet(ctx context.Context, tx *db.Tx, id string, p SubnetPatch, now time.Time) (*Subnet, error) {
	s, err := GetSubnet(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	before := *s
	if p.Name != nil {
		s.Name = *p.Name
	}
	if p.Description != nil {
		s.Description = *p.Description
	}
	if p.GatewayIP != nil {
		s.GatewayIP = *p.GatewayIP
	}
	if p.AllocationPools != nil {
		s.AllocationPools = *p.AllocationPools
	}
	if p.DNSNameservers != nil {
		s.DNSNameservers = *p.DNSNameservers
	}
	if p.HostRoutes != nil {
		s.HostRoutes = *p.HostRoutes
	}
	if p.EnableDHCP != nil {
		s.EnableDHCP = *p.EnableDHCP
	}
	if err := normalize(s, false, false); err != nil {
		return nil, err
	}
	if reflect.DeepEqual(before, *s) {
		return s, nil // nothing changes: no new revision
	}
	s.RevisionNumber++
	s.UpdatedAt = now.UTC()
	pools, _ := json.Marshal(s.AllocationPools)
	dns, _ := json.Marshal(s.DNSNameservers)
	routes, _ := json.Marshal(s.HostRoutes)
	_, err = tx.Exec(ctx, `UPDATE subnets SET name = ?, description = ?, gateway_ip = ?, allocation_pools = ?, dns_nameservers = ?,
		host_routes = ?, enable_dhcp = ?, revision_number = ?, updated_at = ? WHERE id = ?`,
		s.Name, s.Description, s.GatewayIP, string(pools), string(dns), string(routes), boolInt(s.EnableDHCP), s.RevisionNumber,
		db.Micros(now), s.ID)
	if err != nil {
		return nil, fmt.Errorf("update subnet %s: %w", id, err)
	}
	return s, nil
}

// DeleteSubnet deletes a subnet unless a port has an address in it
// (SubnetInUse, as Neutron).
func DeleteSubnet(ctx context.Context, tx *db.Tx, id string) error {
	s, err := GetSubnet(ctx, tx, id)
	if err != nil {
		return err
	}
	if err := lockNetwork(ctx, tx, s.NetworkID); err != nil {
		return err
	}
	used, err := addressesInSubnet(ctx, tx, s)
	if err != nil {
		return err
	}
	if used {
		return fail(ErrInUse, "SubnetInUse", fmt.Sprintf(
			"Unable to complete operation on subnet %s: One or more ports have an IP allocation from this subnet.", id))
	}
	// Its blocks go with it; a cell that still holds one stops handing out
	// its addresses when it hears the subnet is gone.
	if _, err := tx.Exec(ctx, `DELETE FROM address_blocks WHERE subnet_id = ?`, id); err != nil {
		return fmt.Errorf("delete the address blocks of subnet %s: %w", id, err)
	}
	if err := deleteTags(ctx, tx, TagSubnets, id); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM subnets WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete subnet %s: %w", id, err)
	}
	return nil
}

// badAttr is Neutron's failed attribute validation.
func badAttr(attr, reason string) error {
	return fail(ErrInvalid, "HTTPBadRequest", fmt.Sprintf("Invalid input for %s. Reason: %s.", attr, reason))
}

func invalidInput(msg string) error {
	return fail(ErrInvalid, "InvalidInput", "Invalid input for operation: "+msg+".")
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func addr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func poolString(start, end uint32) string { return addr(start).String() + "-" + addr(end).String() }

// parseV4 parses an IPv4 address for attribute attr.
func parseV4(attr, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, badAttr(attr, fmt.Sprintf("'%s' is not a valid IP address", s))
	}
	if !a.Is4() {
		return netip.Addr{}, invalidInput(fmt.Sprintf("%s '%s' does not match the ip_version '4'", attr, s))
	}
	return a, nil
}

// DefaultPools are the allocation pools of a subnet with no pools given:
// every address of cidr but the network, broadcast and gateway ones.
func DefaultPools(cidr netip.Prefix, gateway netip.Addr) []Pool {
	cidr = cidr.Masked()
	first := u32(cidr.Addr())
	last := first | (uint32(1)<<(32-cidr.Bits()) - 1)
	lo, hi := first+1, last-1
	if !gateway.IsValid() || !gateway.Is4() || u32(gateway) < lo || u32(gateway) > hi {
		return []Pool{{Start: addr(lo).String(), End: addr(hi).String()}}
	}
	g := u32(gateway)
	var out []Pool
	if g > lo {
		out = append(out, Pool{Start: addr(lo).String(), End: addr(g - 1).String()})
	}
	if g < hi {
		out = append(out, Pool{Start: addr(g + 1).String(), End: addr(hi).String()})
	}
	return out
}

// normalize validates a subnet and puts its addresses in canonical form,
// filling in the default gateway and pools when asked to.
func normalize(s *Subnet, defaultGateway, defaultPools bool) error {
	if s.IPVersion != 4 {
		return badAttr("ip_version", fmt.Sprintf("%d is not in [4]", s.IPVersion))
	}
	p, err := netip.ParsePrefix(s.CIDR)
	if err != nil || p.Addr().Zone() != "" {
		return badAttr("cidr", fmt.Sprintf("'%s' is not a valid IP subnet", s.CIDR))
	}
	if !p.Addr().Is4() {
		return invalidInput(fmt.Sprintf("cidr '%s' does not match the ip_version '4'", s.CIDR))
	}
	if p != p.Masked() {
		return badAttr("cidr", fmt.Sprintf("'%s' isn't a recognized IP subnet cidr, '%s' is recommended", s.CIDR, p.Masked()))
	}
	if p.Bits() > 30 {
		return invalidInput(fmt.Sprintf("subnet %s is too small: this cloud needs at least a /30", s.CIDR))
	}
	s.CIDR = p.String()
	first := u32(p.Addr())
	last := first | (uint32(1)<<(32-p.Bits()) - 1)

	var gw netip.Addr
	switch {
	case defaultGateway:
		gw = addr(first + 1)
	case s.GatewayIP != "":
		if gw, err = parseV4("gateway_ip", s.GatewayIP); err != nil {
			return err
		}
		if g := u32(gw); g <= first || g >= last {
			return invalidInput("Gateway is not valid on subnet")
		}
	}
	s.GatewayIP = ""
	if gw.IsValid() {
		s.GatewayIP = gw.String()
	}

	if defaultPools {
		s.AllocationPools = DefaultPools(p, gw)
	}
	type span struct{ lo, hi uint32 }
	spans := make([]span, 0, len(s.AllocationPools))
	pools := make([]Pool, 0, len(s.AllocationPools))
	for _, pl := range s.AllocationPools {
		if pl.Start == "" || pl.End == "" {
			return badAttr("allocation_pools", fmt.Sprintf("Invalid data format for IP pool: '%s-%s'", pl.Start, pl.End))
		}
		a, err := parseV4("allocation_pools", pl.Start)
		if err != nil {
			return err
		}
		b, err := parseV4("allocation_pools", pl.End)
		if err != nil {
			return err
		}
		lo, hi := u32(a), u32(b)
		if lo > hi {
			return fail(ErrInvalid, "InvalidAllocationPool", fmt.Sprintf("The allocation pool %s is not valid.", poolString(lo, hi)))
		}
		if lo <= first || hi >= last {
			return fail(ErrInvalid, "OutOfBoundsAllocationPool", fmt.Sprintf(
				"The allocation pool %s spans beyond the subnet cidr %s.", poolString(lo, hi), s.CIDR))
		}
		for _, o := range spans {
			if lo <= o.hi && o.lo <= hi {
				return fail(ErrConflict, "OverlappingAllocationPools", fmt.Sprintf(
					"Found overlapping allocation pools: %s %s for subnet %s.", poolString(o.lo, o.hi), poolString(lo, hi), s.CIDR))
			}
		}
		if gw.IsValid() && u32(gw) >= lo && u32(gw) <= hi {
			return fail(ErrConflict, "GatewayConflictWithAllocationPools", fmt.Sprintf(
				"Gateway ip %s conflicts with allocation pool %s.", gw, poolString(lo, hi)))
		}
		spans = append(spans, span{lo, hi})
		pools = append(pools, Pool{Start: a.String(), End: b.String()})
	}
	s.AllocationPools = pools

	if len(s.DNSNameservers) > MaxDNSNameservers {
		return fail(ErrInvalid, "DNSNameServersExhausted", fmt.Sprintf(
			"Unable to complete operation for %s. The number of DNS nameservers exceeds the limit %d.", s.ID, MaxDNSNameservers))
	}
	dns := make([]string, 0, len(s.DNSNameservers))
	seen := map[string]bool{}
	for _, ns := range s.DNSNameservers {
		a, err := netip.ParseAddr(ns)
		if err != nil {
			return badAttr("dns_nameservers", fmt.Sprintf("'%s' is not a valid nameserver", ns))
		}
		if seen[a.String()] {
			return badAttr("dns_nameservers", fmt.Sprintf("Duplicate nameserver '%s'", ns))
		}
		seen[a.String()] = true
		dns = append(dns, a.String())
	}
	s.DNSNameservers = dns

	if len(s.HostRoutes) > MaxHostRoutes {
		return fail(ErrInvalid, "HostRoutesExhausted", fmt.Sprintf(
			"Unable to complete operation for %s. The number of host routes exceeds the limit %d.", s.ID, MaxHostRoutes))
	}
	routes := make([]HostRoute, 0, len(s.HostRoutes))
	seenRoute := map[HostRoute]bool{}
	for _, r := range s.HostRoutes {
		d, err := netip.ParsePrefix(r.Destination)
		if err != nil || !d.Addr().Is4() {
			return badAttr("host_routes", fmt.Sprintf("'%s' is not a valid IP subnet", r.Destination))
		}
		nh, err := parseV4("host_routes", r.NextHop)
		if err != nil {
			return err
		}
		hr := HostRoute{Destination: d.Masked().String(), NextHop: nh.String()}
		if seenRoute[hr] {
			return badAttr("host_routes", fmt.Sprintf("Duplicate hostroute '%s'", r.Destination))
		}
		seenRoute[hr] = true
		routes = append(routes, hr)
	}
	s.HostRoutes = routes
	return nil
}
