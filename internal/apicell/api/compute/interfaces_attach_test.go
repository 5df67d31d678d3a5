package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// flakySender fails every send while down (as a broken outbox write
// would), and records the messages of the transactions that committed.
type flakySender struct {
	mu   sync.Mutex
	down bool
	sent []string
	nics []wire.NIC
}

func (s *flakySender) Send(_ context.Context, tx *db.Tx, _, method, _ string, p any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errors.New("outbox write failed")
	}
	tx.AfterCommit(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sent = append(s.sent, method)
		if a, ok := p.(*wire.AttachInterface); ok {
			s.nics = append(s.nics, a.NIC)
		}
	})
	return nil
}

func (s *flakySender) setDown(v bool) {
	s.mu.Lock()
	s.down = v
	s.mu.Unlock()
}

// TestAttachIsOneTransactionWithItsMessage: the port's binding (or the
// port made) and the message to the server's cell are one transaction at
// the API cell: a sender that fails halfway leaves the port as it was and
// no port made; once it works, the message carries the port's NIC with
// its address, and a detach unbinds the port with its message, or not at
// all.
func TestAttachIsOneTransactionWithItsMessage(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		for _, m := range []struct {
			set string
			ms  []db.Migration
		}{{"api", apidb.Migrations}, {netdb.MigrationSet, netdb.Migrations}} {
			if err := d.Migrate(ctx, m.set, m.ms); err != nil {
				t.Fatal(err)
			}
		}
		if err := apidb.SeedFlavors(ctx, d); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
		const server = "00000000-0000-4000-8000-000000000001"
		var netID, portID string
		err := d.InTx(ctx, func(tx *db.Tx) error {
			n := &netdb.Network{Name: "net", ProjectID: "demo", AdminStateUp: true}
			if err := netdb.CreateNetwork(ctx, tx, n, now); err != nil {
				return err
			}
			if _, err := netdb.CreateSubnet(ctx, tx, netdb.SubnetSpec{NetworkID: n.ID, ProjectID: "demo", IPVersion: 4, CIDR: "10.9.0.0/24"}, now); err != nil {
				return err
			}
			p, err := netdb.CreatePort(ctx, tx, &netdb.NewPort{Port: netdb.Port{NetworkID: n.ID, ProjectID: "demo", AdminStateUp: true, PortSecurity: true}}, now)
			if err != nil {
				return err
			}
			netID, portID = n.ID, p.ID
			in := apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: server, Name: "s", ProjectID: "demo", UserID: "demo",
				ImageRef: "img", ReservationID: "r-1", CreatedAt: now},
				FlavorID: "1", Flavor: wire.Flavor{ID: "1", Name: "m1.tiny", VCPUs: 1, RAMMB: 512, RootGB: 1},
				Cell: "api!cell1", Host: "h1", Node: "h1", VMState: "active", PowerState: 1, Version: 1}
			if err := apidb.Create(ctx, tx, []apidb.Instance{in}); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE instances SET cell_path = 'api!cell1' WHERE uuid = ?`, server)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		pol, err := policy.NewFromRules(slices.Concat(policy.Base, Rules), nil)
		if err != nil {
			t.Fatal(err)
		}
		s := &flakySender{down: true}
		a, err := New(Config{Cell: "api", DB: d, Sender: s, Caller: noCaller{}, Auth: authn.NoAuth{}, Policy: pol,
			Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		do := func(method, path string, body any) int {
			b, _ := json.Marshal(body)
			r := httptest.NewRequest(method, path, bytes.NewReader(b))
			r.Header.Set("X-Auth-Token", "demo:demo")
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			a.ServeHTTP(w, r)
			return w.Code
		}
		bound := func() string {
			p, err := netdb.GetPort(ctx, d, portID)
			if err != nil {
				t.Fatal(err)
			}
			return p.DeviceID
		}
		serverPorts := func() int {
			ps, err := netdb.ListPorts(ctx, d, netdb.PortFilter{DeviceIDs: []string{server}})
			if err != nil {
				t.Fatal(err)
			}
			return len(ps)
		}
		path := "/v2.1/servers/" + server + "/os-interface"

		// The sender dies halfway: nothing is bound or made.
		if code := do(http.MethodPost, path, map[string]any{"interfaceAttachment": map[string]any{"port_id": portID}}); code != http.StatusInternalServerError {
			t.Fatalf("attach with a failing sender: %d", code)
		}
		if code := do(http.MethodPost, path, map[string]any{"interfaceAttachment": map[string]any{"net_id": netID}}); code != http.StatusInternalServerError {
			t.Fatalf("attach by network with a failing sender: %d", code)
		}
		if dev, n := bound(), serverPorts(); dev != "" || n != 0 {
			t.Fatalf("after failed attaches the port is bound to %q and the server has %d ports", dev, n)
		}

		// It works: the port is bound and its NIC sent.
		s.setDown(false)
		if code := do(http.MethodPost, path, map[string]any{"interfaceAttachment": map[string]any{"port_id": portID}}); code != http.StatusOK {
			t.Fatalf("attach: %d", code)
		}
		if bound() != server || len(s.sent) != 1 || s.sent[0] != wire.MethodAttachInterface ||
			s.nics[0].PortID != portID || len(s.nics[0].FixedIPs) != 1 || s.nics[0].FixedIPs[0].Addr == "" {
			t.Fatalf("after the attach: port bound to %q, sent %v %+v", bound(), s.sent, s.nics)
		}
		// The NIC says what the cell enforces on the port: its revision once
		// bound (a later port_update is newer), port security on.
		if p, err := netdb.GetPort(ctx, d, portID); err != nil || s.nics[0].PortRevision != p.RevisionNumber || s.nics[0].PortRevision < 2 ||
			s.nics[0].NoPortSecurity {
			t.Fatalf("attached NIC %+v, port %+v (%v)", s.nics[0], p, err)
		}

		// A detach whose message cannot be sent leaves the port bound.
		s.setDown(true)
		if code := do(http.MethodDelete, path+"/"+portID, nil); code != http.StatusInternalServerError {
			t.Fatalf("detach with a failing sender: %d", code)
		}
		if bound() != server {
			t.Fatal("a failed detach unbound the port")
		}
		s.setDown(false)
		if code := do(http.MethodDelete, path+"/"+portID, nil); code != http.StatusAccepted {
			t.Fatalf("detach: %d", code)
		}
		if bound() != "" || len(s.sent) != 2 || s.sent[1] != wire.MethodDetachInterface {
			t.Fatalf("after the detach: port bound to %q, sent %v", bound(), s.sent)
		}

		// A port made by an attach is deleted by its detach.
		if code := do(http.MethodPost, path, map[string]any{"interfaceAttachment": map[string]any{"net_id": netID}}); code != http.StatusOK {
			t.Fatalf("attach by network: %d", code)
		}
		made := s.nics[len(s.nics)-1].PortID
		if n := serverPorts(); n != 1 || made == "" {
			t.Fatalf("after an attach by network the server has %d ports (sent %+v)", n, s.nics)
		}
		if code := do(http.MethodDelete, path+"/"+made, nil); code != http.StatusAccepted {
			t.Fatalf("detach the made port: %d", code)
		}
		if _, err := netdb.GetPort(ctx, d, made); !errors.Is(err, netdb.ErrNotFound) {
			t.Fatalf("the made port after its detach: %v", err)
		}
	})
}
