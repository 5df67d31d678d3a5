package node

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestRemoteComputeInstanceFilter checks that an instance's filter, set
// by its spawn from the groups the cell holds, reads the same from the
// compute role in this process and over the cell's broker.
func TestRemoteComputeInstanceFilter(t *testing.T) {
	r := startRoles(t)
	ctx := context.Background()
	const u = "00000000-0000-0000-0000-0000000000f1"
	for _, q := range []string{
		`INSERT INTO sg_groups (id, project_id, revision, member_seq, stateful, rules) VALUES ('def', 'p', 1, 1, 1,
			'[{"id":"e4","direction":"egress","ethertype":"IPv4"},{"id":"i4","direction":"ingress","ethertype":"IPv4","remote_group_id":"def"}]')`,
		`INSERT INTO sg_members (group_id, port_id, address) VALUES ('def', 'port-1', '10.0.1.5'), ('def', 'port-2', '10.0.1.6')`,
		`UPDATE sg_state SET rules_gen = rules_gen + 1, members_gen = members_gen + 1 WHERE id = 1`,
		// The address as the API cell handed it out for the port (a block's
		// addresses have rows only once handed out).
		`INSERT INTO fixed_ips (subnet_id, address_int, address, network, in_block, instance_uuid, port_id, api_port, updated_at)
			VALUES ('sub-1', 167772421, '10.0.1.5', 'private', 1, '` + u + `', 'port-1', 1, 0)
			ON CONFLICT (subnet_id, address_int) DO UPDATE SET instance_uuid = '` + u + `', port_id = 'port-1', api_port = 1`,
	} {
		if _, err := r.db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	nic := wire.NIC{NetworkID: "net-1", NetworkName: "private", PortID: "port-1", SecurityGroups: []string{"def"}, PortRevision: 1,
		FixedIPs: []wire.FixedIP{{SubnetID: "sub-1", Addr: "10.0.1.5"}}}
	in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "i"},
		Flavor: wire.Flavor{ID: "1", VCPUs: 1, RAMMB: 512, RootGB: 1}, VMState: celldb.VMBuilding, TaskState: celldb.TaskNetworking,
		Build: celldb.BuildContext{NICs: []wire.NIC{nic}}}
	if err := r.db.InTx(ctx, func(tx *db.Tx) error { return celldb.Insert(ctx, tx, []celldb.Instance{in}, time.Now()) }); err != nil {
		t.Fatal(err)
	}
	// The compute role started before the groups were written: a wake
	// has it load them (else its next poll would).
	r.comp.WakeFirewall()
	if err := r.rComp.Spawn(ctx5(t), "h1", u); err != nil {
		t.Fatalf("remote Spawn: %v", err)
	}
	var local wire.InstanceFilterAnswer
	testpoll.Eventually(t, 10*time.Second, "the instance's filter set", func() (bool, string) {
		var err error
		if local, err = r.comp.InstanceFilter(ctx, "h1", u); err != nil {
			t.Fatal(err)
		}
		return len(local.Ports) == 1 && len(local.Ports[0].Pending) == 0 && len(local.Ports[0].Rules) == 2 &&
			len(local.Ports[0].Rules[1].Remote) == 2, fmt.Sprintf("%+v", local)
	})
	remote, err := r.rComp.InstanceFilter(ctx5(t), "h1", u)
	if err != nil {
		t.Fatalf("remote InstanceFilter: %v", err)
	}
	if !reflect.DeepEqual(local, remote) {
		t.Errorf("remote answer %+v, want the local %+v", remote, local)
	}
	p := remote.Ports[0]
	if remote.Host != "h1" || p.PortID != "port-1" || !reflect.DeepEqual(p.Addresses, []string{"10.0.1.5"}) ||
		!reflect.DeepEqual(p.Rules[1].Remote, []string{"10.0.1.5", "10.0.1.6"}) {
		t.Errorf("the filter read back: %+v", remote)
	}
	// Destroyed: no port filtered.
	if err := r.rComp.Destroy(ctx5(t), "h1", u); err != nil {
		t.Fatal(err)
	}
	if a, err := r.rComp.InstanceFilter(ctx5(t), "h1", u); err != nil || len(a.Ports) != 0 {
		t.Errorf("after Destroy: %+v, %v", a, err)
	}
}
