package cells

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
)

// Migrations is the cells service's schema, the same in every cell: its
// neighbours (the cells table) and what they last reported.
var Migrations = []db.Migration{
	{Version: 1, Name: "cells table", SQL: `
CREATE TABLE cells (
	path TEXT PRIMARY KEY,
	relation TEXT NOT NULL,
	broker_url TEXT NOT NULL,
	weight_offset DOUBLE PRECISION NOT NULL DEFAULT 0,
	weight_scale DOUBLE PRECISION NOT NULL DEFAULT 1,
	capabilities TEXT NOT NULL DEFAULT '{}',
	report TEXT NOT NULL DEFAULT '',
	last_seen {{bigint}} NOT NULL DEFAULT 0,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL
)`},
}

// Relation is how a neighbour stands to this cell.
type Relation string

// The relations.
const (
	Parent Relation = "parent"
	Child  Relation = "child"
)

// Neighbour is a row of the cells table: a parent or child of this cell.
type Neighbour struct {
	Path         string              `json:"path"`
	Relation     Relation            `json:"relation"`
	BrokerURL    string              `json:"broker_url"`
	WeightOffset float64             `json:"weight_offset"`
	WeightScale  float64             `json:"weight_scale"`
	Capabilities map[string][]string `json:"capabilities,omitempty"`
	// Report is the last capacity report (children only) and LastSeen
	// when it came.
	Report   *capacity.Report `json:"report,omitempty"`
	LastSeen time.Time        `json:"last_seen,omitzero"`
	// Unreachable (children only), when not empty, says why this cell
	// cannot reach the child's inbox now: its connection to the child's
	// broker is down, or the child's inbox stream did not take a publish.
	// The child is down while it is set (IsDown), whatever it reports.
	Unreachable string `json:"unreachable,omitempty"`
}

// storedReport is the report column of the cells table: a child's last
// report and what this cell last saw of the child's inbox. A row written
// before Unreachable existed reads as reachable.
type storedReport struct {
	capacity.Report
	Unreachable string `json:"parent_unreachable,omitempty"`
}

// encodeReport is the report column for a child's report r (nil: none
// yet) and unreachable.
func encodeReport(r *capacity.Report, unreachable string) (string, error) {
	if r == nil && unreachable == "" {
		return "", nil
	}
	sr := storedReport{Unreachable: unreachable}
	if r != nil {
		sr.Report = *r
	}
	b, err := json.Marshal(sr)
	return string(b), err
}

// ErrNeighbourNotFound is returned for a path that is not in the cells table.
var ErrNeighbourNotFound = errors.New("cell not found")

// ValidateNeighbour checks a neighbour row against the cell it is added to:
// a child must be one level below self, a parent one level above, and the
// broker URL must be a nats:// URL.
func ValidateNeighbour(self string, n Neighbour) error {
	if err := cellpath.Validate(self); err != nil {
		return err
	}
	if err := cellpath.Validate(n.Path); err != nil {
		return err
	}
	switch n.Relation {
	case Child:
		if cellpath.Parent(n.Path) != self {
			return fmt.Errorf("child %q is not directly below cell %q (a child's path is %s!NAME)", n.Path, self, self)
		}
	case Parent:
		if cellpath.Parent(self) != n.Path {
			return fmt.Errorf("parent %q is not directly above cell %q", n.Path, self)
		}
	default:
		return fmt.Errorf("relation %q must be %q or %q", n.Relation, Parent, Child)
	}
	u, err := url.Parse(n.BrokerURL)
	if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
		return fmt.Errorf("broker URL %q must look like nats://host:port", broker.Redact(n.BrokerURL))
	}
	if n.WeightScale < 0 {
		return fmt.Errorf("weight scale %v must not be negative", n.WeightScale)
	}
	return nil
}

// AddNeighbour inserts or replaces a neighbour in the cells table of cell
// self (keeping what it last reported).
func AddNeighbour(ctx context.Context, d *db.DB, self string, n Neighbour) error {
	if err := ValidateNeighbour(self, n); err != nil {
		return err
	}
	caps, err := json.Marshal(n.Capabilities)
	if err != nil {
		return err
	}
	if n.Capabilities == nil {
		caps = []byte("{}")
	}
	now := time.Now().UnixMicro()
	return d.InTx(ctx, func(tx *db.Tx) error {
		if n.Relation == Parent {
			var other string
			err := tx.QueryRow(ctx, `SELECT path FROM cells WHERE relation = 'parent' AND path <> ?`, n.Path).Scan(&other)
			if err == nil {
				return fmt.Errorf("cell %q already has parent %q; remove it first", self, other)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		res, err := tx.Exec(ctx, `UPDATE cells SET relation = ?, broker_url = ?, weight_offset = ?, weight_scale = ?, capabilities = ?, updated_at = ? WHERE path = ?`,
			string(n.Relation), n.BrokerURL, n.WeightOffset, n.WeightScale, string(caps), now, n.Path)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 1 {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO cells (path, relation, broker_url, weight_offset, weight_scale, capabilities, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			n.Path, string(n.Relation), n.BrokerURL, n.WeightOffset, n.WeightScale, string(caps), now, now)
		return err
	})
}

// RemoveNeighbour deletes a neighbour.
func RemoveNeighbour(ctx context.Context, d *db.DB, path string) error {
	res, err := d.Exec(ctx, `DELETE FROM cells WHERE path = ?`, path)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %q", ErrNeighbourNotFound, path)
	}
	return nil
}

// Querier is a database or a transaction. Code that runs inside a
// transaction must read through it: on SQLite a second connection could
// wait behind the transaction's own write lock.
type Querier = db.Querier

// ListNeighbours reads the cells table.
func ListNeighbours(ctx context.Context, d Querier) ([]Neighbour, error) {
	rows, err := d.Query(ctx, `SELECT path, relation, broker_url, weight_offset, weight_scale, capabilities, report, last_seen FROM cells ORDER BY path`)
	if err != nil {
		return nil, fmt.Errorf("cells table: %w", err)
	}
	defer rows.Close()
	var out []Neighbour
	for rows.Next() {
		var n Neighbour
		var rel, caps, report string
		var seen int64
		if err := rows.Scan(&n.Path, &rel, &n.BrokerURL, &n.WeightOffset, &n.WeightScale, &caps, &report, &seen); err != nil {
			return nil, fmt.Errorf("cells table: %w", err)
		}
		n.Relation = Relation(rel)
		if caps != "" && caps != "{}" && caps != "null" {
			_ = json.Unmarshal([]byte(caps), &n.Capabilities)
		}
		if report != "" {
			var sr storedReport
			if json.Unmarshal([]byte(report), &sr) == nil {
				n.Report, n.Unreachable = &sr.Report, sr.Unreachable
			}
		}
		n.LastSeen = db.FromMicros(seen)
		out = append(out, n)
	}
	return out, rows.Err()
}

// recordReport stores a child's capacity report and when it came, with
// what this cell sees of the child's inbox (unreachable).
func recordReport(ctx context.Context, d *db.DB, child string, r capacity.Report, unreachable string, at time.Time) (bool, error) {
	b, err := encodeReport(&r, unreachable)
	if err != nil {
		return false, err
	}
	res, err := d.Exec(ctx, `UPDATE cells SET report = ?, last_seen = ? WHERE path = ? AND relation = 'child'`, b, at.UnixMicro(), child)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// recordUnreachable stores what this cell sees of a child's inbox with
// the child's last report r (nil: none yet), leaving when it came alone.
func recordUnreachable(ctx context.Context, d *db.DB, child string, r *capacity.Report, unreachable string) error {
	b, err := encodeReport(r, unreachable)
	if err != nil {
		return err
	}
	_, err = d.Exec(ctx, `UPDATE cells SET report = ? WHERE path = ? AND relation = 'child'`, b, child)
	return err
}
