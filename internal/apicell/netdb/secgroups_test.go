package netdb_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

func countRows(t *testing.T, d *db.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := d.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The default group is made once however many callers race for it, and a
// creation that fails halfway leaves nothing behind.
func TestEnsureDefaultSecurityGroupOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()

		// Dies halfway: the group and its rules are one transaction.
		boom := errors.New("process died")
		err := d.InTx(ctx, func(tx *db.Tx) error {
			g := &netdb.SecurityGroup{Name: "default", ProjectID: "p", IsDefault: true, Stateful: true}
			if err := netdb.CreateSecurityGroup(ctx, tx, g, t0); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) || countRows(t, d, `SELECT COUNT(*) FROM security_groups`) != 0 ||
			countRows(t, d, `SELECT COUNT(*) FROM security_group_rules`) != 0 {
			t.Fatalf("a creation cut short left rows behind (%v)", err)
		}

		const n = 8
		ids := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i], errs[i] = netdb.EnsureDefaultSecurityGroup(ctx, d, "p", t0)
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || ids[i] == "" || ids[i] != ids[0] {
				t.Fatalf("caller %d: %q, %v (first %q)", i, ids[i], errs[i], ids[0])
			}
		}
		if got := countRows(t, d, `SELECT COUNT(*) FROM security_groups WHERE project_id = 'p'`); got != 1 {
			t.Fatalf("%d groups", got)
		}
		g, err := netdb.SecurityGroupByID(ctx, d, ids[0])
		if err != nil || len(g.Rules) != 4 || !g.IsDefault || g.Name != "default" {
			t.Fatalf("default = %+v, %v", g, err)
		}
		// Called again (the message arrives twice): the same group.
		if id, err := netdb.EnsureDefaultSecurityGroup(ctx, d, "p", t0); err != nil || id != ids[0] {
			t.Fatalf("again = %q, %v", id, err)
		}
	})
}

func TestSecurityGroupRuleDuplicates(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		gid, err := netdb.EnsureDefaultSecurityGroup(ctx, d, "p", t0)
		if err != nil {
			t.Fatal(err)
		}
		create := func(r netdb.SecurityGroupRule) error {
			r.SecurityGroupID, r.ProjectID = gid, "p"
			if r.Direction == "" {
				r.Direction = "ingress"
			}
			if r.EtherType == "" {
				r.EtherType = "IPv4"
			}
			return d.InTx(ctx, func(tx *db.Tx) error { return netdb.CreateSecurityGroupRule(ctx, tx, &r, t0) })
		}
		port := func(n int) *int { return &n }
		for _, c := range []struct {
			first, second netdb.SecurityGroupRule
			dup           bool
		}{
			{netdb.SecurityGroupRule{Protocol: "tcp", PortRangeMin: port(22), PortRangeMax: port(22)},
				netdb.SecurityGroupRule{Protocol: "6", PortRangeMin: port(22), PortRangeMax: port(22), Description: "other"}, true},
			{netdb.SecurityGroupRule{Protocol: "udp"}, netdb.SecurityGroupRule{Protocol: "udp", RemoteIPPrefix: "0.0.0.0/0"}, true},
			{netdb.SecurityGroupRule{Protocol: "ipv6-icmp", EtherType: "IPv6"}, netdb.SecurityGroupRule{Protocol: "58", EtherType: "IPv6"}, true},
			{netdb.SecurityGroupRule{Protocol: "ip"}, netdb.SecurityGroupRule{Protocol: "0"}, true},
			// Neutron knows 0 by its last name, ip: hopopt is another rule.
			{netdb.SecurityGroupRule{Protocol: "gre"}, netdb.SecurityGroupRule{Protocol: "gre", Direction: "egress"}, false},
			{netdb.SecurityGroupRule{Protocol: "hopopt", RemoteIPPrefix: "10.0.0.0/8"}, netdb.SecurityGroupRule{Protocol: "ip", RemoteIPPrefix: "10.0.0.0/8"}, false},
			{netdb.SecurityGroupRule{Protocol: "sctp", RemoteIPPrefix: "10.0.0.5/8"}, netdb.SecurityGroupRule{Protocol: "sctp", RemoteIPPrefix: "10.0.0.0/8"}, false},
		} {
			if err := create(c.first); err != nil {
				t.Fatalf("first %+v: %v", c.first, err)
			}
			err := create(c.second)
			var ne *netdb.Error
			if c.dup && (!errors.As(err, &ne) || ne.Code != "SecurityGroupRuleExists" || !errors.Is(err, netdb.ErrInUse)) {
				t.Errorf("%+v after %+v: %v; want SecurityGroupRuleExists", c.second, c.first, err)
			}
			if !c.dup && err != nil {
				t.Errorf("%+v after %+v: %v; want created", c.second, c.first, err)
			}
		}

		// The same rule from many writers at once: one is created.
		before := countRows(t, d, `SELECT COUNT(*) FROM security_group_rules`)
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = create(netdb.SecurityGroupRule{Protocol: "tcp", PortRangeMin: port(80), PortRangeMax: port(80)})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, netdb.ErrInUse):
				t.Errorf("concurrent create: %v", err)
			}
		}
		if ok != 1 || countRows(t, d, `SELECT COUNT(*) FROM security_group_rules`) != before+1 {
			t.Fatalf("%d of the racing creates succeeded; want 1", ok)
		}
	})
}
