package hostops_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/hostops"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

type sent struct {
	to, method string
	payload    json.RawMessage
}

type recorder struct {
	mu   sync.Mutex
	msgs []sent
}

func (r *recorder) Send(_ context.Context, tx *db.Tx, to, method, _ string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	tx.AfterCommit(func() {
		r.mu.Lock()
		r.msgs = append(r.msgs, sent{to, method, b})
		r.mu.Unlock()
	})
	return nil
}

func call(t *testing.T, h func(context.Context, *wire.Envelope) (any, error), payload, out any) error {
	t.Helper()
	b, _ := json.Marshal(payload)
	v, err := h(context.Background(), &wire.Envelope{Method: "m", Payload: b, RequestID: "req-1"})
	if err != nil {
		return err
	}
	if out != nil {
		b, _ := json.Marshal(v)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}

// TestOps: the handlers a compute cell answers the operator APIs with,
// over a real cell database: a registrar's services are listed in zone
// internal, compute services in their node's; only nova-compute can be
// changed; a host with an instance cannot lose its service; deleting a
// service tells the API cell to forget its mappings.
func TestOps(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "cell.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(ctx, "compute", celldb.Migrations); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	rec := &recorder{}
	cfg := hostops.Config{Cell: "api!c1", DB: d, Sender: rec, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	ops, err := hostops.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"h1", "h2"} {
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := celldb.RegisterNodeTx(ctx, tx, celldb.Node{Host: h, HypervisorType: "fake", VCPUs: 4,
				RAMMB: 4096, DiskGB: 100, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, now); err != nil {
				return err
			}
			_, err := celldb.RegisterService(ctx, tx, h, celldb.BinaryCompute, now)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Both hosts in az1, from their aggregate.
	if err := d.InTx(ctx, func(tx *db.Tx) error {
		_, err := celldb.ApplyHostAggregates(ctx, tx, &wire.HostAggregates{Version: 1, DefaultZone: "nova", Aggregates: []wire.HostAggregate{
			{ID: 1, UUID: "agg-1", Name: "agg1", Metadata: map[string]string{wire.AggregateZoneKey: "az1"}, Hosts: []string{"h1", "h2"}}}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	reg, err := hostops.NewRegistrar(cfg, "ctl", []string{celldb.BinaryConductor, celldb.BinaryScheduler}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Shutdown)
	if len(rec.msgs) != 1 || rec.msgs[0].to != "api" || rec.msgs[0].method != wire.MethodHostMappings {
		t.Fatalf("the registrar sent %+v", rec.msgs)
	}

	var ss []wire.Service
	if err := call(t, ops.Services, wire.ServiceQuery{}, &ss); err != nil {
		t.Fatal(err)
	}
	zones := map[string]string{}
	for _, s := range ss {
		zones[s.Host+" "+s.Binary] = s.Zone
		if !s.Up {
			t.Errorf("service %+v is down at its registration time", s)
		}
	}
	if len(ss) != 4 || zones["h1 nova-compute"] != "az1" || zones["ctl nova-conductor"] != "internal" {
		t.Errorf("services: %v", zones)
	}

	var hs []wire.Hypervisor
	if err := call(t, ops.Hypervisors, wire.HypervisorQuery{Pattern: "2"}, &hs); err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].Hostname != "h2" || hs[0].UUID == "" || hs[0].Service.Binary != celldb.BinaryCompute {
		t.Errorf("hypervisors matching 2: %+v", hs)
	}

	yes := true
	err = call(t, ops.UpdateService, wire.ServiceUpdate{ServiceQuery: wire.ServiceQuery{Host: "ctl", Binary: celldb.BinaryScheduler},
		Disabled: &yes, ComputeOnly: true}, nil)
	if !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("disable nova-scheduler: %v, want invalid", err)
	}
	var up wire.Service
	if err := call(t, ops.UpdateService, wire.ServiceUpdate{ServiceQuery: wire.ServiceQuery{Host: "h1", Binary: celldb.BinaryCompute},
		Disabled: &yes, ComputeOnly: true}, &up); err != nil || !up.Disabled {
		t.Fatalf("disable h1: %+v %v", up, err)
	}

	// An instance on h2: its service cannot go.
	if err := d.InTx(ctx, func(tx *db.Tx) error {
		if err := celldb.Insert(ctx, tx, []celldb.Instance{{InstanceSpec: wire.InstanceSpec{UUID: "u1", Name: "vm", ProjectID: "p", UserID: "u",
			ImageRef: "i", CreatedAt: now}, VMState: celldb.VMActive, Host: "h2"}}, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE instances SET host = 'h2' WHERE uuid = 'u1'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err = call(t, ops.DeleteService, wire.ServiceQuery{ID: hs[0].Service.ID}, nil)
	if !errors.Is(err, wire.ErrConflict) {
		t.Errorf("delete h2's service: %v, want conflict", err)
	}
	before := len(rec.msgs)
	if err := call(t, ops.DeleteService, wire.ServiceQuery{UUID: up.UUID}, nil); err != nil {
		t.Fatal(err)
	}
	var hm wire.HostMappings
	if len(rec.msgs) != before+1 || json.Unmarshal(rec.msgs[before].payload, &hm) != nil || len(hm.Removed) != 2 || hm.Cell != "api!c1" {
		t.Errorf("mappings sent on delete: %s", rec.msgs[len(rec.msgs)-1].payload)
	}
	if err := call(t, ops.Services, wire.ServiceQuery{Host: "h1"}, &ss); err != nil || len(ss) != 0 {
		t.Errorf("h1's services after the delete: %+v %v", ss, err)
	}
}
