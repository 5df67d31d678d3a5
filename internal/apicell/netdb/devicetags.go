package netdb

import (
	"context"
	"fmt"

	"github.com/cellcloud/cellcloud/internal/db"
)

// Device tags: the tags a user gives a server's interfaces, on a boot's
// networks (2.32, and from 2.42) and on an attach (2.49), which the
// Compute API shows from 2.70. Nova keeps them on its virtual interfaces,
// by port. Here a port the API cell binds or makes for the server (a port
// passed in, one made for a fixed IP or an attach) carries its tag in
// device_tag (NULL: none), which a bind sets anew and an unbind clears.
// The port of an interface that a cell makes on the boot does not exist
// until the cell reports its address: such an interface, when tagged, is
// given its MAC by the API cell, and its tag waits in server_nic_tags
// under the server and that MAC, where its port finds it.
var deviceTagsMigration = db.Migration{Version: 9, Name: "device tags", SQL: `
ALTER TABLE ports ADD COLUMN device_tag TEXT;
CREATE TABLE server_nic_tags (
	server_uuid TEXT NOT NULL,
	mac_address TEXT NOT NULL,
	tag TEXT NOT NULL,
	PRIMARY KEY (server_uuid, mac_address)
)`}

// SetDeviceTag gives a port its server's device tag ("": none).
func SetDeviceTag(ctx context.Context, tx *db.Tx, portID, tag string) error {
	var v any
	if tag != "" {
		v = tag
	}
	if _, err := tx.Exec(ctx, `UPDATE ports SET device_tag = ? WHERE id = ?`, v, portID); err != nil {
		return fmt.Errorf("tag port %s: %w", portID, err)
	}
	return nil
}

// TagNIC records the tag of a server's interface whose port its cell
// makes: the interface has the MAC mac (NICMAC).
func TagNIC(ctx context.Context, tx *db.Tx, server, mac, tag string) error {
	_, err := tx.Exec(ctx, `INSERT INTO server_nic_tags (server_uuid, mac_address, tag) VALUES (?, ?, ?)
		ON CONFLICT (server_uuid, mac_address) DO UPDATE SET tag = excluded.tag`, server, mac, tag)
	if err != nil {
		return fmt.Errorf("tag an interface of %s: %w", server, err)
	}
	return nil
}

// NICMAC is a new MAC for an interface a cell makes on network: one no
// port of the network has.
func NICMAC(ctx context.Context, q db.Querier, network string) (string, error) {
	for range 8 {
		mac := randomMAC()
		used, err := macInUse(ctx, q, network, mac, "")
		if err != nil {
			return "", err
		}
		if !used {
			return mac, nil
		}
	}
	return "", fmt.Errorf("no free MAC on network %s", network)
}

// DeviceTags are the device tags of the ports bound to server, by port id
// (a port without one is not there).
func DeviceTags(ctx context.Context, q db.Querier, server string) (map[string]string, error) {
	type row struct{ port, tag string }
	rows, err := db.Collect(ctx, q, func(s db.Scanner) (row, error) {
		var r row
		return r, s.Scan(&r.port, &r.tag)
	}, `SELECT p.id, COALESCE(p.device_tag, t.tag) FROM ports p
		LEFT JOIN server_nic_tags t ON t.server_uuid = p.device_id AND t.mac_address = p.mac_address AND p.made_by = ?
		WHERE p.device_id = ? AND (p.device_tag IS NOT NULL OR t.tag IS NOT NULL)`, MadeByCell, server)
	if err != nil {
		return nil, fmt.Errorf("device tags of %s: %w", server, err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.port] = r.tag
	}
	return out, nil
}
