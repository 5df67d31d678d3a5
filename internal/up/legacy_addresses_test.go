package up_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/up"
)

// TestRestartOfADataDirWithStaticShares: a data directory whose compute
// cells still have the schema and fixed IPs of a static share (before cell
// migration 6) starts again; its instances keep their addresses, and new
// builds get addresses from blocks leased by the API cell.
func TestRestartOfADataDirWithStaticShares(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	opts := up.Options{DataDir: dir, Cells: 2, HostsPerCell: 2, Listen: "127.0.0.1:0", ReportInterval: 200 * time.Millisecond}
	tree, err := up.Start(ctx, opts, log)
	if err != nil {
		t.Fatal(err)
	}
	first := build(t, tree, 4)
	waitActive(t, tree, first)
	var cellDBs []string
	for _, c := range tree.Cells {
		cellDBs = append(cellDBs, c.Config().Database)
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	tree.Shutdown(sctx)
	cancel()

	// Back to the schema of a static share: each instance's address a
	// row of the old fixed_ips, in 10.<i>.0.0/16.
	for i, dsn := range cellDBs {
		d, err := db.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		err = d.InTx(ctx, func(tx *db.Tx) error {
			for _, q := range []string{
				`CREATE TABLE old_fixed_ips (address_int BIGINT PRIMARY KEY, address TEXT NOT NULL, network TEXT NOT NULL,
					instance_uuid TEXT UNIQUE, mac TEXT NOT NULL DEFAULT '', updated_at BIGINT NOT NULL)`,
				`INSERT INTO old_fixed_ips SELECT 167772160 + ? * 65536 + ROW_NUMBER() OVER (ORDER BY instance_uuid) + 1,
					'10.' || ? || '.0.' || (ROW_NUMBER() OVER (ORDER BY instance_uuid) + 1), network, instance_uuid, mac, updated_at
					FROM fixed_ips WHERE instance_uuid IS NOT NULL`,
				`DROP TABLE fixed_ips`, `DROP TABLE address_blocks`, `DROP TABLE lease_requests`,
				`ALTER TABLE old_fixed_ips RENAME TO fixed_ips`,
				`DELETE FROM schema_migrations WHERE set_name = 'compute' AND version IN (6, 8)`, // 8 alters address_blocks
			} {
				var args []any
				if strings.HasPrefix(q, "INSERT") {
					args = []any{i + 1, i + 1}
				}
				if _, err := tx.Exec(ctx, q, args...); err != nil {
					return err
				}
			}
			return nil
		})
		d.Close()
		if err != nil {
			t.Fatalf("cell %d back to a static share: %v", i+1, err)
		}
	}

	restarted := time.Now()
	tree, err = up.Start(ctx, opts, log)
	if err != nil {
		t.Fatalf("restart on a data dir with static shares: %v", err)
	}
	t.Cleanup(func() { tree.Shutdown(context.Background()) })
	// Ready on reports of this start, not on those the run before left
	// in the API cell's cells table (they would count as down within
	// cells.down_after, and a first build find no cell).
	ns, err := cells.ListNeighbours(ctx, tree.API.DB)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.Relation == cells.Child && n.LastSeen.Before(restarted) {
			t.Errorf("ready with %s last heard %v, before the restart at %v", n.Path, n.LastSeen, restarted)
		}
	}
	for _, u := range first {
		in, err := apidb.Get(ctx, tree.API.DB, u)
		if err != nil || in.VMState != "active" || len(in.Addresses) != 1 {
			t.Errorf("instance %s after the restart: %+v, %v", u, in, err)
		}
	}
	second := build(t, tree, 4)
	waitActive(t, tree, second)
	// The old addresses stay with their instances in the cells.
	kept := 0
	for i, c := range tree.Cells {
		var n int
		if err := c.DB.QueryRow(ctx, `SELECT COUNT(*) FROM fixed_ips WHERE subnet_id = '' AND instance_uuid IS NOT NULL AND address LIKE ?`,
			fmt.Sprintf("10.%d.0.%%", i+1)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		kept += n
	}
	if kept != len(first) {
		t.Errorf("the cells keep %d addresses of their static shares, want %d", kept, len(first))
	}
	seen := map[string]bool{}
	for _, u := range second {
		in, err := apidb.Get(ctx, tree.API.DB, u)
		if err != nil || len(in.Addresses) != 1 || in.Addresses[0].SubnetID == "" || seen[in.Addresses[0].Addr] {
			t.Errorf("new instance %s: %+v, %v; want an address of its own from a leased block", u, in, err)
			continue
		}
		seen[in.Addresses[0].Addr] = true
	}
}
