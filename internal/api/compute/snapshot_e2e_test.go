package compute_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestCreateImage snapshots a server: the image appears in the Image API,
// becomes active with the data the instance's cell sent up, and boots.
func TestCreateImage(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	sc := tr.Compute(demo)
	ctx := context.Background()
	id := create(t, tr, demo, map[string]any{"name": "snapme", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")

	imageID2, err := servers.CreateImage(ctx, sc, id, servers.CreateImageOpts{Name: "snap-1", Metadata: map[string]string{"purpose": "test"}}).ExtractImageID()
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSuffix(tr.APIURL(), "/v2.1")
	ic := &gophercloud.ServiceClient{ProviderClient: sc.ProviderClient, Endpoint: root + "/image/v2/", ResourceBase: root + "/image/v2/", Type: "image"}
	var img *images.Image
	testtree.Eventually(t, wait, "the snapshot to be active", func() (bool, string) {
		img, err = images.Get(ctx, ic, imageID2).Extract()
		if err != nil {
			return false, err.Error()
		}
		return img.Status == images.ImageStatusActive, string(img.Status)
	})
	if img.Name != "snap-1" || img.Visibility != images.ImageVisibilityPrivate || img.Properties["image_type"] != "snapshot" ||
		img.Properties["instance_uuid"] != id || img.Properties["purpose"] != "test" {
		t.Errorf("snapshot image: %+v", img)
	}
	rd, err := imagedata.Download(ctx, ic, imageID2).Extract()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rd)
	rd.Close()
	if !strings.Contains(string(data), id) {
		t.Errorf("snapshot data %q does not name its instance", data)
	}
	waitStatus(t, sc, id, "ACTIVE")
	// Another project cannot see it; its owner can boot it.
	if _, err := images.Get(ctx, &gophercloud.ServiceClient{ProviderClient: tr.Compute(other).ProviderClient, Endpoint: ic.Endpoint, ResourceBase: ic.ResourceBase}, imageID2).Extract(); err == nil {
		t.Error("another project sees a private snapshot")
	}
	waitStatus(t, sc, create(t, tr, demo, map[string]any{"name": "from-snap", "flavorRef": "1", "imageRef": imageID2}), "ACTIVE")

	// Bad requests.
	for _, body := range []string{`{"createImage": {}}`, `{"createImage": {"name": ""}}`, `{"createImage": {"name": "x", "colour": 1}}`} {
		testtree.Fault(t, tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, body), http.StatusBadRequest)
	}
	// A shelved (offloaded) server has no disk to snapshot.
	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHELVED_OFFLOADED")
	r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, `{"createImage": {"name": "late"}}`)
	if msg := testtree.Fault(t, r, http.StatusConflict); !strings.Contains(msg, "Cannot 'createImage'") {
		t.Errorf("snapshot of a shelved server: %q", msg)
	}
}
