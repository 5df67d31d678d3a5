package up_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/up"
)

type tlog struct{ t *testing.T }

func (w tlog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// TestRestartKeepsCellsAndInstances starts a tree, builds instances, stops
// it, starts it again on the same data directory, and finds every cell and
// instance as it was, and the tree still building.
func TestRestartKeepsCellsAndInstances(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	opts := up.Options{DataDir: dir, Cells: 2, HostsPerCell: 2, Listen: "127.0.0.1:0", ReportInterval: 200 * time.Millisecond}

	tree, err := up.Start(ctx, opts, log)
	if err != nil {
		t.Fatal(err)
	}
	first := build(t, tree, 5)
	waitActive(t, tree, first)
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	tree.Shutdown(sctx)
	cancel()

	tree, err = up.Start(ctx, opts, log)
	if err != nil {
		t.Fatalf("restart on the same data dir: %v", err)
	}
	t.Cleanup(func() { tree.Shutdown(context.Background()) })
	ns, err := cells.ListNeighbours(ctx, tree.API.DB)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 2 {
		t.Errorf("after restart the API cell has %d neighbours, want 2", len(ns))
	}
	for _, u := range first {
		in, err := apidb.Get(ctx, tree.API.DB, u)
		if err != nil || in.VMState != "active" || in.Deleted {
			t.Errorf("instance %s after restart: %+v, %v", u, in, err)
		}
	}
	second := build(t, tree, 3)
	waitActive(t, tree, second)
}

// build creates n instances straight through the API cell's outbox, the
// way the Compute API does, so this test depends on the tree only.
func build(t *testing.T, tree *up.Tree, n int) []string {
	t.Helper()
	ctx := context.Background()
	f, err := apidb.GetFlavor(ctx, tree.API.DB, "1")
	if err != nil {
		t.Fatal(err)
	}
	b := wire.BuildInstances{Flavor: f, Scheduler: up.Root, Attempts: 1}
	var insts []apidb.Instance
	now := time.Now().UTC()
	for i := range n {
		spec := wire.InstanceSpec{UUID: uuid.NewString(), Name: "r", ProjectID: "p", UserID: "u", ImageRef: up.DefaultImageID,
			ReservationID: "r-test", LaunchIndex: i, CreatedAt: now}
		b.Instances = append(b.Instances, spec)
		insts = append(insts, apidb.Instance{InstanceSpec: spec, FlavorID: f.ID, Flavor: f, VMState: "building", TaskState: "scheduling"})
	}
	err = tree.API.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := apidb.Create(ctx, tx, insts); err != nil {
			return err
		}
		return tree.API.Cells.Send(ctx, tx, up.Root, wire.MethodBuildInstances, "req-test", &b)
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, n)
	for i, in := range insts {
		out[i] = in.UUID
	}
	return out
}

func waitActive(t *testing.T, tree *up.Tree, uuids []string) {
	t.Helper()
	testpoll.Eventually(t, 30*time.Second, "every instance ACTIVE", func() (bool, string) {
		active := 0
		for _, u := range uuids {
			in, err := apidb.Get(context.Background(), tree.API.DB, u)
			if err == nil && in.VMState == "active" && in.TaskState == "" {
				active++
			}
		}
		return active == len(uuids), fmt.Sprintf("%d of %d instances ACTIVE", active, len(uuids))
	})
}
