package instanceops

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// hostFilters answers for the host it is asked about.
type hostFilters struct{ asked []string }

func (h *hostFilters) InstanceFilter(_ context.Context, host, uuid string) (wire.InstanceFilterAnswer, error) {
	h.asked = append(h.asked, host+"/"+uuid)
	return wire.InstanceFilterAnswer{UUID: uuid, Host: host, Ports: []wire.PortFilter{{PortID: "p1", PortSecurity: true}}}, nil
}

// TestInstanceFilter checks instance_filter: the instance's host is asked,
// an instance on no host has no port filtered, and one the cell does not
// have (or deleted) is not found. A repeat asks again: the call changes
// nothing.
func TestInstanceFilter(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t, "sqlite")
	if err := d.Migrate(ctx, "compute", celldb.Migrations); err != nil {
		t.Fatal(err)
	}
	f := &hostFilters{}
	o, err := New(Config{Cell: testCell, DB: d, Sender: &recorder{}, Host: noHost{}, VMs: &vms{}, Scheduler: oneHost("h1"), Filters: f,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	insts := []celldb.Instance{
		{InstanceSpec: wire.InstanceSpec{UUID: "on-h2", Name: "a", ProjectID: "p", UserID: "u", ImageRef: "i", CreatedAt: t0}, Host: "h2", VMState: "active"},
		{InstanceSpec: wire.InstanceSpec{UUID: "nowhere", Name: "b", ProjectID: "p", UserID: "u", ImageRef: "i", CreatedAt: t0}, VMState: "building"},
	}
	if err := d.InTx(ctx, func(tx *db.Tx) error { return celldb.Insert(ctx, tx, insts, t0) }); err != nil {
		t.Fatal(err)
	}
	call := func(uuid string) (wire.InstanceFilterAnswer, error) {
		b, _ := json.Marshal(wire.InstanceFilter{UUID: uuid})
		out, err := o.InstanceFilter(ctx, &wire.Envelope{Method: wire.MethodInstanceFilter, RequestID: "req-f", Payload: b})
		if err != nil {
			return wire.InstanceFilterAnswer{}, err
		}
		return out.(wire.InstanceFilterAnswer), nil
	}
	for range 2 {
		a, err := call("on-h2")
		if err != nil || a.Host != "h2" || len(a.Ports) != 1 {
			t.Fatalf("instance on h2: %+v, %v", a, err)
		}
	}
	if len(f.asked) != 2 || f.asked[0] != "h2/on-h2" {
		t.Errorf("hosts asked: %v", f.asked)
	}
	if a, err := call("nowhere"); err != nil || a.Ports == nil || len(a.Ports) != 0 || a.UUID != "nowhere" {
		t.Errorf("instance on no host: %+v, %v", a, err)
	}
	var we *wire.Error
	if _, err := call("unknown"); !errors.As(err, &we) || we.Code != wire.CodeNotFound {
		t.Errorf("unknown instance: %v", err)
	}
	if _, err := call(""); !errors.As(err, &we) || we.Code != wire.CodeBadMessage {
		t.Errorf("no uuid: %v", err)
	}
	if len(f.asked) != 2 {
		t.Errorf("hosts asked for instances on none: %v", f.asked)
	}
}
