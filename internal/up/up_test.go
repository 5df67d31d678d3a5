package up_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/up"
)

func TestOptionsValidate(t *testing.T) {
	ok := up.Options{DataDir: "/tmp/x", Cells: 2, HostsPerCell: 4}
	for _, c := range []struct {
		name   string
		change func(*up.Options)
		want   string // "" for valid
	}{
		{"valid", func(*up.Options) {}, ""},
		{"no data dir", func(o *up.Options) { o.DataDir = "" }, "--data-dir"},
		{"no cells", func(o *up.Options) { o.Cells = 0 }, "--cells"},
		{"too many cells", func(o *up.Options) { o.Cells = 251 }, "--cells"},
		{"no hosts", func(o *up.Options) { o.HostsPerCell = 0 }, "--hosts-per-cell"},
		{"too many hosts", func(o *up.Options) { o.HostsPerCell = 100001 }, "--hosts-per-cell"},
		{"largest", func(o *up.Options) { o.Cells, o.HostsPerCell = 250, 100000 }, ""},
		{"depth 3", func(o *up.Options) { o.Depth = 3 }, ""},
		{"depth 4", func(o *up.Options) { o.Depth = 4 }, "--depth 4"},
		{"depth 1", func(o *up.Options) { o.Depth = 1 }, "--depth 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := ok
			c.change(&o)
			err := o.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if o.Listen != "127.0.0.1:8774" {
					t.Errorf("default Listen %q, want 127.0.0.1:8774 (loopback only)", o.Listen)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate: %v, want an error naming %s", err, c.want)
			}
		})
	}
	o := ok
	o.Listen = "127.0.0.1:9999"
	if err := o.Validate(); err != nil || o.Listen != "127.0.0.1:9999" {
		t.Errorf("Validate changed a given Listen to %q (%v)", o.Listen, err)
	}
}

// TestStartFailsCleanly: a tree whose API cannot listen fails to start,
// and releases what it had opened, so the same data directory starts.
func TestStartFailsCleanly(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	log := testtree.Logger(t, slog.LevelInfo)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o := up.Options{DataDir: dir, Cells: 1, HostsPerCell: 1, Listen: busy.Addr().String(), ReportInterval: 200 * time.Millisecond}
	if tr, err := up.Start(ctx, o, log); err == nil {
		tr.Shutdown(ctx)
		t.Fatalf("started with the API's address in use")
	} else if !strings.Contains(err.Error(), "listen") {
		t.Errorf("error %q does not say the API could not listen", err)
	}
	o.Listen = "127.0.0.1:0"
	tr, err := up.Start(ctx, o, log)
	if err != nil {
		t.Fatalf("start after a failed start on the same data dir: %v", err)
	}
	tr.Shutdown(ctx)
}

// TestRestartWithOtherCells: a restart with fewer compute cells drops the
// missing ones from the API cell's cells table, one with more adds them,
// and each tree serves the API (here on every interface, ":0").
func TestRestartWithOtherCells(t *testing.T) {
	dir := t.TempDir()
	log := testtree.Logger(t, slog.LevelInfo)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, n := range []int{2, 1, 3} {
		tr, err := up.Start(ctx, up.Options{DataDir: dir, Cells: n, HostsPerCell: 1, Listen: ":0", ReportInterval: 200 * time.Millisecond}, log)
		if err != nil {
			t.Fatalf("start with %d cells: %v", n, err)
		}
		ns, err := cells.ListNeighbours(ctx, tr.API.DB)
		if err != nil {
			tr.Shutdown(ctx)
			t.Fatal(err)
		}
		var children []string
		for _, nb := range ns {
			if nb.Relation == cells.Child {
				children = append(children, nb.Path)
			}
		}
		want := []string{"api!cell1", "api!cell2", "api!cell3"}[:n]
		if !slices.Equal(children, want) {
			t.Errorf("with %d cells the API cell's children are %v, want %v", n, children, want)
		}
		if len(tr.Nodes()) != n+1 || tr.Nodes()[0] != tr.API {
			t.Errorf("Nodes() has %d cells, want the API cell first and %d more", len(tr.Nodes()), n)
		}
		url := tr.APIURL()
		if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/v2.1") {
			t.Errorf("APIURL %q, want http://127.0.0.1:PORT/v2.1", url)
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
		} else {
			var doc map[string]any
			err := json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err != nil || doc["version"] == nil {
				t.Errorf("GET %s: %d %v %v", url, resp.StatusCode, doc, err)
			}
		}
		tr.Shutdown(ctx)
		// Shutdown is idempotent.
		tr.Shutdown(ctx)
	}
}
