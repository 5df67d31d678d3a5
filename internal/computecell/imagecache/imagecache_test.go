package imagecache_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/imagecache"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

type noSender struct{}

func (noSender) Send(context.Context, *db.Tx, string, string, string, any) error { return nil }

// TestCacheImages: a cache_images message records, for each host it names
// that the cell has, the images to cache (a host the cell does not have is
// skipped), and wakes the agent once it commits; applied a second time (a
// redelivery, a second request) it asks for nothing new and wakes nobody.
// The agents cache what their own hosts were asked, whenever they run:
// one down while the message came (here: not run yet) caches when it is
// back, and the requests are gone once done. A payload without hosts or
// images can never apply.
func TestCacheImages(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "compute", celldb.Migrations); err != nil {
			t.Fatal(err)
		}
		hosts := []string{"h1", "h2", "h3"}
		for _, h := range hosts {
			if err := celldb.RegisterNode(ctx, d, celldb.Node{Host: h, VCPUs: 4, RAMMB: 4096, DiskGB: 100}, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		var wakes atomic.Int32
		h, err := imagecache.New(imagecache.Config{Cell: "api!cell1", OnRequest: func() { wakes.Add(1) }, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		apply := func(m wire.CacheImages) error {
			payload, _ := json.Marshal(m)
			env := &wire.Envelope{ID: "m1", Method: wire.MethodCacheImages, RequestID: "req-1", Payload: payload}
			return d.InTx(ctx, func(tx *db.Tx) error { return h.CacheImages(ctx, tx, env) })
		}
		// Two agents (two processes): h1 and h2 in one, h3 in another.
		agent := func(hosts ...string) (*compute.Service, *fake.Driver) {
			drv, err := fake.New(fake.Config{})
			if err != nil {
				t.Fatal(err)
			}
			svc, err := compute.New(compute.Config{Cell: "api!cell1", DB: d, Sender: noSender{}, Driver: drv, Hosts: hosts,
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			return svc, drv
		}
		a12, d12 := agent("h1", "h2")
		a3, d3 := agent("h3")

		imgs := []string{"img-a", "img-b"}
		m := wire.CacheImages{AggregateID: 1, Hosts: []string{"h1", "h2", "h3", "gone"}, ImageIDs: imgs}
		for i := range 2 {
			if err := apply(m); err != nil {
				t.Fatalf("apply %d: %v", i, err)
			}
		}
		if n := wakes.Load(); n != 1 {
			t.Errorf("woken %d times for a message and its repeat, want once", n)
		}
		pending, err := celldb.PendingImageCache(ctx, d, []string{"h1", "h2", "h3", "gone"})
		if err != nil {
			t.Fatal(err)
		}
		for _, host := range []string{"h1", "h2", "h3"} {
			if !slices.Equal(pending[host], imgs) {
				t.Errorf("%s is asked for %v, want %v", host, pending[host], imgs)
			}
		}
		if len(pending["gone"]) != 0 {
			t.Errorf("a host the cell does not have is asked for %v", pending["gone"])
		}

		// The first agent runs: its hosts cache, h3's requests stay.
		if err := a12.CachePending(ctx); err != nil {
			t.Fatal(err)
		}
		for _, host := range []string{"h1", "h2"} {
			if got := d12.CachedImages(host); !slices.Equal(got, imgs) {
				t.Errorf("%s cached %v, want %v", host, got, imgs)
			}
		}
		if pending, _ := celldb.PendingImageCache(ctx, d, hosts); len(pending["h1"])+len(pending["h2"]) != 0 || len(pending["h3"]) != 2 {
			t.Errorf("after the first agent ran: pending %v, want h3's two only", pending)
		}
		// h3's agent comes back: it caches, and nothing is left.
		if err := a3.CachePending(ctx); err != nil {
			t.Fatal(err)
		}
		if got := d3.CachedImages("h3"); !slices.Equal(got, imgs) {
			t.Errorf("h3 cached %v once back, want %v", got, imgs)
		}
		if pending, _ := celldb.PendingImageCache(ctx, d, hosts); len(pending) != 0 {
			t.Errorf("pending %v after both agents ran, want none", pending)
		}
		// Asked again: cached again (already there), nothing left.
		if err := apply(m); err != nil {
			t.Fatal(err)
		}
		if err := a12.CachePending(ctx); err != nil {
			t.Fatal(err)
		}
		if got := d12.CachedImages("h1"); !slices.Equal(got, imgs) {
			t.Errorf("h1 cached %v after a second request, want %v", got, imgs)
		}

		for _, bad := range []wire.CacheImages{{Hosts: []string{"h1"}}, {ImageIDs: imgs}, {Hosts: []string{"h1"}, ImageIDs: []string{""}}} {
			if err := apply(bad); wire.AsError(err).Code != wire.CodeBadMessage {
				t.Errorf("apply %+v: %v, want bad_message", bad, err)
			}
		}
	})
}
