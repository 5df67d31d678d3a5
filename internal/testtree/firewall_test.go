package testtree_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/up"
)

// TestInstanceFilterThroughTheTree boots an instance whose NIC is in a
// group, with the group's rows written into the cell's database as its
// network handlers would, and reads what its host enforces with an
// instance_filter call from the root: the group's rules, its remote group
// expanded to the members, the instance's own address. A member added
// (members_gen) reaches the answer; a repeat of the call changes nothing.
func TestInstanceFilterThroughTheTree(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 2})
	ctx := context.Background()
	cell := tr.Cells[0]
	path := cell.Config().Cell
	netID, _ := userNetwork(t, tr.API.DB, "fwnet", "10.78.0.0/24")
	exec := func(q string) {
		t.Helper()
		if _, err := cell.DB.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO sg_groups (id, project_id, revision, member_seq, stateful, rules) VALUES ('sg-web', 'p', 3, 1, 1,
		'[{"id":"r-http","direction":"ingress","ethertype":"IPv4","protocol":"tcp","port_range_min":80,"port_range_max":80,"remote_group_id":"sg-web"},
		  {"id":"r-out","direction":"egress","ethertype":"IPv4"}]')`)
	exec(`INSERT INTO sg_members (group_id, port_id, address) VALUES ('sg-web', 'other-port', '10.78.0.200')`)
	exec(`UPDATE sg_state SET rules_gen = rules_gen + 1, members_gen = members_gen + 1 WHERE id = 1`)

	f, err := apidb.GetFlavor(ctx, tr.API.DB, "1")
	if err != nil {
		t.Fatal(err)
	}
	const vm = "44444444-0000-4000-8000-0000000000f1"
	spec := wire.InstanceSpec{UUID: vm, Name: "vm-fw", ProjectID: "p", UserID: "u", ImageRef: up.DefaultImageID, ReservationID: "r-fw",
		CreatedAt: time.Now().UTC(), NICs: []wire.NIC{{NetworkID: netID, NetworkName: "fwnet", SecurityGroups: []string{"sg-web"}, PortRevision: 1}}}
	b := wire.BuildInstances{Flavor: f, Scheduler: up.Root, Attempts: 1, TargetCell: path, Instances: []wire.InstanceSpec{spec}}
	insts := []apidb.Instance{{InstanceSpec: spec, FlavorID: f.ID, Flavor: f, VMState: "building", TaskState: "scheduling"}}
	if err := tr.API.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := apidb.Create(ctx, tx, insts); err != nil {
			return err
		}
		return tr.API.Cells.Send(ctx, tx, up.Root, wire.MethodBuildInstances, "req-fw-boot", &b)
	}); err != nil {
		t.Fatal(err)
	}
	addr := activeWithAddresses(t, tr, []string{vm})[vm]

	ask := func() (wire.InstanceFilterAnswer, error) {
		var a wire.InstanceFilterAnswer
		err := tr.API.Cells.Call(ctx, path, wire.MethodInstanceFilter, "req-fw", &wire.InstanceFilter{UUID: vm}, &a)
		return a, err
	}
	remote := func(a wire.InstanceFilterAnswer) []string {
		for _, p := range a.Ports {
			for _, r := range p.Rules {
				if r.RuleID == "r-http" {
					out := slices.Clone(r.Remote)
					slices.Sort(out)
					return out
				}
			}
		}
		return nil
	}
	testpoll.Eventually(t, 30*time.Second, "the instance's filter", func() (bool, string) {
		a, err := ask()
		if err != nil {
			return false, err.Error()
		}
		ok := len(a.Ports) == 1 && a.Ports[0].PortID == addr.PortID && slices.Equal(a.Ports[0].Addresses, []string{addr.Addr}) &&
			len(a.Ports[0].Rules) == 2 && slices.Equal(remote(a), []string{"10.78.0.200"}) && a.Host != ""
		return ok, fmt.Sprintf("%+v", a)
	})

	// A member added (the instance's own port, as the root would send it).
	exec(`INSERT INTO sg_members (group_id, port_id, address) VALUES ('sg-web', '` + addr.PortID + `', '` + addr.Addr + `')`)
	exec(`UPDATE sg_groups SET member_seq = 2 WHERE id = 'sg-web'`)
	exec(`UPDATE sg_state SET members_gen = members_gen + 1 WHERE id = 1`)
	want := []string{addr.Addr, "10.78.0.200"}
	slices.Sort(want)
	testpoll.Eventually(t, 30*time.Second, "the new member in the filter", func() (bool, string) {
		a, err := ask()
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(remote(a), want), fmt.Sprintf("%v", remote(a))
	})
	if a, err := ask(); err != nil || !slices.Equal(remote(a), want) {
		t.Errorf("a repeated call: %v, %v", remote(a), err)
	}
	var we *wire.Error
	if err := tr.API.Cells.Call(ctx, path, wire.MethodInstanceFilter, "req-fw", &wire.InstanceFilter{UUID: "no-such"}, new(wire.InstanceFilterAnswer)); err == nil {
		t.Error("instance_filter of an unknown instance answered")
	} else if !errors.As(err, &we) || we.Code != wire.CodeNotFound {
		t.Errorf("instance_filter of an unknown instance: %v", err)
	}
}
