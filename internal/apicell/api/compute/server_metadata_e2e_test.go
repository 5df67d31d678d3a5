package compute_test

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestServerMetadata drives the metadata calls with gophercloud, checks
// Nova's schema, quota (128 items) and state errors, and that nothing is
// written on any of them.
func TestServerMetadata(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	sc := tr.Compute(demo)
	id := create(t, tr, demo, map[string]any{"name": "meta", "flavorRef": "1", "imageRef": imageID, "metadata": map[string]string{"role": "db"}})
	waitStatus(t, sc, id, "ACTIVE")

	meta := func() map[string]string {
		t.Helper()
		m, err := servers.Metadata(ctx, sc, id).Extract()
		if err != nil {
			t.Fatalf("metadata: %v", err)
		}
		return m
	}
	same := func(got, want map[string]string) bool { return maps.Equal(got, want) }

	if m := meta(); !same(m, map[string]string{"role": "db"}) {
		t.Errorf("metadata at create: %v", m)
	}
	m, err := servers.UpdateMetadata(ctx, sc, id, servers.MetadataOpts{"tier": "back", "role": "primary"}).Extract()
	if err != nil || !same(m, map[string]string{"role": "primary", "tier": "back"}) {
		t.Errorf("POST metadata answered %v, %v", m, err)
	}
	m, err = servers.ResetMetadata(ctx, sc, id, servers.MetadataOpts{"only": "this"}).Extract()
	if err != nil || !same(m, map[string]string{"only": "this"}) || !same(meta(), m) {
		t.Errorf("PUT metadata answered %v, %v; stored %v", m, err, meta())
	}
	m, err = servers.CreateMetadatum(ctx, sc, id, servers.MetadatumOpts{"k.1:x y": "v"}).Extract()
	if err != nil || !same(m, map[string]string{"k.1:x y": "v"}) {
		t.Errorf("PUT metadata item answered %v, %v", m, err)
	}
	if m, err := servers.Metadatum(ctx, sc, id, "k.1:x y").Extract(); err != nil || m["k.1:x y"] != "v" {
		t.Errorf("GET metadata item: %v, %v", m, err)
	}
	if err := servers.DeleteMetadatum(ctx, sc, id, "k.1:x y").ExtractErr(); err != nil {
		t.Errorf("DELETE metadata item: %v", err)
	}
	for _, r := range []*testtree.Response{
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/metadata/k.1:x%20y", demo, nil),
		tr.Do(t, http.MethodDelete, "/v2.1/servers/"+id+"/metadata/k.1:x%20y", demo, nil),
	} {
		faultHas(t, r, http.StatusNotFound, "Metadata item was not found")
	}
	// The server shows what was written.
	if s, _ := servers.Get(ctx, sc, id).Extract(); len(s.Metadata) != 1 || s.Metadata["only"] != "this" {
		t.Errorf("server metadata %v", s.Metadata)
	}

	// Bad input: a 400 naming what is wrong, and nothing written.
	before := meta()
	path := "/v2.1/servers/" + id + "/metadata"
	long := strings.Repeat("v", 256)
	for _, c := range []struct {
		method, path string
		body         any
		want         string
	}{
		{"POST", path, map[string]any{"metadata": map[string]any{"bad/key": "v"}}, "'bad/key' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'"},
		{"POST", path, map[string]any{"metadata": map[string]any{strings.Repeat("k", 256): "v"}}, "does not match any of the regexes"},
		{"POST", path, map[string]any{"metadata": map[string]any{"": "v"}}, "does not match any of the regexes"},
		{"POST", path, map[string]any{"metadata": map[string]any{"k": long}}, "Invalid input for field/attribute k. Value: " + long + ". '" + long + "' is too long"},
		{"POST", path, map[string]any{"metadata": map[string]any{"k": 1}}, "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'"},
		{"POST", path, map[string]any{"metadata": map[string]any{"k": nil}}, "None is not of type 'string'"},
		{"POST", path, map[string]any{"metadata": []string{"k"}}, "Invalid input for field/attribute metadata. Value: ['k']. ['k'] is not of type 'object'"},
		{"POST", path, map[string]any{"meta": map[string]any{"k": "v"}}, "'metadata' is a required property"},
		{"PUT", path, map[string]any{"metadata": map[string]any{"k": "v"}, "more": 1}, "Additional properties are not allowed ('more' was unexpected)"},
		{"PUT", path, "[1, 2]", "is not of type 'object'"},
		{"PUT", path + "/k", map[string]any{"meta": map[string]any{"other": "v"}}, "Request body and URI mismatch"},
		{"PUT", path + "/k", map[string]any{"meta": map[string]any{"k": "v", "l": "w"}}, "has too many properties"},
		{"PUT", path + "/k", map[string]any{"meta": map[string]any{}}, "Invalid input for field/attribute meta. Value: {}. {} should be non-empty"},
		{"PUT", path + "/k", map[string]any{"metadata": map[string]any{"k": "v"}}, "'meta' is a required property"},
	} {
		faultHas(t, tr.Do(t, c.method, c.path, demo, c.body), http.StatusBadRequest, c.want)
	}
	if m := meta(); !same(m, before) {
		t.Errorf("bad requests wrote metadata: %v, was %v", m, before)
	}

	// Quota: 128 items in all.
	full := servers.MetadataOpts{}
	for i := range 128 {
		full[fmt.Sprintf("k%03d", i)] = "v"
	}
	if _, err := servers.ResetMetadata(ctx, sc, id, full).Extract(); err != nil {
		t.Fatalf("128 items: %v", err)
	}
	for _, r := range []*testtree.Response{
		tr.Do(t, http.MethodPost, path, demo, map[string]any{"metadata": map[string]string{"one": "more"}}),
		tr.Do(t, http.MethodPut, path+"/one", demo, map[string]any{"meta": map[string]string{"one": "more"}}),
		tr.Do(t, http.MethodPut, path, demo, map[string]any{"metadata": func() map[string]string {
			m := maps.Clone(map[string]string(full))
			m["one"] = "more"
			return m
		}()}),
	} {
		faultHas(t, r, http.StatusForbidden, "Maximum number of metadata items exceeds 128")
	}
	if m := meta(); len(m) != 128 || m["one"] != "" {
		t.Errorf("over quota wrote: %d items", len(m))
	}
	// Replacing an item of a full set is fine.
	if _, err := servers.CreateMetadatum(ctx, sc, id, servers.MetadatumOpts{"k000": "w"}).Extract(); err != nil {
		t.Errorf("replacing an item of 128: %v", err)
	}
	if _, err := servers.ResetMetadata(ctx, sc, id, servers.MetadataOpts{"role": "db"}).Extract(); err != nil {
		t.Fatal(err)
	}

	// State: Nova changes metadata only in active, paused, suspended and
	// stopped servers with no task.
	adm := tr.Compute(admin)
	if err := servers.ResetState(ctx, adm, id, servers.StateError).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "ERROR")
	faultHas(t, tr.Do(t, http.MethodPost, path, demo, map[string]any{"metadata": map[string]string{"a": "b"}}), http.StatusConflict,
		"Cannot 'update metadata' instance "+id+" while it is in vm_state error")
	faultHas(t, tr.Do(t, http.MethodDelete, path+"/role", demo, nil), http.StatusConflict,
		"Cannot 'delete metadata' instance "+id+" while it is in vm_state error")
	if m := meta(); !same(m, map[string]string{"role": "db"}) {
		t.Errorf("metadata changed in error: %v", m)
	}
	if err := servers.ResetState(ctx, adm, id, servers.StateActive).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, wait, "back to ACTIVE", func() (bool, string) {
		s, err := servers.Get(ctx, sc, id).Extract()
		if err != nil {
			return false, err.Error()
		}
		return s.Status == "ACTIVE", s.Status
	})
	if err := servers.Stop(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHUTOFF")
	if _, err := servers.UpdateMetadata(ctx, sc, id, servers.MetadataOpts{"stopped": "yes"}).Extract(); err != nil {
		t.Errorf("metadata of a stopped server: %v", err)
	}

	// Another project's server is not found; reading needs no state.
	_, err = servers.Metadata(ctx, tr.Compute(other), id).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("other project's metadata: %v, want a 404", err)
	}
	faultHas(t, tr.Do(t, http.MethodPost, path, other, map[string]any{"metadata": map[string]string{"a": "b"}}), http.StatusNotFound, "could not be found")
	if m := meta(); !same(m, map[string]string{"role": "db", "stopped": "yes"}) {
		t.Errorf("metadata at the end: %v", m)
	}
}
