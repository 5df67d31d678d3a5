package apidb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// DefaultFlavors are the m1.* flavors every Nova operator knows, with
// Nova's historical ids.
var DefaultFlavors = []wire.Flavor{
	{ID: "1", Name: "m1.tiny", VCPUs: 1, RAMMB: 512, RootGB: 1},
	{ID: "2", Name: "m1.small", VCPUs: 1, RAMMB: 2048, RootGB: 20},
	{ID: "3", Name: "m1.medium", VCPUs: 2, RAMMB: 4096, RootGB: 40},
	{ID: "4", Name: "m1.large", VCPUs: 4, RAMMB: 8192, RootGB: 80},
	{ID: "5", Name: "m1.xlarge", VCPUs: 8, RAMMB: 16384, RootGB: 160},
}

// SeedFlavors creates the default flavors that do not exist yet.
func SeedFlavors(ctx context.Context, d *db.DB) error {
	return d.InTx(ctx, func(tx *db.Tx) error {
		for _, f := range DefaultFlavors {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM flavors WHERE id = ? OR name = ?`, f.ID, f.Name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			if err := CreateFlavor(ctx, tx, f); err != nil {
				return err
			}
		}
		return nil
	})
}

// CreateFlavor inserts a flavor.
func CreateFlavor(ctx context.Context, tx *db.Tx, f wire.Flavor) error {
	specs, _ := json.Marshal(f.ExtraSpecs)
	if f.ExtraSpecs == nil {
		specs = []byte("{}")
	}
	_, err := tx.Exec(ctx, `INSERT INTO flavors (id, name, vcpus, ram_mb, root_gb, ephemeral_gb, swap_mb, extra_specs, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, f.ID, f.Name, f.VCPUs, f.RAMMB, f.RootGB, f.EphemeralGB, f.SwapMB, string(specs), time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("create flavor %s: %w", f.Name, err)
	}
	return nil
}

const flavorCols = `id, name, vcpus, ram_mb, root_gb, ephemeral_gb, swap_mb, extra_specs`

func scanFlavor(r db.Scanner) (wire.Flavor, error) {
	var f wire.Flavor
	var specs string
	if err := r.Scan(&f.ID, &f.Name, &f.VCPUs, &f.RAMMB, &f.RootGB, &f.EphemeralGB, &f.SwapMB, &specs); err != nil {
		return f, err
	}
	_ = json.Unmarshal([]byte(specs), &f.ExtraSpecs)
	return f, nil
}

// GetFlavor reads a flavor by id.
func GetFlavor(ctx context.Context, q Querier, id string) (wire.Flavor, error) {
	f, err := scanFlavor(q.QueryRow(ctx, `SELECT `+flavorCols+` FROM flavors WHERE id = ? AND disabled = 0`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("flavor %s: %w", id, ErrNotFound)
	}
	return f, err
}

// ListFlavors reads every flavor, smallest first.
func ListFlavors(ctx context.Context, q Querier) ([]wire.Flavor, error) {
	return db.Collect(ctx, q, scanFlavor, `SELECT `+flavorCols+` FROM flavors WHERE disabled = 0 ORDER BY ram_mb, id`)
}
