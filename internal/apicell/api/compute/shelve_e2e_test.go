package compute_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// imageClient is token's client of the tree's Image API.
func imageClient(tr *testtree.Tree, token string) *gophercloud.ServiceClient {
	root := strings.TrimSuffix(tr.APIURL(), "/v2.1")
	return &gophercloud.ServiceClient{ProviderClient: tr.Compute(token).ProviderClient, Endpoint: root + "/image/v2/",
		ResourceBase: root + "/image/v2/", Type: "image"}
}

// shelvedImage waits for the one live image named name and returns it
// once it is active.
func shelvedImage(t *testing.T, tr *testtree.Tree, token, name string) *images.Image {
	t.Helper()
	ic := imageClient(tr, token)
	var img *images.Image
	testpoll.Eventually(t, wait, "image "+name+" to be active", func() (bool, string) {
		page, err := images.List(ic, images.ListOpts{Name: name}).AllPages(context.Background())
		if err != nil {
			return false, err.Error()
		}
		all, err := images.ExtractImages(page)
		if err != nil {
			return false, err.Error()
		}
		if len(all) != 1 {
			return false, fmt.Sprintf("%d images named %s", len(all), name)
		}
		img = &all[0]
		return img.Status == images.ImageStatusActive, string(img.Status)
	})
	return img
}

// waitImageGone polls until the image is not found.
func waitImageGone(t *testing.T, tr *testtree.Tree, id, why string) {
	t.Helper()
	ic := imageClient(tr, admin)
	testpoll.Eventually(t, wait, why, func() (bool, string) {
		img, err := images.Get(context.Background(), ic, id).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, "image " + id + " is " + string(img.Status)
	})
}

// action posts a server action and returns the response.
func action(t *testing.T, tr *testtree.Tree, token, id, body string) *testtree.Response {
	t.Helper()
	return tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", token, body)
}

// TestShelveMakesASnapshot: with compute.shelved_offload_time 0 (Nova's
// default), shelve snapshots the server into "<name>-shelved" (an active
// private image of the server's project with Nova's snapshot properties
// and the data the cell sent up) and offloads it; unshelve boots it again
// and deletes the image; deleting a shelved server deletes its image too.
// Wrong states are 409s with Nova's messages; shelveOffload is for admins.
// The messages this rides on (instance_action, snapshot_done,
// instance_update) are durable: a receiver that is down gets them from
// the outbox when it is back; what a second copy does is in apicopy's
// TestShelvedImageGoesWithTheShelve and instanceops'
// TestShelveKeepsTheHostUntilTheOffload.
func TestShelveMakesASnapshot(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 2})
	sc := tr.Compute(demo)
	ctx := ctxT(t)
	id := create(t, tr, demo, map[string]any{"name": "keeper", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")

	if r := action(t, tr, demo, id, `{"unshelve": null}`); r.Status != http.StatusConflict ||
		!strings.Contains(testtree.Fault(t, r, http.StatusConflict), "Cannot 'unshelve' instance "+id+" while it is in vm_state active") {
		t.Errorf("unshelve of an active server: %s", r)
	}
	// Nova's shelve schema takes any value.
	if r := action(t, tr, demo, id, `{"shelve": {}}`); r.Status != http.StatusAccepted || len(r.Body) != 0 {
		t.Fatalf("shelve: %s", r)
	}
	waitStatus(t, sc, id, "SHELVED_OFFLOADED")
	if h := hostOf(t, tr, id); h != "" {
		t.Errorf("an offloaded server is on host %q", h)
	}
	img := shelvedImage(t, tr, demo, "keeper-shelved")
	if img.Visibility != images.ImageVisibilityPrivate || img.Owner != "demo" || img.Properties["image_type"] != "snapshot" ||
		img.Properties["instance_uuid"] != id || img.Properties["base_image_ref"] != imageID || img.Properties["user_id"] != "demo" {
		t.Errorf("shelved image: visibility %s, owner %s, properties %v", img.Visibility, img.Owner, img.Properties)
	}
	rd, err := imagedata.Download(ctx, imageClient(tr, demo), img.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rd)
	rd.Close()
	if !strings.Contains(string(data), id) {
		t.Errorf("shelved image data %q does not name its server", data)
	}
	if _, err := images.Get(ctx, imageClient(tr, other), img.ID).Extract(); err == nil {
		t.Error("another project sees a shelved image")
	}

	// Wrong states and rules.
	if msg := testtree.Fault(t, action(t, tr, demo, id, `{"shelve": null}`), http.StatusConflict); !strings.Contains(msg, "Cannot 'shelve' instance "+id+" while it is in vm_state shelved_offloaded") {
		t.Errorf("shelve of a shelved server: %q", msg)
	}
	testtree.Fault(t, action(t, tr, demo, id, `{"shelveOffload": null}`), http.StatusForbidden)
	if msg := testtree.Fault(t, action(t, tr, admin, id, `{"shelveOffload": null}`), http.StatusConflict); !strings.Contains(msg, "Cannot 'shelveOffload' instance "+id+" while it is in vm_state shelved_offloaded") {
		t.Errorf("shelveOffload of an offloaded server: %q", msg)
	}

	// Unshelve boots it on a host and deletes the image.
	if err := servers.Unshelve(ctx, sc, id, servers.UnshelveOpts{}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "ACTIVE")
	if hostOf(t, tr, id) == "" {
		t.Error("an unshelved server has no host")
	}
	waitImageGone(t, tr, img.ID, "the shelved image to be deleted after the unshelve")

	// Shelved again, a new image; deleting the server deletes it.
	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHELVED_OFFLOADED")
	img2 := shelvedImage(t, tr, demo, "keeper-shelved")
	if img2.ID == img.ID {
		t.Fatalf("the second shelve reused image %s", img.ID)
	}
	// The instance actions name shelve and unshelve.
	var acts struct {
		InstanceActions []struct{ Action string } `json:"instanceActions"`
	}
	tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-instance-actions", admin, nil).JSON(t, &acts)
	var names []string
	for _, a := range acts.InstanceActions {
		names = append(names, a.Action)
	}
	if got := strings.Join(names, ","); got != "shelve,unshelve,shelve,create" {
		t.Errorf("instance actions: %s", got)
	}
	if err := servers.Delete(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, sc, id)
	waitImageGone(t, tr, img2.ID, "the shelved image to be deleted with its server")

}

// TestUnshelveWithoutItsImage: an offloaded server whose shelved image its
// owner deleted cannot boot: unshelve answers 202 and the server goes to
// ERROR with Nova's fault (its conductor's).
func TestUnshelveWithoutItsImage(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1})
	sc := tr.Compute(demo)
	ctx := ctxT(t)
	id := create(t, tr, demo, map[string]any{"name": "lost", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHELVED_OFFLOADED")
	img := shelvedImage(t, tr, demo, "lost-shelved")
	if err := images.Delete(ctx, imageClient(tr, demo), img.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := servers.Unshelve(ctx, sc, id, servers.UnshelveOpts{}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	s := waitStatus(t, sc, id, "ERROR")
	if want := "Unshelve attempted but the image " + img.ID + " cannot be found."; s.Fault.Message != want || s.Fault.Code != 404 {
		t.Errorf("fault %+v, want 404 %q", s.Fault, want)
	}
	if err := servers.Delete(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, sc, id)
}

// TestShelveKeepsTheHost: with compute.shelved_offload_time -1 a shelved
// server stays SHELVED on its host (its image made all the same); unshelve
// powers it on there and deletes the image; shelveOffload (admin) takes
// it off the host, and unshelve then boots it on one.
func TestShelveKeepsTheHost(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 2, ShelvedOffloadTime: -time.Second})
	sc := tr.Compute(demo)
	adminSC := tr.Compute(admin)
	ctx := ctxT(t)
	id := create(t, tr, demo, map[string]any{"name": "stayer", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	host := hostOf(t, tr, id)

	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if s := waitStatus(t, sc, id, "SHELVED"); s.PowerState != servers.SHUTDOWN {
		t.Errorf("a shelved server's power state is %v", s.PowerState)
	}
	if h := hostOf(t, tr, id); h != host {
		t.Errorf("the shelved server is on %q, was on %q", h, host)
	}
	img := shelvedImage(t, tr, demo, "stayer-shelved")
	if err := servers.Unshelve(ctx, sc, id, servers.UnshelveOpts{}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "ACTIVE")
	if h := hostOf(t, tr, id); h != host {
		t.Errorf("unshelved on %q, was shelved on %q", h, host)
	}
	waitImageGone(t, tr, img.ID, "the shelved image to be deleted after the unshelve")

	// shelveOffload: admins only, SHELVED only.
	if msg := testtree.Fault(t, action(t, tr, admin, id, `{"shelveOffload": null}`), http.StatusConflict); !strings.Contains(msg, "Cannot 'shelveOffload' instance "+id+" while it is in vm_state active") {
		t.Errorf("shelveOffload of an active server: %q", msg)
	}
	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHELVED")
	img = shelvedImage(t, tr, demo, "stayer-shelved")
	testtree.Fault(t, action(t, tr, demo, id, `{"shelveOffload": null}`), http.StatusForbidden)
	if r := action(t, tr, admin, id, `{"shelveOffload": null}`); r.Status != http.StatusAccepted || len(r.Body) != 0 {
		t.Fatalf("shelveOffload: %s", r)
	}
	waitStatus(t, adminSC, id, "SHELVED_OFFLOADED")
	if h := hostOf(t, tr, id); h != "" {
		t.Errorf("an offloaded server is on host %q", h)
	}
	if _, err := images.Get(ctx, imageClient(tr, demo), img.ID).Extract(); err != nil {
		t.Errorf("the shelved image after the offload: %v", err)
	}
	if err := servers.Unshelve(ctx, sc, id, servers.UnshelveOpts{}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "ACTIVE")
	waitImageGone(t, tr, img.ID, "the shelved image to be deleted after the unshelve")

	// Deleting a SHELVED (not offloaded) server deletes its image too.
	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHELVED")
	img = shelvedImage(t, tr, demo, "stayer-shelved")
	if err := servers.Delete(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, sc, id)
	waitImageGone(t, tr, img.ID, "the shelved image to be deleted with its server")
}

// TestShelveOffloadsAfterTheTime: with compute.shelved_offload_time above
// zero the shelve leaves the server SHELVED, and the cell's periodic
// offloads it once that time has passed (so reaching SHELVED_OFFLOADED is
// the periodic's doing).
func TestShelveOffloadsAfterTheTime(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 2, ShelvedOffloadTime: time.Second, ShelvedPollInterval: 100 * time.Millisecond})
	sc := tr.Compute(demo)
	ctx := ctxT(t)
	id := create(t, tr, demo, map[string]any{"name": "later", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHELVED_OFFLOADED")
	if h := hostOf(t, tr, id); h != "" {
		t.Errorf("an offloaded server is on host %q", h)
	}
	img := shelvedImage(t, tr, demo, "later-shelved")
	if err := servers.Unshelve(ctx, sc, id, servers.UnshelveOpts{}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "ACTIVE")
	waitImageGone(t, tr, img.ID, "the shelved image to be deleted after the unshelve")
}

// TestResetCutsAnUnshelveShort: an admin's reset to active while an
// unshelve runs (spawns take a second here) ends the unshelve: the
// shelved image is deleted, whichever of the two the cell does first
// (the unshelve's own end deletes it too).
func TestResetCutsAnUnshelveShort(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1, SpawnLatency: time.Second})
	sc := tr.Compute(demo)
	ctx := ctxT(t)
	id := create(t, tr, demo, map[string]any{"name": "cut", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHELVED_OFFLOADED")
	img := shelvedImage(t, tr, demo, "cut-shelved")
	if err := servers.Unshelve(ctx, sc, id, servers.UnshelveOpts{}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if r := action(t, tr, admin, id, `{"os-resetState": {"state": "active"}}`); r.Status != http.StatusAccepted {
		t.Fatalf("reset: %s", r)
	}
	waitImageGone(t, tr, img.ID, "the shelved image to be deleted once the unshelve is cut short")
}
