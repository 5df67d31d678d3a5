package instanceops

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// zoneHosts is a scheduler over one host per zone; it records the zones
// asked for.
type zoneHosts struct {
	mu    sync.Mutex
	hosts map[string]string
	asked []string
}

func (z *zoneHosts) Select(_ context.Context, req *hostsched.Request) ([]hostsched.Selection, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.asked = append(z.asked, req.AvailabilityZone)
	h, ok := z.hosts[req.AvailabilityZone]
	if !ok {
		return nil, fmt.Errorf("%w: no host in zone %q", hostsched.ErrNoValidHost, req.AvailabilityZone)
	}
	return []hostsched.Selection{{Host: h}}, nil
}

// TestUnshelveIntoAZone (2.77): an offloaded instance unshelved with a
// zone is scheduled in that zone, not its own, and takes it as its zone;
// a zone with no valid host leaves it SHELVED_OFFLOADED in its old zone,
// task state cleared, the action in error with Nova's "No valid host"
// (its conductor's NoValidHost). Without a zone it is scheduled in its
// own.
func TestUnshelveIntoAZone(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		c := newShelveCell(t, d, 0)
		sched := &zoneHosts{hosts: map[string]string{"az1": "h1", "az2": "h2"}}
		c.o.cfg.Scheduler = sched
		az1 := "az1"
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return celldb.Set(ctx, tx, c.uuid, nil, celldb.Change{AvailabilityZone: &az1}, t0)
		}); err != nil {
			t.Fatal(err)
		}
		c.act("shelve", "req-1", &wire.ActionParams{ImageRef: "img-1"})
		c.work()
		c.is("offloaded", vmstate.ShelvedOffloaded, "", vmstate.Shutdown, "")

		// A zone nobody in the cell has: no valid host.
		c.act("unshelve", "req-2", &wire.ActionParams{ImageRef: "img-1", AvailabilityZone: "az9"})
		c.work()
		c.is("no valid host", vmstate.ShelvedOffloaded, "", vmstate.Shutdown, "")
		if z := c.instance().AvailabilityZone; z != "az1" {
			t.Errorf("zone after no valid host: %q, want az1", z)
		}
		acts, err := celldb.ListActions(ctx, d, c.uuid, "req-2")
		if err != nil || len(acts) != 1 || acts[0].Action != "unshelve" || acts[0].Message != "Error" || len(acts[0].Events) != 1 ||
			acts[0].Events[0].Result != "Error" || !strings.Contains(acts[0].Events[0].Traceback, "No valid host was found.") {
			t.Errorf("unshelve action %+v (%v), want an Error with No valid host", acts, err)
		}

		// Into az2: its host there, and az2 its zone.
		c.act("unshelve", "req-3", &wire.ActionParams{ImageRef: "img-1", AvailabilityZone: "az2"})
		c.work()
		c.is("unshelved into az2", vmstate.Active, "", vmstate.Running, "h2")
		if z := c.instance().AvailabilityZone; z != "az2" {
			t.Errorf("zone after the unshelve: %q, want az2", z)
		}

		// Shelved again and unshelved without a zone: its own (az2).
		c.act("shelve", "req-4", &wire.ActionParams{ImageRef: "img-2"})
		c.work()
		c.act("unshelve", "req-5", &wire.ActionParams{ImageRef: "img-2"})
		c.work()
		c.is("unshelved in its zone", vmstate.Active, "", vmstate.Running, "h2")
		if want := []string{"az9", "az2", "az2"}; !slices.Equal(sched.asked, want) {
			t.Errorf("zones asked of the scheduler %v, want %v", sched.asked, want)
		}
	})
}
