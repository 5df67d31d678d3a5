package netdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The ports of servers: bound on a boot, recorded from the addresses a
// cell reports, and freed when the server is deleted.

// DeviceOwner is the device_owner of a server's ports: "compute:<zone>"
// ("compute:nova" without one).
func DeviceOwner(zone string) string {
	if zone == "" {
		zone = "nova"
	}
	return "compute:" + zone
}

// BindPort binds an unbound port to a server: its device_id and
// device_owner, and no device tag (SetDeviceTag gives it one). A port
// bound meanwhile is PortInUse.
func BindPort(ctx context.Context, tx *db.Tx, portID, server, zone string, now time.Time) error {
	res, err := tx.Exec(ctx, `UPDATE ports SET device_id = ?, device_owner = ?, device_tag = NULL, revision_number = revision_number + 1, updated_at = ?
		WHERE id = ? AND device_id = ''`, server, DeviceOwner(zone), db.Micros(now), portID)
	if err != nil {
		return fmt.Errorf("bind port %s: %w", portID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fail(ErrInUse, "PortInUse", fmt.Sprintf("Port %s is still in use.", portID))
	}
	return nil
}

// ServerAddresses are a server's addresses as an update reports them.
type ServerAddresses struct {
	UUID, ProjectID, Zone string
	Addresses             []wire.Address
	// BuildGroups are the server's groups as its build carried them, when
	// they changed since (nil: they did not; apidb.Applied.BuildGroups).
	BuildGroups []string
}

// materializeBatch is how many addresses one statement records at most.
const materializeBatch = 256

// padRows is the number of VALUES rows a statement recording n addresses
// has: the power of two at or above n. A short chunk is padded with rows of
// a NULL network, which the join with networks drops, so that the
// statements come in nine texts (1 to 256 rows) rather than one per size:
// each new text is compiled anew on every connection, and compiling these
// had been more than a third of their cost (docs/benchmarks.md).
func padRows(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}

// MaterializeServerPorts records the ports of servers' addresses that the
// table does not have yet: those a cell made on the boot (their id is the
// address's PortID, or derived by PortID for cells that do not say), made
// by MadeByCell with their server's security groups. Ports the table has
// already (a port passed in, one made for a fixed IP, one recorded by an
// earlier update) are left alone. It is two statements (an
// insert-or-ignore of the ports, one of their addresses) per 256
// addresses, however many servers an update carries; the network is found
// by name when the cell did not give its id, and a network that is not
// here gets no port. A third statement per 200 addresses logs the new
// addresses as members of their servers' security groups (sgcells.go).
//
// A server whose groups changed since its build carried them (BuildGroups
// set, and unlike its bindings now: one query for all such servers, none
// when there are none) has its new ports recorded at revision 2, above
// the revision 1 of the NIC its cell made: they are returned, by server,
// for port_update to tell the cell their groups.
func MaterializeServerPorts(ctx context.Context, tx *db.Tx, servers []ServerAddresses, now time.Time) (map[string][]string, error) {
	return materializeServerPorts(ctx, tx, servers, now, true)
}

func materializeServerPorts(ctx context.Context, tx *db.Tx, servers []ServerAddresses, now time.Time, logMembers bool) (map[string][]string, error) {
	type row struct {
		id, network, networkName, project, mac, server, owner, addr, subnet string
		ipi, revision                                                       int64
	}
	changed, err := groupsChangedSinceBuild(ctx, tx, servers)
	if err != nil {
		return nil, err
	}
	var revised map[string][]string
	var rows []row
	for _, sv := range servers {
		revision := int64(1)
		if changed[sv.UUID] {
			revision = 2
		}
		for _, a := range sv.Addresses {
			id := a.PortID
			if id == "" {
				id = PortID(sv.UUID, a.Network, a.Addr)
			}
			mac := a.MAC
			if mac == "" {
				mac = fallbackMAC(id)
			}
			var ipi int64
			if ad, err := netip.ParseAddr(a.Addr); err == nil {
				ipi = ipInt(ad)
			}
			rows = append(rows, row{id: id, network: a.NetworkID, networkName: a.Network, project: sv.ProjectID, mac: mac, server: sv.UUID,
				owner: DeviceOwner(sv.Zone), addr: a.Addr, subnet: a.SubnetID, ipi: ipi, revision: revision})
		}
	}
	for len(rows) > 0 {
		chunk := rows[:min(len(rows), materializeBatch)]
		rows = rows[len(chunk):]
		// The network: by id when the cell gave it, else by name. VALUES'
		// columns are column1, column2, ... on both engines.
		n := padRows(len(chunk))
		values := strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT)), `, n), ", ")
		args := make([]any, 0, 11*n)
		for range n - len(chunk) {
			// A padding row: its network is NULL, so the join below
			// drops it from every statement.
			args = append(args, "", nil, nil, "", "", "", "", "", "", 0, 1)
		}
		revise := false
		for _, r := range chunk {
			args = append(args, r.id, r.network, r.networkName, r.project, r.mac, r.server, r.owner, r.addr, r.subnet, r.ipi, r.revision)
			revise = revise || r.revision > 1
		}
		joinNet := ` FROM (VALUES ` + values + `) AS v JOIN networks n ON (v.column2 <> '' AND n.id = v.column2) OR (v.column2 = '' AND n.name = v.column3)`
		from := joinNet + ` WHERE 1 = 1`
		if logMembers {
			// Before the addresses are recorded: an address new here
			// joins the groups of its server, unless its port is one
			// recorded already with groups of its own or no port security.
			err := tx.ExecLater(ctx, `INSERT INTO security_group_member_changes (group_id, port_id, address, added)
				SELECT b.security_group_id, v.column1, v.column8, 1`+joinNet+` JOIN security_group_bindings b ON b.instance_uuid = v.column6
				WHERE NOT EXISTS (SELECT 1 FROM port_fixed_ips f WHERE f.network_id = n.id AND f.ip_address = v.column8)
				AND NOT EXISTS (SELECT 1 FROM ports p WHERE p.id = v.column1 AND (p.server_groups = 0 OR p.port_security_enabled = 0))`, args...)
			if err != nil {
				return nil, fmt.Errorf("log the security group members of %d addresses: %w", len(chunk), err)
			}
		}
		insert := `INSERT INTO ports (id, network_id, project_id, mac_address, device_id, device_owner, made_by, server_groups,
			revision_number, created_at, updated_at) SELECT v.column1, n.id, v.column4, v.column5, v.column6, v.column7, ?, 1, v.column11, ?, ?` +
			from + ` ON CONFLICT (id) DO NOTHING`
		insArgs := append([]any{MadeByCell, db.Micros(now), db.Micros(now)}, args...)
		if !revise {
			if err := tx.ExecLater(ctx, insert, insArgs...); err != nil {
				return nil, fmt.Errorf("record the ports of %d addresses: %w", len(chunk), err)
			}
		} else {
			// The same statement, telling which ports it recorded: only
			// those (not those an earlier update recorded) are revised.
			type made struct{ id, server string }
			got, err := db.Collect(ctx, tx, func(s db.Scanner) (made, error) {
				var m made
				return m, s.Scan(&m.id, &m.server)
			}, insert+` RETURNING id, device_id`, insArgs...)
			if err != nil {
				return nil, fmt.Errorf("record the ports of %d addresses: %w", len(chunk), err)
			}
			for _, m := range got {
				if changed[m.server] {
					if revised == nil {
						revised = map[string][]string{}
					}
					revised[m.server] = append(revised[m.server], m.id)
				}
			}
		}
		err := tx.ExecLater(ctx, `INSERT INTO port_fixed_ips (network_id, ip_address, port_id, subnet_id, ip_int)
			SELECT n.id, v.column8, v.column1, v.column9, v.column10`+from+` ON CONFLICT (network_id, ip_address) DO NOTHING`, args...)
		if err != nil {
			return nil, fmt.Errorf("record %d addresses of servers: %w", len(chunk), err)
		}
	}
	return revised, nil
}

// groupsChangedSinceBuild says which of the servers with BuildGroups are
// in other groups now: one query for all of them, none when no server has
// BuildGroups (a boot).
func groupsChangedSinceBuild(ctx context.Context, tx *db.Tx, servers []ServerAddresses) (map[string]bool, error) {
	var ids []string
	for _, sv := range servers {
		if sv.BuildGroups != nil && len(sv.Addresses) > 0 {
			ids = append(ids, sv.UUID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	now := map[string][]string{}
	type binding struct{ server, group string }
	rows, err := db.Collect(ctx, tx, func(s db.Scanner) (binding, error) {
		var b binding
		return b, s.Scan(&b.server, &b.group)
	}, `SELECT instance_uuid, security_group_id FROM security_group_bindings WHERE instance_uuid IN (`+marks(len(ids))+`)
		ORDER BY instance_uuid, security_group_id`, anys(ids)...)
	if err != nil {
		return nil, fmt.Errorf("security groups of %d servers: %w", len(ids), err)
	}
	for _, b := range rows {
		now[b.server] = append(now[b.server], b.group)
	}
	changed := map[string]bool{}
	for _, sv := range servers {
		if sv.BuildGroups == nil {
			continue
		}
		build := slices.Clone(sv.BuildGroups)
		slices.Sort(build)
		if !slices.Equal(slices.Compact(build), now[sv.UUID]) {
			changed[sv.UUID] = true
		}
	}
	return changed, nil
}

// DropStalePorts deletes the ports a cell made for a server whose
// addresses are no longer among addrs (the server moved to another cell,
// or its cell took an address back).
func DropStalePorts(ctx context.Context, tx *db.Tx, server string, addrs []wire.Address) error {
	keep := map[string]bool{}
	for _, a := range addrs {
		id := a.PortID
		if id == "" {
			id = PortID(server, a.Network, a.Addr)
		}
		keep[id] = true
	}
	ids, err := db.Collect(ctx, tx, func(s db.Scanner) (string, error) {
		var id string
		return id, s.Scan(&id)
	}, `SELECT id FROM ports WHERE device_id = ? AND made_by = ?`, server, MadeByCell)
	if err != nil {
		return fmt.Errorf("ports of %s: %w", server, err)
	}
	var gone []string
	for _, id := range ids {
		if !keep[id] {
			gone = append(gone, id)
		}
	}
	_, err = deletePorts(ctx, tx, gone)
	return err
}

// FreeServerPorts is a server's deletion seen from its ports: those made
// for it (by a cell, or for a fixed IP asked on the boot) are deleted, and
// those passed in are unbound and kept, as Nova does. It returns the cells
// to release reserved addresses in.
func FreeServerPorts(ctx context.Context, tx *db.Tx, server string, now time.Time) (Released, error) {
	type row struct{ id, madeBy string }
	rows, err := db.Collect(ctx, tx, func(s db.Scanner) (row, error) {
		var r row
		return r, s.Scan(&r.id, &r.madeBy)
	}, `SELECT id, made_by FROM ports WHERE device_id = ?`, server)
	if err != nil {
		return nil, fmt.Errorf("ports of %s: %w", server, err)
	}
	var made []string
	unbind := false
	for _, r := range rows {
		if r.madeBy == MadeByUser {
			unbind = true
		} else {
			made = append(made, r.id)
		}
	}
	rel, err := deletePorts(ctx, tx, made)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM server_nic_tags WHERE server_uuid = ?`, server); err != nil {
		return nil, fmt.Errorf("the interface tags of %s: %w", server, err)
	}
	if unbind {
		if _, err := tx.Exec(ctx, `UPDATE ports SET device_id = '', device_owner = '', binding_host_id = '', device_tag = NULL, revision_number = revision_number + 1,
			updated_at = ? WHERE device_id = ? AND made_by = ?`, db.Micros(now), server, MadeByUser); err != nil {
			return nil, fmt.Errorf("unbind the ports of %s: %w", server, err)
		}
	}
	return rel, nil
}

// Sender sends a durable message inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// SendReleases sends release_addresses to each cell of rel, in tx.
func SendReleases(ctx context.Context, tx *db.Tx, s Sender, requestID string, rel Released) error {
	cells := make([]string, 0, len(rel))
	for c := range rel {
		cells = append(cells, c)
	}
	slices.Sort(cells)
	for _, c := range cells {
		if err := s.Send(ctx, tx, c, wire.MethodReleaseAddresses, requestID, &wire.ReleaseAddresses{PortIDs: rel[c]}); err != nil {
			return fmt.Errorf("release the addresses of %d ports in %s: %w", len(rel[c]), c, err)
		}
	}
	return nil
}

// backfillPorts records the ports of the live instances' addresses, which
// before migration 7 were derived from the instances and not stored.
func backfillPorts(ctx context.Context, tx *db.Tx) error {
	type inst struct{ uuid, project, zone, addrs string }
	marker := ""
	for {
		rows, err := db.Collect(ctx, tx, func(s db.Scanner) (inst, error) {
			var i inst
			return i, s.Scan(&i.uuid, &i.project, &i.zone, &i.addrs)
		}, `SELECT uuid, project_id, availability_zone, addresses FROM instances WHERE deleted = 0 AND uuid > ? AND addresses <> '[]'
			ORDER BY uuid LIMIT 500`, marker)
		if err != nil {
			return fmt.Errorf("instances with addresses: %w", err)
		}
		var servers []ServerAddresses
		for _, i := range rows {
			var addrs []wire.Address
			if json.Unmarshal([]byte(i.addrs), &addrs) != nil {
				continue
			}
			servers = append(servers, ServerAddresses{UUID: i.uuid, ProjectID: i.project, Zone: i.zone, Addresses: addrs})
		}
		// The member log (migration 8) is not there yet.
		if _, err := materializeServerPorts(ctx, tx, servers, time.Now(), false); err != nil {
			return err
		}
		if len(rows) < 500 {
			return nil
		}
		marker = rows[len(rows)-1].uuid
	}
}

// AddressUser is the port (and its device) that has addr on a network, ""
// when none has.
func AddressUser(ctx context.Context, q db.Querier, network, addr string) (port, device string, err error) {
	err = q.QueryRow(ctx, `SELECT f.port_id, COALESCE(p.device_id, '') FROM port_fixed_ips f LEFT JOIN ports p ON p.id = f.port_id
		WHERE f.network_id = ? AND f.ip_address = ?`, network, addr).Scan(&port, &device)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("user of %s on network %s: %w", addr, network, err)
	}
	return port, device, nil
}

// ServerPortAddresses are the addresses of the ports bound to each of the
// servers (those of the server's project), by server, each server's by
// port creation then address: one query per 500 servers.
func ServerPortAddresses(ctx context.Context, q db.Querier, uuids []string) (map[string][]wire.Address, error) {
	out := map[string][]wire.Address{}
	for len(uuids) > 0 {
		chunk := uuids[:min(len(uuids), 500)]
		uuids = uuids[len(chunk):]
		args := make([]any, len(chunk))
		for i, u := range chunk {
			args[i] = u
		}
		type row struct{ server, port, mac, network, networkName, subnet, addr string }
		rows, err := db.Collect(ctx, q, func(s db.Scanner) (row, error) {
			var r row
			return r, s.Scan(&r.server, &r.port, &r.mac, &r.network, &r.networkName, &r.subnet, &r.addr)
		}, `SELECT p.device_id, p.id, p.mac_address, p.network_id, COALESCE(n.name, ''), f.subnet_id, f.ip_address
			FROM ports p JOIN instances i ON i.uuid = p.device_id AND i.project_id = p.project_id
			JOIN port_fixed_ips f ON f.port_id = p.id LEFT JOIN networks n ON n.id = p.network_id
			WHERE p.device_id IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")+`)
			ORDER BY p.device_id, p.created_at, p.id, f.ip_int, f.ip_address`, args...)
		if err != nil {
			return nil, fmt.Errorf("port addresses of %d servers: %w", len(chunk), err)
		}
		for _, r := range rows {
			version := 4
			if a, err := netip.ParseAddr(r.addr); err == nil && a.Is6() {
				version = 6
			}
			out[r.server] = append(out[r.server], wire.Address{Network: r.networkName, Addr: r.addr, Version: version, MAC: r.mac,
				NetworkID: r.network, SubnetID: r.subnet, PortID: r.port})
		}
	}
	return out, nil
}

// DetachServerPort is an interface detached from its server, seen from
// the port: a port made for the server (by a boot, an attach or a cell) is
// deleted, with the addresses cells set aside for it released (in tx); a
// port passed in is unbound and kept, as Nova does.
func DetachServerPort(ctx context.Context, tx *db.Tx, s Sender, requestID string, p *Port, now time.Time) error {
	if p.MadeBy == MadeByUser {
		if _, err := tx.Exec(ctx, `UPDATE ports SET device_id = '', device_owner = '', binding_host_id = '', device_tag = NULL, revision_number = revision_number + 1,
			updated_at = ? WHERE id = ?`, db.Micros(now), p.ID); err != nil {
			return fmt.Errorf("unbind port %s: %w", p.ID, err)
		}
		return nil
	}
	rel, err := deletePorts(ctx, tx, []string{p.ID})
	if err != nil || len(rel) == 0 {
		return err
	}
	return SendReleases(ctx, tx, s, requestID, rel)
}
