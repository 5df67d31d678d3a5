package conductor_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// idle is a scheduler, network and compute the tests below never reach:
// they accept builds only (the conductor is not started), so that the
// database runs no statement but theirs.
type idle struct{}

func (idle) Select(context.Context, *hostsched.Request) ([]hostsched.Selection, error) {
	return nil, nil
}
func (idle) Allocate(context.Context, string, []wire.NIC) ([]wire.Address, error) { return nil, nil }
func (idle) Deallocate(context.Context, string) error                             { return nil }
func (idle) Spawn(context.Context, string, string) error                          { return nil }
func (idle) Destroy(context.Context, string, string) error                        { return nil }

// withGroups gives each instance of b a NIC of a port in groups, as an
// API cell that sends them does (PortRevision >= 1).
func withGroups(b *wire.BuildInstances, groups ...string) *wire.BuildInstances {
	for i := range b.Instances {
		b.Instances[i].NICs = []wire.NIC{{NetworkID: "net-1", NetworkName: "private", SecurityGroups: groups, PortRevision: 1}}
	}
	return b
}

// TestBuildAsksForNewGroups: the first build naming a group the cell does
// not hold sends one security_groups_sync to the root, in its own
// transaction, for all its instances; a second build naming it sends none
// and costs no statement more than a build whose NICs name no group. The
// accept runs in the cells service's transaction, so a build not accepted
// (rolled back) asks nothing, and a root down meanwhile finds the sync in
// the outbox (network's TestWantIsDurable).
func TestBuildAsksForNewGroups(t *testing.T) {
	d := openCellDB(t)
	rec := &recorder{}
	sg, err := network.NewSecGroups(network.SecGroupsConfig{Cell: cell, DB: d, Sender: rec, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: rec, Scheduler: idle{}, Network: idle{}, Compute: idle{},
		SecurityGroups: sg, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	syncs := func() []wire.SecurityGroupsSync {
		var out []wire.SecurityGroupsSync
		for _, m := range rec.messages() {
			if m.Method != wire.MethodSecurityGroupsSync {
				continue
			}
			if m.To != root {
				t.Errorf("security_groups_sync sent to %q, want the root", m.To)
			}
			var s wire.SecurityGroupsSync
			if err := json.Unmarshal(m.Payload, &s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	renumber := func(b *wire.BuildInstances, from int) *wire.BuildInstances {
		for i := range b.Instances {
			b.Instances[i].UUID = uuidN(from + i)
		}
		return b
	}

	accept(t, d, cd, "req-1", withGroups(renumber(build(3, 0), 100), "sg-web", "default"))
	s := syncs()
	if len(s) != 1 || s[0].Complete || !slices.Equal(s[0].Want, []string{"default", "sg-web"}) {
		t.Fatalf("syncs after the first build: %+v", s)
	}

	before := d.Statements()
	accept(t, d, cd, "req-2", withGroups(renumber(build(3, 0), 200), "default", "sg-web"))
	withHeld := d.Statements() - before
	if s := syncs(); len(s) != 1 {
		t.Fatalf("the second build of the same groups sent %+v", s[1:])
	}
	before = d.Statements()
	accept(t, d, cd, "req-3", withGroups(renumber(build(3, 0), 300)))
	without := d.Statements() - before
	if withHeld != without {
		t.Fatalf("a build whose groups are held ran %d statements, one naming none %d; want the same", withHeld, without)
	}
}
