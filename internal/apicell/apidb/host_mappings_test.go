package apidb_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func applyMappings(t *testing.T, d *db.DB, m wire.HostMappings) {
	t.Helper()
	ctx := context.Background()
	if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.ApplyHostMappings(ctx, tx, m, t0) }); err != nil {
		t.Fatalf("apply %+v: %v", m, err)
	}
}

func nums(t *testing.T, d *db.DB, uuids ...string) map[string]int64 {
	t.Helper()
	n, err := apidb.HostMappingNums(context.Background(), d, uuids)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHostMappingNumbers: every service and hypervisor mapped gets an
// integer unique in the cloud, kept when its cell sends the mapping again
// (a duplicate message, a restart), and found again by it.
func TestHostMappingNumbers(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		svc := func(u, host string) wire.HostMapping {
			return wire.HostMapping{UUID: u, Kind: wire.MappingService, Host: host, Binary: "nova-compute"}
		}
		node := wire.HostMapping{UUID: "n1", Kind: wire.MappingHypervisor, Host: "h1"}
		applyMappings(t, d, wire.HostMappings{Cell: "api!c1", Set: []wire.HostMapping{svc("s1", "h1"), node}})
		applyMappings(t, d, wire.HostMappings{Cell: "api!c2", Set: []wire.HostMapping{svc("s2", "h1")}})
		first := nums(t, d, "s1", "n1", "s2", "unmapped")
		if len(first) != 3 || first["s1"] == first["n1"] || first["s1"] == first["s2"] || first["n1"] == first["s2"] {
			t.Fatalf("numbers %v: want three distinct", first)
		}
		for _, n := range first {
			if n <= 0 {
				t.Fatalf("numbers %v: want positive", first)
			}
		}
		// The same mappings again: the same numbers.
		applyMappings(t, d, wire.HostMappings{Cell: "api!c1", Set: []wire.HostMapping{svc("s1", "h1"), node}})
		if again := nums(t, d, "s1", "n1", "s2"); again["s1"] != first["s1"] || again["n1"] != first["n1"] {
			t.Errorf("numbers after the mappings came again: %v, were %v", again, first)
		}
		m, err := apidb.GetHostMappingByNum(ctx, d, first["s2"], wire.MappingService)
		if err != nil || m.UUID != "s2" || m.Cell != "api!c2" {
			t.Errorf("mapping of number %d: %+v %v", first["s2"], m, err)
		}
		// A number is of one kind: a hypervisor's is no service's.
		if _, err := apidb.GetHostMappingByNum(ctx, d, first["n1"], wire.MappingService); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("service by a hypervisor's number: %v, want not found", err)
		}
		// Removed, then a new one: the new one has a number of its own.
		applyMappings(t, d, wire.HostMappings{Cell: "api!c1", Removed: []string{"s1"}, Set: []wire.HostMapping{svc("s3", "h2")}})
		if n := nums(t, d, "s1", "s3", "s2", "n1"); n["s1"] != 0 || n["s3"] == n["s2"] || n["s3"] == n["n1"] || n["s3"] <= 0 {
			t.Errorf("numbers after a removal and an addition: %v", n)
		}
	})
}

// TestHostMappingNumbersUpgrade: mappings held before the numbers existed
// are numbered by the migration, each differently.
func TestHostMappingNumbersUpgrade(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		i := slices.IndexFunc(apidb.Migrations, func(m db.Migration) bool { return m.Name == "host mapping numbers" })
		if i < 0 {
			t.Fatal("no migration named host mapping numbers")
		}
		before := apidb.Migrations[:i]
		if err := d.Migrate(ctx, "api", before); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{"b", "a", "c"} {
			if _, err := d.Exec(ctx, `INSERT INTO host_mappings (uuid, cell, kind, host, binary_name, updated_at) VALUES (?, 'api!c1', 'service', ?, 'nova-compute', 0)`, u, "h"+u); err != nil {
				t.Fatal(err)
			}
		}
		migrated(t, d)
		n := nums(t, d, "a", "b", "c")
		if n["a"] != 1 || n["b"] != 2 || n["c"] != 3 {
			t.Errorf("numbers after the upgrade: %v, want a=1 b=2 c=3", n)
		}
		applyMappings(t, d, wire.HostMappings{Cell: "api!c1", Set: []wire.HostMapping{{UUID: "d", Kind: wire.MappingService, Host: "hd"}}})
		if n := nums(t, d, "d"); n["d"] != 4 {
			t.Errorf("a mapping after the upgrade: %v, want d=4", n)
		}
	})
}
