package netdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
)

// SeedProjectID owns the network that Seed creates.
const SeedProjectID = "admin"

// DefaultMTU is a new network's MTU when none is given.
const DefaultMTU = 1500

const networkCols = `id, name, project_id, description, shared, admin_state_up, mtu, revision_number, created_at, updated_at`

func scanNetwork(r db.Scanner) (*Network, error) {
	var n Network
	var shared, up int
	var created, updated int64
	if err := r.Scan(&n.ID, &n.Name, &n.ProjectID, &n.Description, &shared, &up, &n.MTU, &n.RevisionNumber, &created, &updated); err != nil {
		return nil, err
	}
	n.Shared, n.AdminStateUp = shared != 0, up != 0
	n.CreatedAt, n.UpdatedAt = db.FromMicros(created), db.FromMicros(updated)
	n.Subnets = []string{}
	return &n, nil
}

func networkNotFound(id string) error {
	return fail(ErrNotFound, "NetworkNotFound", fmt.Sprintf("Network %s could not be found.", id))
}

// subnetIDs fills in each network's subnet ids.
func subnetIDs(ctx context.Context, q db.Querier, nets []*Network) error {
	if len(nets) == 0 {
		return nil
	}
	byID := make(map[string]*Network, len(nets))
	for _, n := range nets {
		byID[n.ID] = n
	}
	type pair struct{ net, id string }
	var pairs []pair
	var err error
	if len(nets) == 1 {
		pairs, err = db.Collect(ctx, q, func(s db.Scanner) (pair, error) {
			var p pair
			return p, s.Scan(&p.net, &p.id)
		}, `SELECT network_id, id FROM subnets WHERE network_id = ? ORDER BY created_at, id`, nets[0].ID)
	} else {
		pairs, err = db.Collect(ctx, q, func(s db.Scanner) (pair, error) {
			var p pair
			return p, s.Scan(&p.net, &p.id)
		}, `SELECT network_id, id FROM subnets ORDER BY created_at, id`)
	}
	if err != nil {
		return fmt.Errorf("list subnet ids: %w", err)
	}
	for _, p := range pairs {
		if n := byID[p.net]; n != nil {
			n.Subnets = append(n.Subnets, p.id)
		}
	}
	return nil
}

// ListNetworks returns every network, by id. There are few networks (only
// admins create them), so callers filter and page in memory.
func ListNetworks(ctx context.Context, q db.Querier) ([]*Network, error) {
	nets, err := db.Collect(ctx, q, scanNetwork, `SELECT `+networkCols+` FROM networks ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	return nets, subnetIDs(ctx, q, nets)
}

func getNetworkBy(ctx context.Context, q db.Querier, col, v string) (*Network, error) {
	n, err := scanNetwork(q.QueryRow(ctx, `SELECT `+networkCols+` FROM networks WHERE `+col+` = ?`, v))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, networkNotFound(v)
	}
	if err != nil {
		return nil, fmt.Errorf("get network %s: %w", v, err)
	}
	return n, subnetIDs(ctx, q, []*Network{n})
}

// NetworkByID reads one network by id only.
func NetworkByID(ctx context.Context, q db.Querier, id string) (*Network, error) {
	return getNetworkBy(ctx, q, "id", id)
}

// GetNetwork finds a network by id, or else by name (names are unique). It
// does not check who may see it: see Network.VisibleTo. The Compute API
// uses it to check networks: [{"uuid": ...}] on a server create.
func GetNetwork(ctx context.Context, q db.Querier, idOrName string) (*Network, error) {
	if idOrName == "" {
		return nil, networkNotFound(idOrName)
	}
	n, err := getNetworkBy(ctx, q, "id", idOrName)
	if !errors.Is(err, ErrNotFound) {
		return n, err
	}
	return getNetworkBy(ctx, q, "name", idOrName)
}

func nameTaken(name string) error {
	return fail(ErrConflict, "Conflict", fmt.Sprintf(
		"A network named '%s' already exists: network names are unique in this cloud because compute cells address networks by name.", name))
}

// CreateNetwork inserts n, filling in its id (when empty), revision and
// times.
func CreateNetwork(ctx context.Context, tx *db.Tx, n *Network, now time.Time) error {
	if n.ID == "" {
		n.ID = uuid.NewString()
	}
	if n.MTU == 0 {
		n.MTU = DefaultMTU
	}
	if n.Name != "" {
		if _, err := getNetworkBy(ctx, tx, "name", n.Name); err == nil {
			return nameTaken(n.Name)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	n.RevisionNumber, n.CreatedAt, n.UpdatedAt = 1, now.UTC(), now.UTC()
	n.Subnets = []string{}
	_, err := tx.Exec(ctx, `INSERT INTO networks (`+networkCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		n.ID, n.Name, n.ProjectID, n.Description, boolInt(n.Shared), boolInt(n.AdminStateUp), n.MTU, n.RevisionNumber,
		db.Micros(now), db.Micros(now))
	if db.IsUniqueViolation(err) {
		// Another transaction took the name since the check above (on
		// PostgreSQL this one cannot read any more: report the name).
		if n.Name != "" {
			return nameTaken(n.Name)
		}
		return fail(ErrConflict, "Conflict", fmt.Sprintf("A network with id %s already exists.", n.ID))
	}
	if err != nil {
		return fmt.Errorf("create network: %w", err)
	}
	return nil
}

// NetworkPatch is an update: nil fields stay as they are.
type NetworkPatch struct {
	Name         *string
	Description  *string
	Shared       *bool
	AdminStateUp *bool
	MTU          *int
}

// UpdateNetwork changes a network. A network that has ports keeps its name
// (the cells and the instances' addresses know it by name), and stops being
// shared only when no other project has ports on it (as Neutron).
func UpdateNetwork(ctx context.Context, tx *db.Tx, id string, p NetworkPatch, now time.Time) (*Network, error) {
	n, err := getNetworkBy(ctx, tx, "id", id)
	if err != nil {
		return nil, err
	}
	renamed := p.Name != nil && *p.Name != n.Name
	unshared := p.Shared != nil && !*p.Shared && n.Shared
	if renamed || unshared {
		all, others, err := PortsOnNetwork(ctx, tx, n.ID, n.ProjectID)
		if err != nil {
			return nil, err
		}
		if renamed && n.Name != "" && all > 0 {
			return nil, fail(ErrInUse, "NetworkInUse", fmt.Sprintf(
				"Unable to complete operation on network %s. The compute cells know a network by its name and there are one or more ports still in use on the network, so it cannot be renamed.", n.ID))
		}
		if unshared && others > 0 {
			return nil, fail(ErrConflict, "InvalidSharedSetting", fmt.Sprintf(
				"Unable to reconfigure sharing settings for network %s. Multiple tenants are using it.", n.ID))
		}
	}
	if renamed && *p.Name != "" {
		if _, err := getNetworkBy(ctx, tx, "name", *p.Name); err == nil {
			return nil, nameTaken(*p.Name)
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	before := *n
	if p.Name != nil {
		n.Name = *p.Name
	}
	if p.Description != nil {
		n.Description = *p.Description
	}
	if p.Shared != nil {
		n.Shared = *p.Shared
	}
	if p.AdminStateUp != nil {
		n.AdminStateUp = *p.AdminStateUp
	}
	if p.MTU != nil {
		n.MTU = *p.MTU
	}
	if n.Name == before.Name && n.Description == before.Description && n.Shared == before.Shared &&
		n.AdminStateUp == before.AdminStateUp && n.MTU == before.MTU {
		return n, nil // nothing changes: no new revision
	}
	n.RevisionNumber++
	n.UpdatedAt = now.UTC()
	_, err = tx.Exec(ctx, `UPDATE networks SET name = ?, description = ?, shared = ?, admin_state_up = ?, mtu = ?,
		revision_number = ?, updated_at = ? WHERE id = ?`,
		n.Name, n.Description, boolInt(n.Shared), boolInt(n.AdminStateUp), n.MTU, n.RevisionNumber, db.Micros(now), n.ID)
	if db.IsUniqueViolation(err) {
		return nil, nameTaken(n.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("update network %s: %w", id, err)
	}
	return n, nil
}

// DeleteNetwork deletes a network and its subnets, unless it has ports
// (NetworkInUse, as Neutron).
func DeleteNetwork(ctx context.Context, tx *db.Tx, id string) error {
	n, err := getNetworkBy(ctx, tx, "id", id)
	if err != nil {
		return err
	}
	if all, _, err := PortsOnNetwork(ctx, tx, id, n.ProjectID); err != nil {
		return err
	} else if all > 0 {
		return fail(ErrInUse, "NetworkInUse", fmt.Sprintf(
			"Unable to complete operation on network %s. There are one or more ports still in use on the network.", n.ID))
	}
	// The subnets' blocks go with them, as with a subnet's delete.
	if _, err := tx.Exec(ctx, `DELETE FROM address_blocks WHERE subnet_id IN (SELECT id FROM subnets WHERE network_id = ?)`, id); err != nil {
		return fmt.Errorf("delete the address blocks of network %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM resource_tags WHERE resource = ? AND resource_id IN (SELECT id FROM subnets WHERE network_id = ?)`,
		TagSubnets, id); err != nil {
		return fmt.Errorf("delete the tags of the subnets of network %s: %w", id, err)
	}
	if err := deleteTags(ctx, tx, TagNetworks, id); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM subnets WHERE network_id = ?`, id); err != nil {
		return fmt.Errorf("delete subnets of network %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM networks WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete network %s: %w", id, err)
	}
	return nil
}

// Seed makes sure the default network exists: a shared network called name,
// owned by project owner (the admin project's id; SeedProjectID when it is
// not known), with one subnet of cidr (gateway the first address, the rest
// in one allocation pool), in a database whose "netapi" set is migrated.
// It is idempotent and safe to run from several processes at once: an
// existing network of that name is left as it is (given a subnet if it has
// none; given owner if it was seeded before the owner was known), and its
// id is returned.
func Seed(ctx context.Context, d *db.DB, name, cidr, owner string) (networkID string, err error) {
	if owner == "" {
		owner = SeedProjectID
	}
	if name == "" {
		return "", errors.New("seed network: a name is required")
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return "", fmt.Errorf("seed network %s: CIDR %q must be an IPv4 prefix of at most /30", name, cidr)
	}
	now := time.Now()
	for attempt := 0; ; attempt++ {
		err = d.InTx(ctx, func(tx *db.Tx) error {
			n, err := getNetworkBy(ctx, tx, "name", name)
			switch {
			case errors.Is(err, ErrNotFound):
				n = &Network{Name: name, ProjectID: owner, Shared: true, AdminStateUp: true, MTU: DefaultMTU}
				if err := CreateNetwork(ctx, tx, n, now); err != nil {
					return err
				}
			case err != nil:
				return err
			case n.ProjectID == SeedProjectID && owner != SeedProjectID:
				// Seeded by an earlier release with the admin project's
				// name where its id belongs.
				if _, err := tx.Exec(ctx, `UPDATE networks SET project_id = ?, revision_number = revision_number + 1, updated_at = ? WHERE id = ?`,
					owner, db.Micros(now), n.ID); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `UPDATE subnets SET project_id = ? WHERE network_id = ? AND project_id = ?`, owner, n.ID, SeedProjectID); err != nil {
					return err
				}
				n.ProjectID = owner
			}
			networkID = n.ID
			if len(n.Subnets) > 0 {
				return nil
			}
			_, err = CreateSubnet(ctx, tx, SubnetSpec{NetworkID: n.ID, Name: name + "-subnet", ProjectID: n.ProjectID,
				IPVersion: 4, CIDR: p.Masked().String(), EnableDHCP: true}, now)
			return err
		})
		// Another process seeding at the same moment wins the insert;
		// the next attempt finds its network.
		if attempt < 2 && (db.IsUniqueViolation(err) || errors.Is(err, ErrConflict)) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("seed network %s: %w", name, err)
		}
		return networkID, nil
	}
}
