package instanceops

import (
	"context"
	"sync"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// askedHosts is a scheduler that places on the requested host, else on
// h1; it records the zone and host of each request.
type askedHosts struct {
	mu    sync.Mutex
	asked [][2]string
}

func (a *askedHosts) Select(_ context.Context, req *hostsched.Request) ([]hostsched.Selection, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, [2]string{req.AvailabilityZone, req.RequestedHost})
	if req.RequestedHost != "" {
		return []hostsched.Selection{{Host: req.RequestedHost}}, nil
	}
	return []hostsched.Selection{{Host: "h1"}}, nil
}

// TestUnshelveToAHost (2.91): an offloaded instance in az1 unshelved
// with host h2 and any_zone is scheduled on h2 alone in no particular
// zone, and takes h2's zone (az2) as its own; with a host and a zone it is
// scheduled on that host in that zone. The action arriving again (a
// redelivery) leaves the ACTIVE instance where it is.
func TestUnshelveToAHost(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		c := newShelveCell(t, d, 0)
		sched := &askedHosts{}
		c.o.cfg.Scheduler = sched
		for host, zone := range map[string]string{"h1": "az1", "h2": "az2"} {
			if err := celldb.RegisterNode(ctx, d, celldb.Node{Host: host, Enabled: true, VCPUs: 8, RAMMB: 8192, DiskGB: 100,
				CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, t0); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Exec(ctx, `UPDATE compute_nodes SET availability_zone = ? WHERE host = ?`, zone, host); err != nil {
				t.Fatal(err)
			}
		}
		az1 := "az1"
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return celldb.Set(ctx, tx, c.uuid, nil, celldb.Change{AvailabilityZone: &az1}, t0)
		}); err != nil {
			t.Fatal(err)
		}
		c.act("shelve", "req-1", &wire.ActionParams{ImageRef: "img-1"})
		c.work()
		c.is("offloaded", vmstate.ShelvedOffloaded, "", vmstate.Shutdown, "")

		c.act("unshelve", "req-2", &wire.ActionParams{ImageRef: "img-1", Host: "h2", AnyZone: true})
		c.work()
		c.is("unshelved to h2", vmstate.Active, "", vmstate.Running, "h2")
		if z := c.instance().AvailabilityZone; z != "az2" {
			t.Errorf("zone after the unshelve to h2: %q, want az2 (its host's)", z)
		}
		// Twice: refused by the state, nothing moves.
		c.act("unshelve", "req-2", &wire.ActionParams{ImageRef: "img-1", Host: "h2", AnyZone: true})
		c.work()
		c.is("unshelve again", vmstate.Active, "", vmstate.Running, "h2")

		c.act("shelve", "req-3", &wire.ActionParams{ImageRef: "img-2"})
		c.work()
		c.act("unshelve", "req-4", &wire.ActionParams{ImageRef: "img-2", Host: "h1", AvailabilityZone: "az1"})
		c.work()
		c.is("unshelved to h1 in az1", vmstate.Active, "", vmstate.Running, "h1")
		if z := c.instance().AvailabilityZone; z != "az1" {
			t.Errorf("zone after the unshelve to h1: %q, want az1", z)
		}
		if want := [][2]string{{"", "h2"}, {"az1", "h1"}}; len(sched.asked) != 2 || sched.asked[0] != want[0] || sched.asked[1] != want[1] {
			t.Errorf("asked of the scheduler %v, want %v", sched.asked, want)
		}
	})
}
