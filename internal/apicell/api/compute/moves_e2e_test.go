package compute_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// hostOf is the admin's view of a server's host.
func hostOf(t *testing.T, tr *testtree.Tree, id string) string {
	t.Helper()
	var body struct {
		Server struct {
			Host   *string `json:"OS-EXT-SRV-ATTR:host"`
			Flavor struct {
				ID string `json:"id"`
			} `json:"flavor"`
		} `json:"server"`
	}
	tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil).JSON(t, &body)
	if body.Server.Host == nil {
		return ""
	}
	return *body.Server.Host
}

// TestServerMoves drives resize (confirm and revert), cold migration,
// shelve and unshelve, and rebuild through gophercloud.
func TestServerMoves(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 3})
	sc := tr.Compute(demo)
	adminSC := tr.Compute(admin)
	ctx := context.Background()
	id := create(t, tr, demo, map[string]any{"name": "mover", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	src := hostOf(t, tr, id)

	// Resize to the same flavor is refused; confirm without a resize too.
	if err := servers.Resize(ctx, sc, id, servers.ResizeOpts{FlavorRef: "1"}).ExtractErr(); err == nil || !strings.Contains(err.Error(), "must change flavor") {
		t.Errorf("resize to the same flavor: %v", err)
	}
	if err := servers.ConfirmResize(ctx, sc, id).ExtractErr(); err == nil || !strings.Contains(err.Error(), "Cannot 'confirmResize'") {
		t.Errorf("confirm without a resize: %v", err)
	}

	// Resize and revert: back on the source host with the old flavor.
	if err := servers.Resize(ctx, sc, id, servers.ResizeOpts{FlavorRef: "2"}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	s := waitStatus(t, sc, id, "VERIFY_RESIZE")
	if s.Flavor["id"] != "2" {
		t.Errorf("after resize the flavor is %v, want 2", s.Flavor["id"])
	}
	if dst := hostOf(t, tr, id); dst == src || dst == "" {
		t.Errorf("resized onto %q from %q", dst, src)
	}
	if err := servers.RevertResize(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	s = waitStatus(t, sc, id, "ACTIVE")
	if s.Flavor["id"] != "1" || hostOf(t, tr, id) != src {
		t.Errorf("after revert: flavor %v on %q, want 1 on %q", s.Flavor["id"], hostOf(t, tr, id), src)
	}

	// Resize and confirm: the new flavor on the new host.
	if err := servers.Resize(ctx, sc, id, servers.ResizeOpts{FlavorRef: "2"}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "VERIFY_RESIZE")
	dst := hostOf(t, tr, id)
	if err := servers.ConfirmResize(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	s = waitStatus(t, sc, id, "ACTIVE")
	if s.Flavor["id"] != "2" || hostOf(t, tr, id) != dst {
		t.Errorf("after confirm: flavor %v on %q, want 2 on %q", s.Flavor["id"], hostOf(t, tr, id), dst)
	}

	// Cold migration is for admins and keeps the flavor.
	if err := servers.Migrate(ctx, sc, id).ExtractErr(); err == nil {
		t.Error("a member could migrate")
	}
	if err := servers.Migrate(ctx, adminSC, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "VERIFY_RESIZE")
	if h := hostOf(t, tr, id); h == dst {
		t.Errorf("migrated onto the same host %q", h)
	}
	if err := servers.ConfirmResize(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "ACTIVE")

	// Shelve offloads: no host; unshelve finds one.
	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHELVED_OFFLOADED")
	if h := hostOf(t, tr, id); h != "" {
		t.Errorf("a shelved-offloaded server is on host %q", h)
	}
	if err := servers.Unshelve(ctx, sc, id, servers.UnshelveOpts{}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "ACTIVE")
	if hostOf(t, tr, id) == "" {
		t.Error("an unshelved server has no host")
	}

	// Rebuild renames and answers with the server.
	r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo,
		map[string]any{"rebuild": map[string]any{"imageRef": imageID, "name": "rebuilt"}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("rebuild: %s", r)
	}
	var rb struct {
		Server struct {
			Name, AdminPass string
		} `json:"server"`
	}
	r.JSON(t, &rb)
	if rb.Server.Name != "rebuilt" || rb.Server.AdminPass == "" {
		t.Errorf("rebuild answered %+v", rb.Server)
	}
	s = waitStatus(t, sc, id, "ACTIVE")
	if s.Name != "rebuilt" {
		t.Errorf("name after rebuild: %q", s.Name)
	}
	r = tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo,
		map[string]any{"rebuild": map[string]any{"imageRef": "11111111-2222-3333-4444-555555555555"}})
	testtree.Fault(t, r, http.StatusBadRequest)
	// A rebuild's name and metadata are checked as a create's: refused,
	// they change nothing.
	for _, c := range []struct {
		change map[string]any
		want   []string
	}{
		{map[string]any{"name": "re\x00built"}, []string{"'name'", "printable characters"}},
		{map[string]any{"metadata": map[string]string{strings.Repeat("k", 256): "v"}}, []string{"metadata", "does not match"}},
		{map[string]any{"metadata": map[string]string{"k": strings.Repeat("v", 256)}}, []string{"k", "too long"}},
	} {
		body := map[string]any{"imageRef": imageID}
		for k, v := range c.change {
			body[k] = v
		}
		msg := testtree.Fault(t, tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, map[string]any{"rebuild": body}), http.StatusBadRequest)
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("rebuild with %.80v: message %.200q does not hold %q", c.change, msg, w)
			}
		}
	}
	if s := waitStatus(t, sc, id, "ACTIVE"); s.Name != "rebuilt" || len(s.Metadata) != 0 {
		t.Errorf("refused rebuilds changed the server: name %q, metadata %v", s.Name, s.Metadata)
	}

	// Deleting a resized server frees both hosts.
	if err := servers.Resize(ctx, sc, id, servers.ResizeOpts{FlavorRef: "1"}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "VERIFY_RESIZE")
	if err := servers.Delete(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, sc, id)
	testpoll.Eventually(t, wait, "every host's resources given back", func() (bool, string) {
		nodes, err := celldb.ListNodes(ctx, tr.Cells[0].DB)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range nodes {
			if n.UsedRAMMB != 0 || n.UsedVCPUs != 0 || n.Instances != 0 {
				return false, fmt.Sprintf("%s still uses %d MB, %d vCPUs, %d instances", n.Host, n.UsedRAMMB, n.UsedVCPUs, n.Instances)
			}
		}
		return true, ""
	})
}

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
	testpoll.Eventually(t, wait, "the snapshot to be active", func() (bool, string) {
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
	// Nova's create_image schema: name is parameter_types.name, metadata is
	// parameter_types.metadata (keys of 1 to 255 of [a-zA-Z0-9-_:. ],
	// string values of at most 255). None of these makes an image.
	countImages := func() int {
		var out struct{ Images []any }
		tr.Do(t, http.MethodGet, "/image/v2/images?limit=1000", demo, nil).JSON(t, &out)
		return len(out.Images)
	}
	imagesBefore := countImages()
	if imagesBefore == 0 {
		t.Fatal("the Image API lists no images")
	}
	for _, c := range []struct {
		body any
		want []string
	}{
		{map[string]any{"createImage": map[string]any{"name": "snap", "metadata": map[string]string{strings.Repeat("k", 256): "v"}}}, []string{"metadata", "does not match"}},
		{map[string]any{"createImage": map[string]any{"name": "snap", "metadata": map[string]string{strings.Repeat("k", 70<<10): "v"}}}, []string{"metadata", "does not match"}},
		{map[string]any{"createImage": map[string]any{"name": "snap", "metadata": map[string]string{"a/b": "v"}}}, []string{"metadata", "'a/b'"}},
		{map[string]any{"createImage": map[string]any{"name": "snap", "metadata": map[string]string{"k": strings.Repeat("v", 256)}}}, []string{"k", "too long"}},
		{map[string]any{"createImage": map[string]any{"name": "snap", "metadata": map[string]any{"k": 1}}}, []string{"k", "'string'"}},
		{map[string]any{"createImage": map[string]any{"name": "snap", "metadata": "k=v"}}, []string{"metadata", "'object'"}},
		{map[string]any{"createImage": map[string]any{"name": "snap\x00shot"}}, []string{"'name'", "printable characters"}},
		{map[string]any{"createImage": map[string]any{"name": strings.Repeat("n", 256)}}, []string{"name", "too long"}},
		{map[string]any{"createImage": "snap"}, []string{"createImage", "'object'"}},
	} {
		msg := testtree.Fault(t, tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, c.body), http.StatusBadRequest)
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("createImage %.80v: message %.200q does not hold %q", c.body, msg, w)
			}
		}
	}
	if n := countImages(); n != imagesBefore {
		t.Errorf("refused createImage requests made images: %d before, %d after", imagesBefore, n)
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
