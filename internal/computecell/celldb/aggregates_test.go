package celldb_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func TestNodeAggregatesOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		aggs []map[string]string
		want celldb.NodeAggregates
	}{
		{"no aggregate", nil, celldb.NodeAggregates{Zone: "nova", CPURatio: -1, RAMRatio: -1, DiskRatio: -1}},
		{"aggregate without zone", []map[string]string{{"ssd": "true"}}, celldb.NodeAggregates{Zone: "nova", CPURatio: -1, RAMRatio: -1, DiskRatio: -1}},
		{"zone", []map[string]string{{"ssd": "true"}, {"availability_zone": "az1"}}, celldb.NodeAggregates{Zone: "az1", CPURatio: -1, RAMRatio: -1, DiskRatio: -1}},
		{"same zone twice", []map[string]string{{"availability_zone": "az1"}, {"availability_zone": "az1"}}, celldb.NodeAggregates{Zone: "az1", CPURatio: -1, RAMRatio: -1, DiskRatio: -1}},
		{"two zones joined sorted", []map[string]string{{"availability_zone": "b"}, {"availability_zone": "a"}}, celldb.NodeAggregates{Zone: "a,b", CPURatio: -1, RAMRatio: -1, DiskRatio: -1}},
		{"smallest ratio", []map[string]string{{"cpu_allocation_ratio": "4.0"}, {"cpu_allocation_ratio": " 2 ", "ram_allocation_ratio": "1.5"}},
			celldb.NodeAggregates{Zone: "nova", CPURatio: 2, RAMRatio: 1.5, DiskRatio: -1}},
		{"a ratio that is no number keeps the host's", []map[string]string{{"cpu_allocation_ratio": "4"}, {"cpu_allocation_ratio": "lots"}},
			celldb.NodeAggregates{Zone: "nova", CPURatio: -1, RAMRatio: -1, DiskRatio: -1}},
		{"zero and negative ratios fit nothing", []map[string]string{{"disk_allocation_ratio": "-3", "ram_allocation_ratio": "0"}},
			celldb.NodeAggregates{Zone: "nova", CPURatio: -1, RAMRatio: 0, DiskRatio: 0}},
	} {
		if got := celldb.NodeAggregatesOf(tc.aggs, "nova"); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// setZones puts each host in an aggregate whose zone is given, one
// aggregate per zone, by a snapshot newer than the one held.
func setZones(t *testing.T, d *db.DB, zones map[string]string) {
	t.Helper()
	v, _, err := celldb.HostAggregatesState(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	m := &wire.HostAggregates{Version: v + 1, DefaultZone: "nova"}
	ids := map[string]int{}
	for _, h := range slices.Sorted(maps.Keys(zones)) {
		z := zones[h]
		i, ok := ids[z]
		if !ok {
			i = len(m.Aggregates)
			ids[z] = i
			m.Aggregates = append(m.Aggregates, wire.HostAggregate{ID: int64(i + 1), UUID: fmt.Sprint("agg-", z), Name: z,
				Metadata: map[string]string{"availability_zone": z}})
		}
		m.Aggregates[i].Hosts = append(m.Aggregates[i].Hosts, h)
	}
	if !applyAggs(t, d, m) {
		t.Fatalf("zones %v not applied", zones)
	}
}

func applyAggs(t *testing.T, d *db.DB, m *wire.HostAggregates) bool {
	t.Helper()
	var applied bool
	err := d.InTx(context.Background(), func(tx *db.Tx) error {
		var err error
		applied, err = celldb.ApplyHostAggregates(context.Background(), tx, m)
		return err
	})
	if err != nil {
		t.Fatalf("apply version %d: %v", m.Version, err)
	}
	return applied
}

// TestApplyHostAggregates: a snapshot replaces what the cell holds and
// sets its nodes' zones and ratios; an older or repeated one changes
// nothing; a node that registers later gets what its aggregates give; a
// claim counts the aggregate's ratio.
func TestApplyHostAggregates(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		register(t, d, node("h1", 2), t0)
		register(t, d, node("h2", 2), t0)
		if v, z, err := celldb.HostAggregatesState(ctx, d); err != nil || v != 0 || z != "nova" {
			t.Fatalf("fresh state: %d %q %v", v, z, err)
		}
		v2 := &wire.HostAggregates{Version: 2, DefaultZone: "dflt", Aggregates: []wire.HostAggregate{
			{ID: 1, UUID: "u1", Name: "fast", Metadata: map[string]string{"availability_zone": "az1", "cpu_allocation_ratio": "2"}, Hosts: []string{"h1", "h3"}},
			{ID: 2, UUID: "u2", Name: "ssd", Metadata: map[string]string{"ssd": "true"}, Hosts: []string{"h1", "h2"}},
		}}
		if !applyAggs(t, d, v2) {
			t.Fatal("version 2 not applied")
		}
		if n := getNode(t, d, "h1"); n.AvailabilityZone != "az1" || n.CPURatio != 2 || n.RAMRatio != 1 {
			t.Errorf("h1: zone %q cpu ratio %v ram ratio %v, want az1 2 1", n.AvailabilityZone, n.CPURatio, n.RAMRatio)
		}
		if n := getNode(t, d, "h2"); n.AvailabilityZone != "dflt" || n.CPURatio != 1 {
			t.Errorf("h2: zone %q cpu ratio %v, want dflt 1", n.AvailabilityZone, n.CPURatio)
		}
		md, err := celldb.HostAggregateMetadata(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(md["h1"]) != 2 || len(md["h2"]) != 1 || md["h2"][0]["ssd"] != "true" {
			t.Errorf("metadata by host: %v", md)
		}
		// h1's ratio 2 on 2 vCPUs: four 1-vCPU claims fit, not five.
		for i := range 5 {
			err := d.InTx(ctx, func(tx *db.Tx) error {
				az, err := celldb.ClaimZone(ctx, tx, uuidN(i), "h1", capacity.Flavor{VCPUs: 1, RAMMB: 1, DiskGB: 1}, t0)
				if err == nil && az != "az1" {
					t.Errorf("claim %d: zone %q, want az1", i, az)
				}
				return err
			})
			if i < 4 && err != nil {
				t.Fatalf("claim %d: %v", i, err)
			}
			if i == 4 && !errors.Is(err, celldb.ErrClaimFailed) {
				t.Fatalf("claim past the aggregate's ratio: %v, want ErrClaimFailed", err)
			}
		}
		// A repeat and an older snapshot change nothing.
		v1 := &wire.HostAggregates{Version: 1, DefaultZone: "old"}
		if applyAggs(t, d, v2) || applyAggs(t, d, v1) {
			t.Error("a repeat or an older snapshot was applied")
		}
		held, err := celldb.HeldAggregates(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if want := v2.Aggregates; !reflect.DeepEqual(held, want) {
			t.Errorf("held %+v, want %+v", held, want)
		}
		// h3 registers after the snapshot: in az1 at once.
		register(t, d, node("h3", 2), t0)
		if n := getNode(t, d, "h3"); n.AvailabilityZone != "az1" || n.CPURatio != 2 {
			t.Errorf("h3 registered later: zone %q ratio %v", n.AvailabilityZone, n.CPURatio)
		}
		// A re-registration keeps the zone its aggregates give.
		register(t, d, node("h1", 2), t0)
		if n := getNode(t, d, "h1"); n.AvailabilityZone != "az1" {
			t.Errorf("h1 re-registered: zone %q", n.AvailabilityZone)
		}
		// h1 leaves every aggregate: default zone and its own ratio again.
		if !applyAggs(t, d, &wire.HostAggregates{Version: 3, DefaultZone: "dflt", Aggregates: []wire.HostAggregate{
			{ID: 2, UUID: "u2", Name: "ssd", Metadata: map[string]string{"ssd": "true"}, Hosts: []string{"h2"}},
		}}) {
			t.Fatal("version 3 not applied")
		}
		for _, h := range []string{"h1", "h3"} {
			if n := getNode(t, d, h); n.AvailabilityZone != "dflt" || n.CPURatio != 1 {
				t.Errorf("%s after leaving: zone %q ratio %v", h, n.AvailabilityZone, n.CPURatio)
			}
		}
		if v, z, _ := celldb.HostAggregatesState(ctx, d); v != 3 || z != "dflt" {
			t.Errorf("state %d %q, want 3 dflt", v, z)
		}
	})
}
