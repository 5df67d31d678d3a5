package cells

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestCapacityReportsRaceWithRefresh records children's reports while the
// cells table is re-read, as the two loops do in a running service; run
// with -race.
func TestCapacityReportsRaceWithRefresh(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t, "sqlite")
	if err := d.Migrate(ctx, "outbox", outbox.Migrations); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, "cells", Migrations); err != nil {
		t.Fatal(err)
	}
	b, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: "api", Listen: "127.0.0.1:0", StoreDir: filepath.Join(t.TempDir(), "broker")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	nc, err := broker.Connect(ctx, b.URL(), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// The child's broker is this one too: the service shares the connection.
	if err := AddNeighbour(ctx, d, "api", Neighbour{Path: "api!c", Relation: Child, BrokerURL: b.URL()}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Path: "api", DB: d, Conn: nc, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.refreshNeighbours(ctx); err != nil {
		t.Fatal(err)
	}

	const rounds = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for range rounds {
			if err := s.refreshNeighbours(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range rounds {
			p, _ := json.Marshal(wire.CapacityReport{Cell: "api!c", Report: capacity.Report{Hosts: i % 3}, At: time.Now()})
			env := &wire.Envelope{ID: "r", Method: wire.MethodCapacityReport, Version: wire.V1, Kind: wire.Targeted,
				Target: "api", Route: []string{"api!c"}, Sender: "api!c", Payload: p}
			if _, err := s.handleCapacityReport(ctx, env); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	ns := s.Neighbours()
	if len(ns) != 1 || ns[0].Report == nil || ns[0].Report.Hosts != (rounds-1)%3 {
		t.Errorf("neighbours = %+v, want the last report", ns)
	}
}
