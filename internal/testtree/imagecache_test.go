package testtree_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"

	"github.com/cellcloud/cellcloud/internal/node"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/up"
)

// waitImages waits until n's host has cached exactly images.
func waitImages(t *testing.T, n *node.Node, host string, images ...string) {
	t.Helper()
	slices.Sort(images)
	testpoll.Eventually(t, 60*time.Second, fmt.Sprintf("%s to cache %v", host, images), func() (bool, string) {
		got := n.CachedImages(host)
		return slices.Equal(got, images), fmt.Sprintf("cached %v", got)
	})
}

// TestImageCacheWhileACellIsDown (2.81): an aggregate has a host in each
// of two cells; with cell2 down, two pre-cache requests (the second
// naming the first's image again) are accepted: cell1's host caches at
// once, and cell2's host caches both images when its cell is back (the
// cache_images messages wait in the API cell's outbox; applied in turn,
// the repeated image is "existing", nothing is cached twice).
func TestImageCacheWhileACellIsDown(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 1})
	ctx := context.Background()
	admin := tr.Compute("admin:admin")
	admin.Microversion = "2.81"
	c1, c2 := tr.Cells[0].Config().Cell, tr.Cells[1].Config().Cell
	a, err := aggregates.Create(ctx, admin, aggregates.CreateOpts{Name: "warm"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{c1 + "@cell1-host001", c2 + "@cell2-host001"} {
		testpoll.Eventually(t, 30*time.Second, "add "+h, func() (bool, string) {
			_, err := aggregates.AddHost(ctx, admin, a.ID, aggregates.AddHostOpts{Host: h}).Extract()
			return err == nil, fmt.Sprint(err)
		})
	}

	// A second image (queued, without data: pre-caching asks only that
	// it exists).
	r := tr.Do(t, http.MethodPost, "/image/v2/images", "admin:admin", map[string]any{"name": "warm-2",
		"disk_format": "qcow2", "container_format": "bare", "visibility": "public"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create an image: %s", r)
	}
	var created struct {
		ID string `json:"id"`
	}
	r.JSON(t, &created)
	img := created.ID

	// Back on the same broker address, where the API cell's link finds it.
	cfg := testtree.StopCell(t, tr.Cells[1])

	path := fmt.Sprintf("/v2.1/os-aggregates/%d/images", a.ID)
	for _, ids := range [][]string{{up.DefaultImageID}, {img, up.DefaultImageID}} {
		var cache []any
		for _, id := range ids {
			cache = append(cache, map[string]any{"id": id})
		}
		r := tr.Do(t, http.MethodPost, path, "admin:admin", map[string]any{"cache": cache}, "OpenStack-API-Version", "compute 2.81")
		if r.Status != http.StatusAccepted {
			t.Fatalf("images %v with cell2 down: %s", ids, r)
		}
	}
	waitImages(t, tr.Cells[0], "cell1-host001", up.DefaultImageID, img)

	back := testtree.RestartCell(t, cfg)
	waitImages(t, back, "cell2-host001", up.DefaultImageID, img)
}
