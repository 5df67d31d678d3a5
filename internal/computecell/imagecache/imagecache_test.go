package imagecache_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
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

// agents are the compute agent of the cell's hosts, with some hosts'
// agents unreachable (their process down); it records each call's answer.
type agents struct {
	svc  *compute.Service
	mu   sync.Mutex
	down map[string]bool
	got  []map[string]string
}

func (a *agents) CacheImages(ctx context.Context, host string, images []string) (map[string]string, error) {
	a.mu.Lock()
	down := a.down[host]
	a.mu.Unlock()
	if down {
		return nil, errors.New("nats: no responders available for request")
	}
	res, err := a.svc.CacheImages(ctx, host, images)
	a.mu.Lock()
	a.got = append(a.got, res)
	a.mu.Unlock()
	return res, err
}

func (a *agents) setDown(host string, down bool) {
	a.mu.Lock()
	a.down[host] = down
	a.mu.Unlock()
}

// TestCacheImages: a cache_images message has each host it names that the
// cell has cache the images (a host the cell does not have is skipped);
// applied a second time (a redelivery, a second request) it caches
// nothing new and every answer is "existing". With a host's agent down,
// applying fails (the inbox retries) after the other hosts cached; once
// the agent is back the retry caches there too. A payload without hosts
// or images can never apply.
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
		drv, err := fake.New(fake.Config{})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := compute.New(compute.Config{Cell: "api!cell1", DB: d, Sender: noSender{}, Driver: drv, Hosts: hosts,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ag := &agents{svc: svc, down: map[string]bool{}}
		h, err := imagecache.New(imagecache.Config{Cell: "api!cell1", Hosts: ag, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		apply := func(m wire.CacheImages) error {
			payload, _ := json.Marshal(m)
			env := &wire.Envelope{ID: "m1", Method: wire.MethodCacheImages, RequestID: "req-1", Payload: payload}
			return d.InTx(ctx, func(tx *db.Tx) error { return h.CacheImages(ctx, tx, env) })
		}
		imgs := []string{"img-a", "img-b"}
		m := wire.CacheImages{AggregateID: 1, Hosts: []string{"h1", "h2", "gone"}, ImageIDs: imgs}
		for i := range 2 {
			if err := apply(m); err != nil {
				t.Fatalf("apply %d: %v", i, err)
			}
			for _, host := range []string{"h1", "h2"} {
				if got := drv.CachedImages(host); !slices.Equal(got, imgs) {
					t.Errorf("apply %d: %s cached %v, want %v", i, host, got, imgs)
				}
			}
			if got := drv.CachedImages("h3"); len(got) != 0 {
				t.Errorf("h3, not in the message, cached %v", got)
			}
		}
		for i, res := range ag.got {
			want := wire.ImageCached
			if i >= 2 {
				want = wire.ImageExisting
			}
			if res["img-a"] != want || res["img-b"] != want {
				t.Errorf("answer %d: %v, want every image %s", i, res, want)
			}
		}

		// h3's agent is down: the message does not apply, h2 caches.
		ag.setDown("h3", true)
		m2 := wire.CacheImages{AggregateID: 1, Hosts: []string{"h2", "h3"}, ImageIDs: []string{"img-c"}}
		if err := apply(m2); err == nil {
			t.Fatal("applied with a host's agent down")
		} else if wire.AsError(err).Code != wire.CodeInternal {
			t.Errorf("error %v: a retryable one wanted", err)
		}
		if got := drv.CachedImages("h2"); !slices.Contains(got, "img-c") {
			t.Errorf("h2 cached %v while h3 was down, want img-c among them", got)
		}
		ag.setDown("h3", false)
		if err := apply(m2); err != nil {
			t.Fatalf("retry once h3 is back: %v", err)
		}
		if got := drv.CachedImages("h3"); !slices.Equal(got, []string{"img-c"}) {
			t.Errorf("h3 cached %v after it came back, want [img-c]", got)
		}

		for _, bad := range []wire.CacheImages{{Hosts: []string{"h1"}}, {ImageIDs: imgs}, {Hosts: []string{"h1"}, ImageIDs: []string{""}}} {
			if err := apply(bad); wire.AsError(err).Code != wire.CodeBadMessage {
				t.Errorf("apply %+v: %v, want bad_message", bad, err)
			}
		}
	})
}
