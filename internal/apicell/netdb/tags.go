package netdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// Tags of networks and subnets (Neutron's standard-attr-tag): a list of
// unique strings per resource, kept in the order they were set, in their own
// table (a security group's tags are a column of its row). Changing a
// resource's tags gives it a new revision, as any other change does.

// tagsMigration is the table of the networks' and subnets' tags.
var tagsMigration = db.Migration{Version: 6, Name: "tags of networks and subnets", SQL: `
CREATE TABLE resource_tags (
	resource TEXT NOT NULL,
	resource_id TEXT NOT NULL,
	tag TEXT NOT NULL,
	position INTEGER NOT NULL,
	PRIMARY KEY (resource, resource_id, tag)
)`}

// Tagged resources: the collection (and table) names.
const (
	TagNetworks = "networks"
	TagSubnets  = "subnets"
)

// tagTable checks that resource is one whose tags are in resource_tags.
func tagTable(resource string) error {
	if resource != TagNetworks && resource != TagSubnets {
		return fmt.Errorf("tags: no resource %q", resource)
	}
	return nil
}

// AllTags reads the tags of every resource of a kind, by resource id (a
// resource without tags is not in the map).
func AllTags(ctx context.Context, q db.Querier, resource string) (map[string][]string, error) {
	if err := tagTable(resource); err != nil {
		return nil, err
	}
	type row struct{ id, tag string }
	rows, err := db.Collect(ctx, q, func(s db.Scanner) (row, error) {
		var r row
		return r, s.Scan(&r.id, &r.tag)
	}, `SELECT resource_id, tag FROM resource_tags WHERE resource = ? ORDER BY resource_id, position`, resource)
	if err != nil {
		return nil, fmt.Errorf("tags of %s: %w", resource, err)
	}
	out := map[string][]string{}
	for _, r := range rows {
		out[r.id] = append(out[r.id], r.tag)
	}
	return out, nil
}

// Tags reads one resource's tags (empty, not nil, when it has none; the
// caller checks that the resource exists).
func Tags(ctx context.Context, q db.Querier, resource, id string) ([]string, error) {
	if err := tagTable(resource); err != nil {
		return nil, err
	}
	tags, err := db.Collect(ctx, q, func(s db.Scanner) (string, error) {
		var t string
		return t, s.Scan(&t)
	}, `SELECT tag FROM resource_tags WHERE resource = ? AND resource_id = ? ORDER BY position`, resource, id)
	if err != nil {
		return nil, fmt.Errorf("tags of %s %s: %w", resource, id, err)
	}
	if tags == nil {
		tags = []string{}
	}
	return tags, nil
}

// SetTags replaces a network's or subnet's tags (unique; the caller
// validates them) and, when they change, gives it a new revision. The
// resource's row is held until tx ends; a missing one is
// NetworkNotFound or SubnetNotFound.
func SetTags(ctx context.Context, tx *db.Tx, resource, id string, tags []string, now time.Time) error {
	if err := tagTable(resource); err != nil {
		return err
	}
	if err := lockRow(ctx, tx, resource, id); err != nil {
		return err
	}
	var rev int64
	err := tx.QueryRow(ctx, `SELECT revision_number FROM `+resource+` WHERE id = ?`, id).Scan(&rev)
	if errors.Is(err, sql.ErrNoRows) {
		if resource == TagNetworks {
			return networkNotFound(id)
		}
		return subnetNotFound(id)
	}
	if err != nil {
		return fmt.Errorf("set tags of %s %s: %w", resource, id, err)
	}
	have, err := Tags(ctx, tx, resource, id)
	if err != nil {
		return err
	}
	if slices.Equal(have, tags) {
		return nil
	}
	if err := deleteTags(ctx, tx, resource, id); err != nil {
		return err
	}
	for i, t := range tags {
		if _, err := tx.Exec(ctx, `INSERT INTO resource_tags (resource, resource_id, tag, position) VALUES (?, ?, ?, ?)`,
			resource, id, t, i); err != nil {
			return fmt.Errorf("set tags of %s %s: %w", resource, id, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE `+resource+` SET revision_number = ?, updated_at = ? WHERE id = ?`,
		rev+1, db.Micros(now), id); err != nil {
		return fmt.Errorf("set tags of %s %s: %w", resource, id, err)
	}
	return nil
}

// HoldTagged holds the row of a network, subnet, security group or port
// (resource: its table) until tx ends, so that a change of its tags that
// reads them first loses no other's (PostgreSQL; a SQLite transaction
// holds the write lock already). A missing row is left for the caller's
// read to report.
func HoldTagged(ctx context.Context, tx *db.Tx, resource, id string) error {
	if resource != "security_groups" && resource != "ports" {
		if err := tagTable(resource); err != nil {
			return err
		}
	}
	return lockRow(ctx, tx, resource, id)
}

// deleteTags removes a resource's tags (with the resource).
func deleteTags(ctx context.Context, tx *db.Tx, resource, id string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM resource_tags WHERE resource = ? AND resource_id = ?`, resource, id); err != nil {
		return fmt.Errorf("delete the tags of %s %s: %w", resource, id, err)
	}
	return nil
}
