package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestCreateChecksWhatItNames: a create names an image, a key pair, a
// flavor and networks that must exist and be the caller's to use; each
// that is not is a 400 naming it, and nothing is created.
func TestCreateChecksWhatItNames(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})

	var nets struct {
		Networks []struct{ ID, Name string } `json:"networks"`
	}
	tr.Do(t, http.MethodGet, "/networking/v2.0/networks?name=private", demo, nil).JSON(t, &nets)
	if len(nets.Networks) != 1 {
		t.Fatalf("network private: %+v", nets)
	}
	private := nets.Networks[0].ID
	r := tr.Do(t, http.MethodPost, "/networking/v2.0/networks", admin, map[string]any{"network": map[string]any{"name": "other-net", "shared": true}})
	if r.Status != http.StatusCreated {
		t.Fatalf("create network: %s", r)
	}
	var other struct{ Network struct{ ID string } }
	r.JSON(t, &other)
	if r := tr.Do(t, http.MethodPost, "/v2.1/os-keypairs", demo, map[string]any{"keypair": map[string]any{"name": "mine"}}); r.Status != http.StatusOK {
		t.Fatalf("create keypair: %s", r)
	}
	if r := tr.Do(t, http.MethodPost, "/v2.1/flavors", admin, map[string]any{"flavor": map[string]any{
		"name": "secret", "id": "secret", "ram": 512, "vcpus": 1, "disk": 1, "os-flavor-access:is_public": false}}); r.Status != http.StatusOK {
		t.Fatalf("create private flavor: %s", r)
	}

	good := map[string]any{"name": "ok", "flavorRef": "1", "imageRef": imageID, "key_name": "mine", "availability_zone": "nova",
		"networks": []map[string]any{{"uuid": private}}}
	id := create(t, tr, demo, good)
	waitStatus(t, tr.Compute(demo), id, "ACTIVE")

	before := len(listAll(t, tr, admin, "?all_tenants=1"))
	for _, c := range []struct {
		change map[string]any
		want   string
	}{
		{map[string]any{"imageRef": "11111111-2222-3333-4444-555555555555"}, "Image 11111111-2222-3333-4444-555555555555 could not be found."},
		{map[string]any{"key_name": "theirs"}, "Invalid key_name provided."},
		{map[string]any{"flavorRef": "secret"}, "Flavor secret could not be found."},
		{map[string]any{"networks": []map[string]any{{"uuid": "11111111-2222-3333-4444-555555555555"}}}, "could not be found"},
		{map[string]any{"networks": []map[string]any{{"uuid": other.Network.ID}}}, "has no addresses to give"},
		{map[string]any{"networks": []map[string]any{{"port": "11111111-2222-3333-4444-555555555555"}}}, "ports are created by the compute service"},
		{map[string]any{"networks": []map[string]any{{}}}, "needs a uuid or a port"},
		{map[string]any{"availability_zone": "mars"}, "The requested availability zone is not available"},
	} {
		body := map[string]any{}
		for k, v := range good {
			body[k] = v
		}
		for k, v := range c.change {
			body[k] = v
		}
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": body})
		if msg := testtree.Fault(t, r, http.StatusBadRequest); !strings.Contains(msg, c.want) {
			t.Errorf("create with %v: %q, want it to say %q", c.change, msg, c.want)
		}
	}
	// The admin may boot the private flavor.
	adminBody := map[string]any{"name": "adm", "flavorRef": "secret", "imageRef": imageID}
	waitStatus(t, tr.Compute(admin), create(t, tr, admin, adminBody), "ACTIVE")
	if after := len(listAll(t, tr, admin, "?all_tenants=1")); after != before+1 {
		t.Errorf("refused creates left servers: %d before, %d after (one admin boot)", before, after)
	}
}
