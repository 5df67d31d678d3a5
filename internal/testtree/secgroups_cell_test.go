package testtree_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/up"
)

// The compute cell's side of security groups through a real tree: a build
// whose NIC names a group the cell does not hold makes the cell ask for
// it (its row at revision 0); security_groups and port_update sent down
// by the root through the outbox and the broker are applied by the
// handlers the node registers: the group's rules and members come, the
// port's NIC takes its new groups and the new one is asked for, and
// rules_gen rises. (The root's side answers the asks; it is not part of
// this test.)
func TestSecurityGroupsReachTheCell(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 2})
	ctx := context.Background()
	cell := tr.Cells[0]
	path := cell.Config().Cell
	netID, _ := userNetwork(t, tr.API.DB, "sgnet", "10.77.0.0/24")

	f, err := apidb.GetFlavor(ctx, tr.API.DB, "1")
	if err != nil {
		t.Fatal(err)
	}
	const vm = "44444444-0000-4000-8000-000000000001"
	spec := wire.InstanceSpec{UUID: vm, Name: "vm-sg", ProjectID: "p", UserID: "u", ImageRef: up.DefaultImageID, ReservationID: "r-sg",
		CreatedAt: time.Now().UTC(), NICs: []wire.NIC{{NetworkID: netID, NetworkName: "sgnet", SecurityGroups: []string{"sg-1"}, PortRevision: 1}}}
	b := wire.BuildInstances{Flavor: f, Scheduler: up.Root, Attempts: 1, TargetCell: path, Instances: []wire.InstanceSpec{spec}}
	insts := []apidb.Instance{{InstanceSpec: spec, FlavorID: f.ID, Flavor: f, VMState: "building", TaskState: "scheduling"}}
	if err := tr.API.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := apidb.Create(ctx, tx, insts); err != nil {
			return err
		}
		return tr.API.Cells.Send(ctx, tx, up.Root, wire.MethodBuildInstances, "req-sg-boot", &b)
	}); err != nil {
		t.Fatal(err)
	}
	addr := activeWithAddresses(t, tr, []string{vm})[vm]

	group := func(id string) (rev, seq int64, ok bool) {
		err := cell.DB.QueryRow(ctx, `SELECT revision, member_seq FROM sg_groups WHERE id = ?`, id).Scan(&rev, &seq)
		return rev, seq, err == nil
	}
	testpoll.Eventually(t, 30*time.Second, "the cell asked for sg-1", func() (bool, string) {
		rev, _, ok := group("sg-1")
		return ok && rev == 0, fmt.Sprintf("row %v at revision %d", ok, rev)
	})
	var gen0 int64
	if err := cell.DB.QueryRow(ctx, `SELECT rules_gen FROM sg_state WHERE id = 1`).Scan(&gen0); err != nil {
		t.Fatal(err)
	}

	down := func(method string, payload any) {
		t.Helper()
		if err := tr.API.DB.InTx(ctx, func(tx *db.Tx) error {
			return tr.API.Cells.Send(ctx, tx, path, method, "req-sg-"+method, payload)
		}); err != nil {
			t.Fatal(err)
		}
	}
	down(wire.MethodSecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{{ID: "sg-1", ProjectID: "p", Revision: 1, Stateful: true,
		Rules:      []wire.SecurityGroupRule{{ID: "r-1", Direction: "ingress", EtherType: "IPv4", Protocol: "icmp"}},
		HasMembers: true, MemberSeq: 1, Members: []wire.GroupMember{{PortID: addr.PortID, Address: addr.Addr}}}}})
	down(wire.MethodPortUpdate, &wire.PortUpdate{UUID: vm, PortID: addr.PortID, Revision: 2, SecurityGroups: []string{"sg-1", "sg-2"}, PortSecurity: true})

	testpoll.Eventually(t, 30*time.Second, "sg-1 come, the port's NIC updated and sg-2 asked", func() (bool, string) {
		if rev, seq, _ := group("sg-1"); rev != 1 || seq != 1 {
			return false, fmt.Sprintf("sg-1 at revision %d, members %d", rev, seq)
		}
		if _, _, ok := group("sg-2"); !ok {
			return false, "sg-2 not asked"
		}
		in, err := celldb.Get(ctx, cell.DB, vm)
		if err != nil || len(in.NICs) != 1 || in.NICs[0].PortRevision != 2 || !slices.Equal(in.NICs[0].SecurityGroups, []string{"sg-1", "sg-2"}) ||
			in.NICs[0].PortID != addr.PortID {
			return false, fmt.Sprintf("NICs %+v (%v)", in.NICs, err)
		}
		var gen int64
		if err := cell.DB.QueryRow(ctx, `SELECT rules_gen FROM sg_state WHERE id = 1`).Scan(&gen); err != nil || gen < gen0+2 {
			return false, fmt.Sprintf("rules_gen %d, want at least %d", gen, gen0+2)
		}
		return true, ""
	})
}
