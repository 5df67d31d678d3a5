package compute_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// codeStep is one request of TestSuccessCodes and the status Nova answers
// it with; then, when set, the server's status to wait for (with no task).
type codeStep struct {
	name    string
	method  string
	path    string
	token   string
	version string
	body    any
	want    int
	// fault, when set, is what the fault's message holds.
	fault string
	then  string
}

// TestSuccessCodes walks a server through every action we serve, and
// touches every other resource that writes, checking each success code
// against Nova's: its @wsgi.response decorators (202 unless said), 200
// where a method has none (rescue, os-getConsoleOutput, the flavor and
// extra-spec writes, quota and service updates), 204 for confirmResize,
// and the microversioned codes of keypairs (201 and 204 from 2.2).
func TestSuccessCodes(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 2})
	id := create(t, tr, demo, map[string]any{"name": "codes", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, tr.Compute(demo), id, "ACTIVE")
	srv := "/v2.1/servers/" + id
	act := func(name string, token string, body any, want int, then string) codeStep {
		return codeStep{name: name, method: http.MethodPost, path: srv + "/action", token: token, body: body, want: want, then: then}
	}
	steps := []codeStep{
		// Unknown or malformed actions: 400 before the server is looked at.
		{name: "no such action", method: http.MethodPost, path: "/v2.1/servers/00000000-0000-0000-0000-000000000000/action", token: demo, body: `{"fly": null}`, want: 400, fault: "There is no such action: fly"},
		{name: "two actions", method: http.MethodPost, path: "/v2.1/servers/00000000-0000-0000-0000-000000000000/action", token: demo, body: `{"pause": null, "suspend": null}`, want: 400, fault: "Malformed request body"},
		act("os-stop", demo, `{"os-stop": null}`, 202, "SHUTOFF"),
		act("os-start", demo, `{"os-start": null}`, 202, "ACTIVE"),
		act("reboot", demo, `{"reboot": {"type": "SOFT"}}`, 202, "ACTIVE"),
		act("pause", demo, `{"pause": null}`, 202, "PAUSED"),
		act("unpause", demo, `{"unpause": null}`, 202, "ACTIVE"),
		act("suspend", demo, `{"suspend": null}`, 202, "SUSPENDED"),
		act("resume", demo, `{"resume": null}`, 202, "ACTIVE"),
		act("rescue", demo, `{"rescue": null}`, 200, "RESCUE"),
		act("unrescue", demo, `{"unrescue": null}`, 202, "ACTIVE"),
		act("lock", demo, `{"lock": null}`, 202, ""),
		act("unlock", demo, `{"unlock": null}`, 202, ""),
		act("os-getConsoleOutput", demo, `{"os-getConsoleOutput": {}}`, 200, ""),
		act("createImage", demo, `{"createImage": {"name": "snap"}}`, 202, "ACTIVE"),
		{name: "createImage 2.45", method: http.MethodPost, path: srv + "/action", token: demo, version: "2.45", body: `{"createImage": {"name": "snap2"}}`, want: 202, then: "ACTIVE"},
		act("resize", demo, `{"resize": {"flavorRef": "2"}}`, 202, "VERIFY_RESIZE"),
		act("confirmResize", demo, `{"confirmResize": null}`, 204, "ACTIVE"),
		act("resize again", demo, `{"resize": {"flavorRef": "1"}}`, 202, "VERIFY_RESIZE"),
		act("revertResize", demo, `{"revertResize": null}`, 202, "ACTIVE"),
		act("migrate", admin, `{"migrate": null}`, 202, "VERIFY_RESIZE"),
		act("confirm the migration", demo, `{"confirmResize": null}`, 204, "ACTIVE"),
		act("rebuild", demo, `{"rebuild": {"imageRef": "`+imageID+`"}}`, 202, "ACTIVE"),
		act("shelve", demo, `{"shelve": null}`, 202, "SHELVED_OFFLOADED"),
		act("unshelve", demo, `{"unshelve": null}`, 202, "ACTIVE"),
		act("os-resetState", admin, `{"os-resetState": {"state": "active"}}`, 202, "ACTIVE"),

		{name: "update", method: http.MethodPut, path: srv, token: demo, body: `{"server": {"name": "codes2"}}`, want: 200},
		{name: "metadata create", method: http.MethodPost, path: srv + "/metadata", token: demo, body: `{"metadata": {"a": "1"}}`, want: 200},
		{name: "metadata update all", method: http.MethodPut, path: srv + "/metadata", token: demo, body: `{"metadata": {"a": "1", "b": "2"}}`, want: 200},
		{name: "metadatum update", method: http.MethodPut, path: srv + "/metadata/a", token: demo, body: `{"meta": {"a": "3"}}`, want: 200},
		{name: "metadatum delete", method: http.MethodDelete, path: srv + "/metadata/a", token: demo, want: 204},
		{name: "tags update all", method: http.MethodPut, path: srv + "/tags", token: demo, version: "2.26", body: `{"tags": ["x"]}`, want: 200},
		{name: "tag add", method: http.MethodPut, path: srv + "/tags/y", token: demo, version: "2.26", want: 201},
		{name: "tag add again", method: http.MethodPut, path: srv + "/tags/y", token: demo, version: "2.26", want: 204},
		{name: "tag show", method: http.MethodGet, path: srv + "/tags/y", token: demo, version: "2.26", want: 204},
		{name: "tag delete", method: http.MethodDelete, path: srv + "/tags/y", token: demo, version: "2.26", want: 204},
		{name: "tags delete all", method: http.MethodDelete, path: srv + "/tags", token: demo, version: "2.26", want: 204},

		{name: "flavor create", method: http.MethodPost, path: "/v2.1/flavors", token: admin, body: `{"flavor": {"name": "codes", "id": "codes", "ram": 64, "vcpus": 1, "disk": 1, "os-flavor-access:is_public": false}}`, want: 200},
		{name: "flavor update", method: http.MethodPut, path: "/v2.1/flavors/codes", token: admin, version: "2.55", body: `{"flavor": {"description": "d"}}`, want: 200},
		{name: "extra specs create", method: http.MethodPost, path: "/v2.1/flavors/codes/os-extra_specs", token: admin, body: `{"extra_specs": {"k": "v"}}`, want: 200},
		{name: "extra spec update", method: http.MethodPut, path: "/v2.1/flavors/codes/os-extra_specs/k", token: admin, body: `{"k": "w"}`, want: 200},
		{name: "extra spec delete", method: http.MethodDelete, path: "/v2.1/flavors/codes/os-extra_specs/k", token: admin, want: 200},
		{name: "flavor access add", method: http.MethodPost, path: "/v2.1/flavors/codes/action", token: admin, body: `{"addTenantAccess": {"tenant": "demo"}}`, want: 200},
		{name: "flavor access remove", method: http.MethodPost, path: "/v2.1/flavors/codes/action", token: admin, body: `{"removeTenantAccess": {"tenant": "demo"}}`, want: 200},
		{name: "flavor delete", method: http.MethodDelete, path: "/v2.1/flavors/codes", token: admin, want: 202},

		{name: "keypair create 2.1", method: http.MethodPost, path: "/v2.1/os-keypairs", token: demo, version: "2.1", body: `{"keypair": {"name": "k1"}}`, want: 200},
		{name: "keypair create 2.2", method: http.MethodPost, path: "/v2.1/os-keypairs", token: demo, version: "2.2", body: `{"keypair": {"name": "k2"}}`, want: 201},
		{name: "keypair delete 2.1", method: http.MethodDelete, path: "/v2.1/os-keypairs/k1", token: demo, version: "2.1", want: 202},
		{name: "keypair delete 2.2", method: http.MethodDelete, path: "/v2.1/os-keypairs/k2", token: demo, version: "2.2", want: 204},

		{name: "quota update", method: http.MethodPut, path: "/v2.1/os-quota-sets/demo", token: admin, body: `{"quota_set": {"cores": 30}}`, want: 200},
		{name: "quota delete", method: http.MethodDelete, path: "/v2.1/os-quota-sets/demo", token: admin, want: 202},
		{name: "quota class update", method: http.MethodPut, path: "/v2.1/os-quota-class-sets/default", token: admin, body: `{"quota_class_set": {"cores": 25}}`, want: 200},

		{name: "server delete", method: http.MethodDelete, path: srv, token: demo, want: 204},
	}
	for _, s := range steps {
		var headers []string
		if s.version != "" {
			headers = atVersion(s.version)
		}
		r := tr.Do(t, s.method, s.path, s.token, s.body, headers...)
		if r.Status != s.want {
			t.Fatalf("%s: %s %s answered %d, want %d: %s", s.name, s.method, s.path, r.Status, s.want, r.Body)
		}
		// createImage: the image's Location before 2.45, its id in the
		// body from 2.45 instead.
		if s.name == "createImage" && r.Header.Get("Location") == "" {
			t.Errorf("createImage at 2.1 without Location")
		}
		if s.name == "createImage 2.45" && (r.Header.Get("Location") != "" || !strings.Contains(string(r.Body), `"image_id"`)) {
			t.Errorf("createImage at 2.45: Location %q, body %s", r.Header.Get("Location"), r.Body)
		}
		if s.fault != "" {
			faultHas(t, r, s.want, s.fault)
		}
		if s.then != "" {
			waitIdle(t, tr, id, s.then)
		}
	}

	// A server group: created 200, deleted 204.
	r := tr.Do(t, http.MethodPost, "/v2.1/os-server-groups", demo, `{"server_group": {"name": "g", "policies": ["affinity"]}}`)
	if r.Status != http.StatusOK {
		t.Fatalf("server group create: %s", r)
	}
	var g struct {
		Group struct {
			ID string `json:"id"`
		} `json:"server_group"`
	}
	r.JSON(t, &g)
	if r := tr.Do(t, http.MethodDelete, "/v2.1/os-server-groups/"+g.Group.ID, demo, nil); r.Status != http.StatusNoContent {
		t.Fatalf("server group delete: %s", r)
	}
}

// waitIdle polls GET /servers/{id} until the server has status and no
// task.
func waitIdle(t *testing.T, tr *testtree.Tree, id, status string) {
	t.Helper()
	testpoll.Eventually(t, wait, fmt.Sprintf("server %s to be %s with no task", id, status), func() (bool, string) {
		var body struct {
			Server struct {
				Status string  `json:"status"`
				Task   *string `json:"OS-EXT-STS:task_state"`
			} `json:"server"`
		}
		r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil)
		if r.Status != http.StatusOK {
			return false, r.String()
		}
		r.JSON(t, &body)
		if body.Server.Status == "ERROR" && status != "ERROR" {
			t.Fatalf("server %s went to ERROR", id)
		}
		return body.Server.Status == status && body.Server.Task == nil, fmt.Sprintf("status %s task %v", body.Server.Status, body.Server.Task)
	})
}
