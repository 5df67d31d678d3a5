package network_test

import (
	"slices"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/cellcloud/cellcloud/internal/apicell/api/network"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Tokens in noauth mode: "user:project"; the user "admin" is an admin.
const (
	admin = "admin:admin"
	demo  = "demo:demo"
	other = "other:other"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// env is the Networking API of an API cell over a real SQLite database,
// mounted under /networking as the node mounts it.
type env struct {
	t   testing.TB
	d   *db.DB
	srv *httptest.Server
	// private is the seeded network, privateSubnet its subnet.
	private, privateSubnet string
	// cells are the fake cells that hold address blocks: they reserve
	// addresses and take release_addresses.
	cells *fakeCells
}

// fakeCells is the cells as the Networking API reaches them: the
// reserve_address call (AddressReserver) and the durable messages sent in
// a transaction (netdb.Sender), recorded once committed.
type fakeCells struct {
	mu sync.Mutex
	// taken are the addresses the cells have given (cell + " " + addr).
	taken map[string]bool
	// down makes every call fail as a cell that does not answer.
	down     bool
	reserved []string // cell + " " + addr + " " + port
	released []string // cell + " " + port
	// portUpdates are the port_update messages sent.
	portUpdates []sentPortUpdate
}

type sentPortUpdate struct {
	to string
	u  wire.PortUpdate
}

// takePortUpdates returns and forgets the port_update messages sent.
func (f *fakeCells) takePortUpdates() []sentPortUpdate {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.portUpdates
	f.portUpdates = nil
	return out
}

func (f *fakeCells) Reserve(_ context.Context, cell, _, addr, port string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return fmt.Errorf("call %s: %w", cell, netdb.ErrCellUnavailable)
	}
	if f.taken[cell+" "+addr] {
		return fmt.Errorf("%s: %w", addr, netdb.ErrAddressTaken)
	}
	f.taken[cell+" "+addr] = true
	f.reserved = append(f.reserved, cell+" "+addr+" "+port)
	return nil
}

func (f *fakeCells) Send(_ context.Context, tx *db.Tx, to, method, _ string, payload any) error {
	if method == wire.MethodPortUpdate {
		u := *payload.(*wire.PortUpdate)
		tx.AfterCommit(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.portUpdates = append(f.portUpdates, sentPortUpdate{to, u})
		})
		return nil
	}
	if method != wire.MethodReleaseAddresses {
		return fmt.Errorf("unexpected message %s", method)
	}
	ports := payload.(*wire.ReleaseAddresses).PortIDs
	tx.AfterCommit(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, p := range ports {
			f.released = append(f.released, to+" "+p)
		}
	})
	return nil
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, "sqlite")
}

// forEachEngine runs f with an env over each engine dbtest.Engines lists
// (PostgreSQL when CELLCLOUD_TEST_POSTGRES is set).
func forEachEngine(t *testing.T, f func(t *testing.T, e *env)) {
	t.Helper()
	if len(dbtest.Engines()) == 1 {
		t.Logf("PostgreSQL run skipped: set %s to a PostgreSQL URL to run it", dbtest.EnvPostgres)
	}
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) { f(t, newEnvOn(t, engine)) })
	}
}

func newEnvOn(t testing.TB, engine string) *env {
	t.Helper()
	ctx := context.Background()
	d := dbtest.Open(t, engine)
	if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
		t.Fatalf("migrate api: %v", err)
	}
	if err := d.Migrate(ctx, netdb.MigrationSet, netdb.Migrations); err != nil {
		t.Fatalf("migrate netapi: %v", err)
	}
	id, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", "")
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	n, err := netdb.NetworkByID(ctx, d, id)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.NewFromRules(slices.Concat(policy.Base, network.Rules), nil)
	if err != nil {
		t.Fatal(err)
	}
	cells := &fakeCells{taken: map[string]bool{}}
	api, err := network.New(network.Config{Cell: "api", DB: d, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return t0 }, Auth: authn.NoAuth{}, Policy: pol, Reserver: cells, Sender: cells})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/networking/", http.StripPrefix("/networking", api))
	mux.Handle("/networking", http.StripPrefix("/networking", api))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, d: d, srv: srv, private: id, privateSubnet: n.Subnets[0], cells: cells}
}

// client is a gophercloud networking client for token, built as
// openstack.NewNetworkV2 builds one from the catalog's endpoint.
func (e *env) client(token string) *gophercloud.ServiceClient {
	pc := &gophercloud.ProviderClient{HTTPClient: *e.srv.Client()}
	pc.SetToken(token)
	endpoint := e.srv.URL + "/networking/"
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: endpoint, ResourceBase: endpoint + "v2.0/", Type: "network"}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a raw request; body is JSON-encoded unless it is a string.
func (e *env) do(method, path, token string, body any) *response {
	e.t.Helper()
	return e.send(e.t, method, path, token, body)
}

// doHeader is do with one more request header.
func (e *env) doHeader(method, path, token string, body any, key, value string) *response {
	e.t.Helper()
	return e.sendHeader(e.t, method, path, token, body, http.Header{key: {value}})
}

// send is do for a test other than the env's (a fuzz target's).
func (e *env) send(t testing.TB, method, path, token string, body any) *response {
	t.Helper()
	return e.sendHeader(t, method, path, token, body, nil)
}

func (e *env) sendHeader(t testing.TB, method, path, token string, body any, h http.Header) *response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: raw}
}

func (r *response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body is not the JSON expected (%v): %s", err, r.body)
	}
}

// fault checks a Neutron error and returns its type and message.
func (r *response) fault(t testing.TB, status int) (typ, msg string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var out struct {
		NeutronError *struct {
			Type    string  `json:"type"`
			Message string  `json:"message"`
			Detail  *string `json:"detail"`
		} `json:"NeutronError"`
	}
	r.json(t, &out)
	if out.NeutronError == nil || out.NeutronError.Type == "" || out.NeutronError.Message == "" || out.NeutronError.Detail == nil {
		t.Fatalf("not a NeutronError: %s", r.body)
	}
	return out.NeutronError.Type, out.NeutronError.Message
}

// boot puts a server in the API cell's copy, as a cell reports it once
// spawned (vmState "active") or while building.
func (e *env) boot(uuid, project, vmState, host string, addrs ...wire.Address) {
	e.t.Helper()
	ctx := context.Background()
	in := apidb.Instance{
		InstanceSpec: wire.InstanceSpec{UUID: uuid, Name: "vm", ProjectID: project, UserID: "u", ImageRef: "img",
			ReservationID: "r-" + uuid, CreatedAt: t0},
		FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "building", TaskState: "scheduling",
	}
	err := e.d.InTx(ctx, func(tx *db.Tx) error {
		if err := apidb.Create(ctx, tx, []apidb.Instance{in}); err != nil {
			return err
		}
		a, err := apidb.ApplyUpdate(ctx, tx, wire.InstanceState{UUID: uuid, Cell: "api!cell1", Version: 2, Host: host, Node: host,
			VMState: vmState, PowerState: 1, Addresses: addrs, UpdatedAt: t0}, t0)
		if err != nil {
			return err
		}
		// What apicopy does with the update: the cell's ports.
		_, err = netdb.MaterializeServerPorts(ctx, tx, []netdb.ServerAddresses{{UUID: uuid, ProjectID: a.ProjectID, Zone: a.AvailabilityZone, Addresses: addrs}}, t0)
		return err
	})
	if err != nil {
		e.t.Fatalf("boot %s: %v", uuid, err)
	}
}

// count is how many rows a table holds (to check nothing was written).
func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.d.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}
