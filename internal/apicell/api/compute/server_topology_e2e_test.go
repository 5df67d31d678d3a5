package compute_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestServerTopology (2.78): GET /servers/{id}/topology answers Nova's
// body for a server without a NUMA topology (every server of the fake
// hypervisor), query parameters ignored; another project's server is a
// 404 before the rule is looked at, as is the route at 2.77. The rule
// compute:server:topology:index, here given to admins and the user demo
// by a policy file, refuses the user other on its own server (403).
func TestServerTopology(t *testing.T) {
	t.Parallel()
	mv := needMicroversion(t, 78)
	file := filepath.Join(t.TempDir(), "policy.yaml")
	rule := "\"compute:server:topology:index\": \"rule:context_is_admin or user_id:demo\"\n"
	if err := os.WriteFile(file, []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1, PolicyFile: file})
	id := create(t, tr, demo, map[string]any{"name": "numa", "flavorRef": "1", "imageRef": imageID})
	theirs := create(t, tr, other, map[string]any{"name": "theirs", "flavorRef": "1", "imageRef": imageID})
	path := "/v2.1/servers/" + id + "/topology"
	for _, tok := range []string{demo, admin} {
		r := tr.Do(t, http.MethodGet, path+"?anything=1", tok, nil, atVersion(mv)...)
		if r.Status != http.StatusOK || strings.TrimSpace(string(r.Body)) != `{"nodes":[],"pagesize_kb":null}` {
			t.Errorf("topology as %s: %s", tok, r)
		}
	}
	faultHas(t, tr.Do(t, http.MethodGet, path, other, nil, atVersion(mv)...), http.StatusNotFound, "Instance "+id+" could not be found.")
	testtree.Fault(t, tr.Do(t, http.MethodGet, "/v2.1/servers/"+theirs+"/topology", other, nil, atVersion(mv)...), http.StatusForbidden)
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/servers/00000000-0000-4000-8000-000000000000/topology", admin, nil, atVersion(mv)...),
		http.StatusNotFound, "could not be found")
	faultHas(t, tr.Do(t, http.MethodGet, path, demo, nil, atVersion("2.77")...), http.StatusNotFound, "The resource could not be found.")
}
