package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// buildSender records the builds and port updates of the transactions
// that committed.
type buildSender struct {
	mu     sync.Mutex
	builds []wire.BuildInstances
	ports  []wire.PortUpdate
}

func (s *buildSender) Send(_ context.Context, tx *db.Tx, _, method, _ string, p any) error {
	tx.AfterCommit(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch m := p.(type) {
		case *wire.BuildInstances:
			s.builds = append(s.builds, *m)
		case *wire.PortUpdate:
			s.ports = append(s.ports, *m)
		}
	})
	return nil
}

// TestBuildNICsCarryTheirPortsEnforcement: the NICs a build sends say what
// the cell enforces on each port: a port passed in its own groups, port
// security, address pairs and revision (after its binding); a NIC the
// cell makes a port for, and a port made for a fixed IP, the server's
// groups at revision 1; a build without NICs names the server's groups
// (the project's default group) for the interface the cell makes. The
// fixed IP's port joins the server's group in the member log.
// addSecurityGroup then sends port_update for the ports whose groups are
// the server's, not for the port passed in.
func TestBuildNICsCarryTheirPortsEnforcement(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		for _, m := range []struct {
			set string
			ms  []db.Migration
		}{{"api", apidb.Migrations}, {imagedb.MigrationSet, imagedb.Migrations}, {netdb.MigrationSet, netdb.Migrations}} {
			if err := d.Migrate(ctx, m.set, m.ms); err != nil {
				t.Fatal(err)
			}
		}
		if err := apidb.SeedFlavors(ctx, d); err != nil {
			t.Fatal(err)
		}
		pol, err := policy.NewFromRules(slices.Concat(policy.Base, Rules, image.Rules), nil)
		if err != nil {
			t.Fatal(err)
		}
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		imgs, err := image.New(image.Config{DB: d, StoreDir: filepath.Join(t.TempDir(), "images"), Auth: authn.NoAuth{}, Policy: pol, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if err := imgs.Seed(ctx, image.Cirros()); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
		var netID string
		var web *netdb.SecurityGroup
		var own *netdb.Port
		err = d.InTx(ctx, func(tx *db.Tx) error {
			n := &netdb.Network{Name: "net", ProjectID: "demo", AdminStateUp: true}
			if err := netdb.CreateNetwork(ctx, tx, n, now); err != nil {
				return err
			}
			netID = n.ID
			if _, err := netdb.CreateSubnet(ctx, tx, netdb.SubnetSpec{NetworkID: n.ID, ProjectID: "demo", IPVersion: 4, CIDR: "10.9.0.0/24"}, now); err != nil {
				return err
			}
			web = &netdb.SecurityGroup{Name: "web", ProjectID: "demo", Stateful: true}
			if err := netdb.CreateSecurityGroup(ctx, tx, web, now); err != nil {
				return err
			}
			own, err = netdb.CreatePort(ctx, tx, &netdb.NewPort{Port: netdb.Port{NetworkID: n.ID, ProjectID: "demo", AdminStateUp: true, PortSecurity: true,
				SecurityGroups: []string{web.ID}, AllowedAddressPairs: []netdb.AddressPair{{IPAddress: "10.8.0.9"}}}}, now)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		s := &buildSender{}
		a, err := New(Config{Cell: "api", DB: d, Sender: s, Caller: noCaller{}, Auth: authn.NoAuth{}, Policy: pol, Logger: quiet,
			Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		do := func(path string, body any) *httptest.ResponseRecorder {
			b, _ := json.Marshal(body)
			r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(b))
			r.Header.Set("X-Auth-Token", "demo:demo")
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			a.ServeHTTP(w, r)
			return w
		}
		w := do("/v2.1/servers", map[string]any{"server": map[string]any{"name": "s", "flavorRef": "1", "imageRef": image.CirrosID,
			"security_groups": []map[string]string{{"name": "web"}},
			"networks":        []map[string]string{{"port": own.ID}, {"uuid": netID}, {"uuid": netID, "fixed_ip": "10.9.0.50"}}}})
		if w.Code != http.StatusAccepted || len(s.builds) != 1 {
			t.Fatalf("create: %d %s, %d builds", w.Code, w.Body, len(s.builds))
		}
		spec := s.builds[0].Instances[0]
		nics := spec.NICs
		if len(nics) != 3 {
			t.Fatalf("NICs %+v", nics)
		}
		bound, err := netdb.GetPort(ctx, d, own.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n := nics[0]; !slices.Equal(n.SecurityGroups, []string{web.ID}) || n.NoPortSecurity || n.PortRevision != bound.RevisionNumber ||
			n.PortRevision < 2 || len(n.AllowedAddressPairs) != 1 || n.AllowedAddressPairs[0].IPAddress != "10.8.0.9" {
			t.Errorf("the passed port's NIC %+v, want its own group, pair and revision %d", n, bound.RevisionNumber)
		}
		for _, n := range nics[1:] {
			if !slices.Equal(n.SecurityGroups, []string{web.ID}) || n.NoPortSecurity || n.PortRevision != 1 {
				t.Errorf("a boot's NIC %+v, want the server's group at revision 1", n)
			}
		}
		if !slices.Equal(spec.SecurityGroups, []string{web.ID}) {
			t.Errorf("the spec's groups %v, want [%s]", spec.SecurityGroups, web.ID)
		}
		var logged []netdb.MemberChange
		if err := d.InTx(ctx, func(tx *db.Tx) (err error) { logged, err = netdb.TakeMemberChanges(ctx, tx, 100); return err }); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(logged, func(c netdb.MemberChange) bool {
			return c.GroupID == web.ID && c.PortID == nics[2].PortID && c.Address == "10.9.0.50" && c.Added
		}) {
			t.Errorf("member log %+v lacks the fixed IP's port joining web", logged)
		}

		w = do("/v2.1/servers", map[string]any{"server": map[string]any{"name": "plain", "flavorRef": "1", "imageRef": image.CirrosID}})
		if w.Code != http.StatusAccepted || len(s.builds) != 2 {
			t.Fatalf("default create: %d %s", w.Code, w.Body)
		}
		def, err := netdb.EnsureDefaultSecurityGroup(ctx, d, "demo", now)
		if err != nil {
			t.Fatal(err)
		}
		if plain := s.builds[1].Instances[0]; len(plain.NICs) != 0 || !slices.Equal(plain.SecurityGroups, []string{def}) {
			t.Errorf("a default build's spec: NICs %+v, groups %v; want no NIC and the default group %s", plain.NICs, plain.SecurityGroups, def)
		}

		// The server reaches its cell; addSecurityGroup changes the
		// groups of the two ports made for it.
		if _, err := d.Exec(ctx, `UPDATE instances SET cell_path = 'api!cell1', vm_state = 'active', task_state = '' WHERE uuid = ?`, spec.UUID); err != nil {
			t.Fatal(err)
		}
		cell := do("/v2.1/servers/"+spec.UUID+"/action", map[string]any{"addSecurityGroup": map[string]string{"name": "default"}})
		if cell.Code != http.StatusAccepted {
			t.Fatalf("addSecurityGroup: %d %s", cell.Code, cell.Body)
		}
		if len(s.ports) != 1 || s.ports[0].PortID != nics[2].PortID || !slices.Equal(sortedIDs(s.ports[0].SecurityGroups...), sortedIDs(def, web.ID)) || s.ports[0].Revision != 2 {
			t.Errorf("port updates %+v, want one for the fixed IP's port with both groups at revision 2", s.ports)
		}
	})
}

func sortedIDs(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
