package compute_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/apicell/api/compute"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/up"
)

// Tokens in noauth mode: "user:project"; the user "admin" is an admin.
const (
	demo  = "demo:demo"
	other = "other:other"
	admin = "admin:admin"
)

// wait bounds every poll: builds and deletes go through the cells below.
const wait = 30 * time.Second

// imageID is a well-formed image id; the fake driver boots any.
const imageID = up.DefaultImageID

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	t.Cleanup(cancel)
	return ctx
}

// create boots servers with a raw request and returns the first id.
func create(t *testing.T, tr *testtree.Tree, token string, server map[string]any) string {
	t.Helper()
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", token, map[string]any{"server": server})
	if r.Status != http.StatusAccepted {
		t.Fatalf("create %v: %s", server, r)
	}
	var out struct {
		Server struct {
			ID string `json:"id"`
		} `json:"server"`
	}
	r.JSON(t, &out)
	if out.Server.ID == "" {
		t.Fatalf("create answered without a server id: %s", r.Body)
	}
	return out.Server.ID
}

// waitStatus polls GET /servers/{id} until the server has status.
func waitStatus(t *testing.T, sc *gophercloud.ServiceClient, id, status string) *servers.Server {
	t.Helper()
	var s *servers.Server
	testpoll.Eventually(t, wait, fmt.Sprintf("server %s to be %s", id, status), func() (bool, string) {
		var err error
		s, err = servers.Get(context.Background(), sc, id).Extract()
		if err != nil {
			return false, err.Error()
		}
		if s.Status == "ERROR" && status != "ERROR" {
			t.Fatalf("server %s went to ERROR: %+v", id, s.Fault)
		}
		return s.Status == status, "status " + s.Status
	})
	return s
}

// waitGone polls GET /servers/{id} until it answers 404.
func waitGone(t *testing.T, sc *gophercloud.ServiceClient, id string) {
	t.Helper()
	testpoll.Eventually(t, wait, fmt.Sprintf("server %s to be gone", id), func() (bool, string) {
		s, err := servers.Get(context.Background(), sc, id).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, "status " + s.Status + " task " + s.TaskState
	})
}

// listAll lists every server token can see (with query, e.g.
// "?all_tenants=1"), following no links.
func listAll(t *testing.T, tr *testtree.Tree, token, query string) []map[string]any {
	t.Helper()
	r := tr.Do(t, http.MethodGet, "/v2.1/servers/detail"+query, token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("list servers: %s", r)
	}
	var out struct {
		Servers []map[string]any `json:"servers"`
	}
	r.JSON(t, &out)
	return out.Servers
}

// deleteAll deletes servers and waits until each is gone.
func deleteAll(t *testing.T, tr *testtree.Tree, token string, ids []string) {
	t.Helper()
	for _, id := range ids {
		if r := tr.Do(t, http.MethodDelete, "/v2.1/servers/"+id, token, nil); r.Status != http.StatusNoContent {
			t.Fatalf("delete %s: %s", id, r)
		}
	}
	sc := tr.Compute(token)
	for _, id := range ids {
		waitGone(t, sc, id)
	}
}

// addresses flattens a server's addresses in network name.
func addresses(t *testing.T, s *servers.Server, network string) []string {
	t.Helper()
	raw, ok := s.Addresses[network].([]any)
	if !ok {
		t.Fatalf("server %s has no addresses in network %q: %v", s.ID, network, s.Addresses)
	}
	var out []string
	for _, a := range raw {
		m, _ := a.(map[string]any)
		addr, _ := m["addr"].(string)
		if addr == "" {
			t.Fatalf("server %s: address without addr: %v", s.ID, a)
		}
		out = append(out, addr)
	}
	return out
}

// operatorTree is two compute cells of two hosts, and an admin client at
// microversion mv.
func operatorTree(t *testing.T) *testtree.Tree {
	t.Helper()
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2})
	// The cells tell the API cell of their hosts as they start; wait until
	// every host's service and node are mapped.
	testpoll.Eventually(t, wait, "host mappings of 4 hosts", func() (bool, string) {
		var n int
		if err := tr.API.DB.QueryRow(t.Context(), `SELECT COUNT(*) FROM host_mappings WHERE kind = 'hypervisor'`).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 4, "mapped"
	})
	return tr
}

func adminAt(tr *testtree.Tree, mv string) *gophercloud.ServiceClient {
	sc := tr.Compute(admin)
	sc.Microversion = mv
	return sc
}

// servesMicroversion reports whether the API serves microversion 2.minor.
func servesMicroversion(minor int) bool {
	return compute.MaxVersion.AtLeast(compute.Version{Major: 2, Minor: minor})
}

// needMicroversion skips a test of a microversion the API does not serve yet.
func needMicroversion(t *testing.T, minor int) string {
	t.Helper()
	if !servesMicroversion(minor) {
		t.Skipf("needs microversion 2.%d; the API serves up to %s", minor, compute.MaxVersion)
	}
	return fmt.Sprintf("2.%d", minor)
}

// atVersion is the header pair that asks for a microversion.
func atVersion(v string) []string { return []string{"OpenStack-API-Version", "compute " + v} }

// faultHas checks r is the Compute API's fault for status and that its
// message holds want.
func faultHas(t *testing.T, r *testtree.Response, status int, want string) {
	t.Helper()
	if msg := testtree.Fault(t, r, status); !strings.Contains(msg, want) {
		t.Errorf("fault message %q, want it to hold %q", msg, want)
	}
}

// sortedKeys are m's keys, sorted.
func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
