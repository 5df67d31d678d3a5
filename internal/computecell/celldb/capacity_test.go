package celldb_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestCapacityZonesAndAggregates: the report counts each live host's room
// in its effective zone, and sums up its aggregates' metadata and project
// isolation; disabled and stale hosts count in neither.
func TestCapacityZonesAndAggregates(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		now := t0.Add(time.Hour)
		const downAfter = time.Minute
		for _, h := range []celldb.Node{node("fast1", 8), node("iso1", 4), node("plain", 2), node("off", 16)} {
			register(t, d, h, now)
		}
		register(t, d, node("stale", 32), now.Add(-downAfter-time.Second))
		if _, err := d.Exec(ctx, `UPDATE compute_nodes SET enabled = 0 WHERE host = ?`, "off"); err != nil {
			t.Fatal(err)
		}
		applyAggs(t, d, &wire.HostAggregates{Version: 1, DefaultZone: "nova", Aggregates: []wire.HostAggregate{
			{ID: 1, UUID: "u1", Name: "fast", Metadata: map[string]string{"availability_zone": "az1", "ssd": "true"}, Hosts: []string{"fast1", "iso1"}},
			{ID: 2, UUID: "u2", Name: "iso", Metadata: map[string]string{"filter_tenant_id": "p1, p2"}, Hosts: []string{"iso1"}},
			{ID: 3, UUID: "u3", Name: "gpu", Metadata: map[string]string{"gpu": "a100", "availability_zone": "az9"}, Hosts: []string{"off", "stale"}},
		}})
		one := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}

		r, err := celldb.Capacity(ctx, d, now, downAfter)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"az1", "nova"}; !reflect.DeepEqual(r.AvailabilityZones, want) {
			t.Errorf("zones %v, want %v (not the disabled or stale hosts' az9)", r.AvailabilityZones, want)
		}
		if len(r.ZoneSlots) != 2 {
			t.Errorf("zone slots %+v, want az1's and nova's", r.ZoneSlots)
		}
		for zone, want := range map[string]int{"": 14, "az1": 12, "nova": 2, "az9": 0} {
			if got := r.FitsIn(zone, one); got != want {
				t.Errorf("FitsIn(%q) = %d, want %d", zone, got, want)
			}
		}
		want := &capacity.Aggregates{OpenToAll: true, Metadata: map[string][]string{"availability_zone": {"az1"}, "ssd": {"true"}}}
		if !reflect.DeepEqual(r.Aggregates, want) {
			t.Errorf("aggregates %+v, want %+v", r.Aggregates, want)
		}

		// Only the isolated host left live: one zone (no zone slots), and
		// the projects it takes.
		if _, err := d.Exec(ctx, `UPDATE compute_nodes SET enabled = 0 WHERE host IN ('fast1', 'plain')`); err != nil {
			t.Fatal(err)
		}
		r, err = celldb.Capacity(ctx, d, now, downAfter)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.AvailabilityZones, []string{"az1"}) || r.ZoneSlots != nil || r.FitsIn("az1", one) != 4 {
			t.Errorf("zones %v, zone slots %+v, fits in az1 %d; want [az1], none, 4", r.AvailabilityZones, r.ZoneSlots, r.FitsIn("az1", one))
		}
		want = &capacity.Aggregates{Projects: []string{"p1", "p2"}, Metadata: map[string][]string{"availability_zone": {"az1"}, "ssd": {"true"}}}
		if !reflect.DeepEqual(r.Aggregates, want) {
			t.Errorf("aggregates %+v, want %+v", r.Aggregates, want)
		}

		// No live host: nothing to say of aggregates.
		if _, err := d.Exec(ctx, `UPDATE compute_nodes SET enabled = 0`); err != nil {
			t.Fatal(err)
		}
		if r, err = celldb.Capacity(ctx, d, now, downAfter); err != nil || r.Aggregates != nil || len(r.AvailabilityZones) != 0 {
			t.Errorf("no live host: aggregates %+v, zones %v, err %v; want none", r.Aggregates, r.AvailabilityZones, err)
		}
	})
}
