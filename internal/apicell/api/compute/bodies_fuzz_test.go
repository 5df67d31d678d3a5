package compute

// Fuzz targets for every request body the Compute API parses. The create
// body and cell-qualified names are fuzzed as pure functions; the bodies
// that are read inside their handler are fuzzed through the handler, on a
// fresh SQLite copy with no cells and no network (httptest recorder). The
// property is the same everywhere: no input makes the API panic or answer
// 500, and a refusal is a Compute API fault that names its own status.
//
// Run one briefly: go test -run '^$' -fuzz '^FuzzServerAction$' -fuzztime 10s ./internal/apicell/api/compute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

const fuzzImage = "70a599e0-31e7-49b7-b260-868f441e862b"

// fuzzCaller is a tree whose cells know nothing: a call is a cell's 404, a
// gather answers with no cell.
type fuzzCaller struct{}

func (fuzzCaller) Call(context.Context, string, string, string, any, any) error {
	return &wire.Error{Code: wire.CodeNotFound, Message: "nothing here"}
}

func (fuzzCaller) Gather(context.Context, string, string, any) ([]wire.Result, []string, error) {
	return nil, nil, nil
}

// fuzzAPI is the Compute API over a fresh SQLite copy with the default
// flavors, and no cells below.
type fuzzAPI struct {
	api *API
	d   *db.DB
	n   int
	// log holds the errors the API logged for the last request.
	log lockedBuffer
}

// lockedBuffer is a buffer a logger writes to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns what was written and empties the buffer.
func (l *lockedBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	f.Helper()
	ctx := context.Background()
	d := dbtest.Open(f, "sqlite")
	// The API cell's schemas that its Compute API reads (node.schemas).
	for _, m := range []struct {
		set string
		ms  []db.Migration
	}{{"api", apidb.Migrations}, {imagedb.MigrationSet, imagedb.Migrations}, {netdb.MigrationSet, netdb.Migrations},
		{voldb.MigrationSet, voldb.Migrations}} {
		if err := d.Migrate(ctx, m.set, m.ms); err != nil {
			f.Fatal(err)
		}
	}
	if err := apidb.SeedFlavors(ctx, d); err != nil {
		f.Fatal(err)
	}
	img := &imagedb.Image{ID: fuzzImage, Name: "img", Status: imagedb.StatusActive, Visibility: imagedb.Public, Owner: "admin",
		DiskFormat: "qcow2", ContainerFormat: "bare", Size: 1, Checksum: "c", Properties: map[string]string{}, Tags: []string{}}
	if err := d.InTx(ctx, func(tx *db.Tx) error { return (&imagedb.Store{}).Create(ctx, tx, img) }); err != nil {
		f.Fatal(err)
	}
	pol, err := policy.NewFromRules(slices.Concat(policy.Base, Rules), nil)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	z := &fuzzAPI{d: d}
	a, err := New(Config{Cell: "api", DB: d, Sender: noSender{}, Caller: fuzzCaller{}, Auth: authn.NoAuth{}, Policy: pol,
		Logger: slog.New(slog.NewTextHandler(&z.log, &slog.HandlerOptions{Level: slog.LevelError})), Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	z.api = a
	return z
}

// server writes a new ACTIVE server of demo's in cell api!cell1 to the
// copy, so that each input meets a server in the same state.
func (z *fuzzAPI) server(t *testing.T) string {
	t.Helper()
	z.n++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", z.n)
	in := apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: id, Name: "s", ProjectID: "demo", UserID: "demo",
		ImageRef: fuzzImage, ReservationID: "r-" + id, CreatedAt: time.Unix(1, 0).UTC()},
		FlavorID: "1", Flavor: wire.Flavor{ID: "1", Name: "m1.tiny", VCPUs: 1, RAMMB: 512, RootGB: 1},
		Cell: "api!cell1", Host: "h1", Node: "h1", VMState: "active", PowerState: 1, Version: 1}
	ctx := context.Background()
	if err := z.d.InTx(ctx, func(tx *db.Tx) error { return apidb.Create(ctx, tx, []apidb.Instance{in}) }); err != nil {
		t.Fatal(err)
	}
	return id
}

// microversion maps a fuzzed byte to one of the microversions served.
func microversion(b uint8) Version {
	return Version{2, MinVersion.Minor + int(b)%(MaxVersion.Minor-MinVersion.Minor+1)}
}

// send serves one request and checks the property of every target.
func (z *fuzzAPI) send(t *testing.T, method, path, token string, ver Version, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.Header.Set("X-Auth-Token", token)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("OpenStack-API-Version", "compute "+ver.String())
	w := httptest.NewRecorder()
	z.log.take()
	z.api.ServeHTTP(w, r)
	if w.Code == http.StatusInternalServerError {
		t.Logf("the API logged: %s", z.log.take())
	}
	checkAnswer(t, method+" "+path, body, w)
	return w
}

// checkAnswer: never a 500, and a 4xx is a fault naming its own status.
func checkAnswer(t *testing.T, what string, body []byte, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code == http.StatusInternalServerError {
		t.Fatalf("%s with %q: %d %s", what, body, w.Code, w.Body)
	}
	if w.Code < 400 || w.Code >= 500 {
		return
	}
	var f map[string]struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &f); err != nil || len(f) != 1 {
		t.Fatalf("%s with %q: %d is not a fault: %s", what, body, w.Code, w.Body)
	}
	for _, v := range f {
		if v.Code != w.Code || v.Message == "" {
			t.Fatalf("%s with %q: %d answered with fault %s", what, body, w.Code, w.Body)
		}
	}
}

// FuzzServerCreateBody: the create body, read and checked as Nova's schema
// does (readCreate), at any microversion. A refusal is a 400 or 413; an
// accepted body is what the schema allows, and written again from what
// was read it reads the same.
func FuzzServerCreateBody(f *testing.F) {
	srv := func(extra string) string {
		return `{"server": {"name": "web", "flavorRef": "1", "imageRef": "` + fuzzImage + `"` + extra + `}}`
	}
	for _, s := range []string{
		srv(``), srv(`, "networks": "auto"`), srv(`, "networks": "none"`), srv(`, "networks": [{"uuid": "` + fuzzImage + `", "fixed_ip": "10.0.0.5"}]`),
		srv(`, "networks": [{"port": "p"}, {"uuid": "n", "tag": "t"}]`), srv(`, "networks": [{"bogus": 1}]`), srv(`, "networks": [{}]`),
		srv(`, "min_count": 2, "max_count": "3"`), srv(`, "min_count": 3, "max_count": 2`), srv(`, "min_count": 0`), srv(`, "max_count": 100000`),
		srv(`, "min_count": "two"`), srv(`, "return_reservation_id": "yes"`), srv(`, "return_reservation_id": "maybe"`),
		srv(`, "user_data": "aGVsbG8="`), srv(`, "user_data": "not base64!"`), srv(`, "metadata": {"k": "v"}`), srv(`, "metadata": {"k": 1}`),
		srv(`, "metadata": {"": "v"}`), srv(`, "description": "d", "tags": ["a", "b"]`), srv(`, "tags": ["a/b"]`), srv(`, "description": null`),
		srv(`, "key_name": "k", "availability_zone": "nova", "adminPass": "p"`), srv(`, "key_name": ""`),
		srv(`, "trusted_image_certificates": ["a", "a"]`), srv(`, "trusted_image_certificates": null`), srv(`, "trusted_image_certificates": 1`),
		srv(`, "personality": []`), srv(`, "bogus": 1`), srv(`, "security_groups": [{"name": "default"}]`),
		srv(`, "security_groups": [{"name": "web"}, {}, {"name": "web"}]`), srv(`, "security_groups": [{"id": "x"}]`),
		srv(`, "security_groups": [{"name": ""}]`), srv(`, "security_groups": [{"name": 1}]`), srv(`, "security_groups": ["default"]`),
		srv(`, "security_groups": {}`), srv(`, "security_groups": null`),
		`{"server": {"name": " web", "flavorRef": 1, "imageRef": "http://h/images/` + fuzzImage + `"}}`,
		`{"server": {"name": 7, "flavorRef": {}, "imageRef": 5}}`, `{"server": {"flavorRef": "", "imageRef": "not-an-image"}}`,
		`{"server": {"name": "a", "flavorRef": "http://h/flavors/", "imageRef": "` + fuzzImage + `"}}`,
		srv(``)[:len(srv(``))-1] + `, "os:scheduler_hints": {"group": "g", "same_host": ["a", "b"], "n": 1}}`,
		srv(``)[:len(srv(``))-1] + `, "OS-SCH-HNT:scheduler_hints": [1]}`, srv(``)[:len(srv(``))-1] + `, "extra": 1}`,
		`{"server": "web"}`, `{"servers": {}}`, `name=web&flavorRef=1`, `{"server": {"name": "web"`, `[{"server": {}}]`, `null`, ``,
	} {
		f.Add(uint8(0), s)
		f.Add(uint8(68), s)
	}
	f.Fuzz(func(t *testing.T, v uint8, body string) {
		ver := microversion(v)
		read := func(body []byte) (*createRequest, error) {
			r := httptest.NewRequest(http.MethodPost, "/v2.1/servers", bytes.NewReader(body))
			r = r.WithContext(context.WithValue(r.Context(), keyVersion, ver))
			return readCreate(httptest.NewRecorder(), r)
		}
		req, err := read([]byte(body))
		if err != nil {
			var fl *httpkit.Fault
			if !errors.As(err, &fl) || (fl.Status != http.StatusBadRequest && fl.Status != http.StatusRequestEntityTooLarge) || fl.Message == "" {
				t.Fatalf("%q: refused with %v, want a 400 or 413 fault", body, err)
			}
			return
		}
		switch {
		case req.name == "" || len(req.name) > 255 || strings.TrimSpace(req.name) != req.name:
			t.Fatalf("%q: accepted the name %q", body, req.name)
		case !uuidRE.MatchString(req.imageRef) || strings.ToLower(req.imageRef) != req.imageRef:
			t.Fatalf("%q: accepted the image %q", body, req.imageRef)
		case req.count < 1 || req.count > maxCount || req.minCount < 1 || req.minCount > req.count:
			t.Fatalf("%q: accepted counts min %d, count %d", body, req.minCount, req.count)
		case req.noNetwork && len(req.networks) > 0:
			t.Fatalf("%q: no network and networks %v", body, req.networks)
		}
		for _, n := range req.networks {
			if n.UUID == "" && n.Port == "" {
				t.Fatalf("%q: accepted a network with neither uuid nor port", body)
			}
		}
		// What was read, written again, reads the same.
		s := map[string]any{"name": req.name, "flavorRef": "1", "imageRef": req.imageRef,
			"min_count": req.minCount, "max_count": req.count}
		if req.metadata != nil {
			s["metadata"] = req.metadata
		}
		switch {
		case req.noNetwork:
			s["networks"] = "none"
		case req.networks != nil:
			s["networks"] = req.networks
		case ver.AtLeast(Version{2, 37}):
			s["networks"] = "auto"
		}
		again, err := read(mustJSON(map[string]any{"server": s}))
		if err != nil {
			t.Fatalf("%q: accepted, but what it read is refused: %v", body, err)
		}
		if again.name != req.name || again.imageRef != req.imageRef || again.count != req.count || again.minCount != req.minCount ||
			again.noNetwork != req.noNetwork || !reflect.DeepEqual(again.networks, req.networks) ||
			(len(req.metadata) > 0 && !reflect.DeepEqual(again.metadata, req.metadata)) {
			t.Fatalf("%q: read %+v, written again it reads %+v", body, req, again)
		}
	})
}

// FuzzServerAction: POST /servers/{id}/action with any body: the
// dispatcher and every action's own body, on an ACTIVE server.
func FuzzServerAction(f *testing.F) {
	for _, s := range []string{
		`{"reboot": {"type": "HARD"}}`, `{"reboot": {"type": "soft"}}`, `{"reboot": {"type": "GENTLE"}}`, `{"reboot": null}`, `{"reboot": {"type": 1, "x": 2}}`,
		`{"os-stop": null}`, `{"os-start": null}`, `{"os-stop": null, "os-start": null}`, `{"pause": null}`, `{"unpause": {}}`, `{"suspend": 1}`,
		`{"resume": null}`, `{"shelve": null}`, `{"unshelve": {"availability_zone": "nova"}}`, `{"unrescue": null}`,
		`{"confirmResize": null}`, `{"revertResize": null}`, `{"rescue": null}`, `{"rescue": {"adminPass": "p", "rescue_image_ref": "` + fuzzImage + `"}}`,
		`{"rescue": {"bogus": 1}}`, `{"os-resetState": {"state": "error"}}`, `{"os-resetState": {"state": "active"}}`, `{"os-resetState": {"state": "x"}}`,
		`{"os-getConsoleOutput": {"length": 10}}`, `{"os-getConsoleOutput": {"length": "-1"}}`, `{"os-getConsoleOutput": {"length": "x"}}`, `{"os-getConsoleOutput": {}}`,
		`{"migrate": null}`, `{"migrate": {"host": "h2"}}`, `{"resize": {"flavorRef": "2"}}`, `{"resize": {"flavorRef": 2}}`, `{"resize": {"flavorRef": -1}}`,
		`{"resize": {}}`, `{"rebuild": {"imageRef": "` + fuzzImage + `", "name": "n", "metadata": {"k": "v"}}}`, `{"rebuild": {"imageRef": "x"}}`,
		`{"createImage": {"name": "snap", "metadata": {"k": "v"}}}`, `{"createImage": {"name": ""}}`, `{"createImage": {"name": "x", "colour": 1}}`, `{"createImage": {}}`,
		`{"addSecurityGroup": {"name": "default"}}`, `{"addSecurityGroup": {"name": " "}}`, `{"addSecurityGroup": {}}`, `{"addSecurityGroup": null}`,
		`{"removeSecurityGroup": {"name": "default"}}`, `{"removeSecurityGroup": {"name": "nope", "x": 1}}`, `{"removeSecurityGroup": "default"}`,
		`{"lock": null}`, `{"lock": {"locked_reason": "r"}}`, `{"lock": {"whatever": 1}}`, `{"unlock": null}`, `{"fly": null}`, `{}`, `[]`, `null`, ``, `{"reboot"`,
	} {
		f.Add(uint8(0), false, s)
		f.Add(uint8(68), true, s)
	}
	z := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, v uint8, asAdmin bool, body string) {
		token := "demo:demo"
		if asAdmin {
			token = "admin:admin"
		}
		id := z.server(t)
		z.send(t, http.MethodPost, "/v2.1/servers/"+id+"/action", token, microversion(v), []byte(body))
	})
}

// FuzzServerBodies: the other bodies of a server: create (through the
// handler: flavor, image and quota checks), update, metadata, tags and
// an interface's attach.
func FuzzServerBodies(f *testing.F) {
	seeds := map[string][]string{
		"create": {`{"server": {"name": "web", "flavorRef": "1", "imageRef": "` + fuzzImage + `", "networks": "none"}}`,
			`{"server": {"name": "web", "flavorRef": "1", "imageRef": "` + fuzzImage + `", "networks": "none", "security_groups": [{"name": "default"}, {"name": "nope"}]}}`,
			`{"server": {"name": "web", "flavorRef": "999", "imageRef": "` + fuzzImage + `"}}`, `{"server": {"name": "web", "flavorRef": "1", "imageRef": "` + fuzzImage + `", "min_count": 1000}}`},
		"update": {`{"server": {"name": "new"}}`, `{"server": {"description": "d"}}`, `{"server": {"description": null}}`,
			`{"server": {"accessIPv4": "1.2.3.4", "accessIPv6": "::1"}}`, `{"server": {"accessIPv4": "1.2.3"}}`, `{"server": {"name": ""}}`,
			`{"server": {"bogus": 1}}`, `{"server": null}`, `{"server": {"name": " x"}}`, `{"server": {"OS-DCF:diskConfig": "AUTO"}}`},
		"metadata": {`{"metadata": {"k": "v"}}`, `{"metadata": {"k": 1}}`, `{"metadata": {"": "v"}}`, `{"metadata": null}`, `{"meta": {"k": "v"}}`,
			`{"metadata": {"k": "v", "k2": "v2"}, "x": 1}`},
		"metadatum": {`{"meta": {"k": "v"}}`, `{"meta": {"other": "v"}}`, `{"meta": {"k": "v", "j": "w"}}`, `{"meta": {}}`, `{"meta": "v"}`},
		"tags":      {`{"tags": ["a", "b"]}`, `{"tags": []}`, `{"tags": ["a/b"]}`, `{"tags": [1]}`, `{"tags": "a"}`, `{"tags": [""]}`},
		"interface": {`{"interfaceAttachment": {"port_id": "` + fuzzImage + `"}}`, `{"interfaceAttachment": {"net_id": "` + fuzzImage + `", "fixed_ips": [{"ip_address": "10.0.0.5"}]}}`,
			`{"interfaceAttachment": {"net_id": "` + fuzzImage + `", "port_id": "` + fuzzImage + `"}}`, `{"interfaceAttachment": {"fixed_ips": [{"ip_address": "::1"}]}}`,
			`{"interfaceAttachment": {"net_id": "x", "tag": "t"}}`, `{"interfaceAttachment": {"fixed_ips": []}}`, `{"interfaceAttachment": null}`},
	}
	routes := []string{"create", "update", "metadata", "metadatum", "tags", "interface"}
	for i, rt := range routes {
		for _, s := range append(seeds[rt], `{}`, `null`, `[]`, ``, `{"x"`) {
			f.Add(uint8(i), uint8(0), s)
			f.Add(uint8(i), uint8(68), s)
		}
	}
	z := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, route, v uint8, body string) {
		id := z.server(t)
		ver := microversion(v)
		switch routes[int(route)%len(routes)] {
		case "create":
			z.send(t, http.MethodPost, "/v2.1/servers", "demo:demo", ver, []byte(body))
		case "update":
			z.send(t, http.MethodPut, "/v2.1/servers/"+id, "demo:demo", ver, []byte(body))
		case "metadata":
			z.send(t, http.MethodPost, "/v2.1/servers/"+id+"/metadata", "demo:demo", ver, []byte(body))
			z.send(t, http.MethodPut, "/v2.1/servers/"+id+"/metadata", "demo:demo", ver, []byte(body))
		case "metadatum":
			z.send(t, http.MethodPut, "/v2.1/servers/"+id+"/metadata/k", "demo:demo", ver, []byte(body))
		case "tags":
			z.send(t, http.MethodPut, "/v2.1/servers/"+id+"/tags", "demo:demo", ver, []byte(body))
		case "interface":
			z.send(t, http.MethodPost, "/v2.1/servers/"+id+"/os-interface", "demo:demo", ver, []byte(body))
		}
	})
}

// FuzzFlavorBodies: flavor create and update, extra specs, flavor access.
func FuzzFlavorBodies(f *testing.F) {
	seeds := map[string][]string{
		"create": {`{"flavor": {"name": "f", "ram": 512, "vcpus": 1, "disk": 1}}`, `{"flavor": {"name": "f", "ram": "512", "vcpus": "1", "disk": "1", "id": "auto",
			"OS-FLV-EXT-DATA:ephemeral": 0, "swap": "", "rxtx_factor": 1.5, "os-flavor-access:is_public": false}}`,
			`{"flavor": {"name": "f", "ram": 0, "vcpus": 1, "disk": 1}}`, `{"flavor": {"name": "f", "ram": 512, "vcpus": 1, "disk": -1}}`,
			`{"flavor": {"name": "", "ram": 512, "vcpus": 1, "disk": 1}}`, `{"flavor": {"name": "f", "ram": 1e99, "vcpus": 1, "disk": 1}}`,
			`{"flavor": {"name": "f", "ram": 512, "vcpus": 1, "disk": 1, "description": "d"}}`, `{"flavor": {"name": "f", "id": "a b", "ram": 1, "vcpus": 1, "disk": 1}}`},
		"update": {`{"flavor": {"description": "d"}}`, `{"flavor": {"description": null}}`, `{"flavor": {"name": "x"}}`, `{"flavor": {}}`},
		"specs":  {`{"extra_specs": {"hw:cpu_policy": "dedicated", "k": "v"}}`, `{"extra_specs": {"k": 1}}`, `{"extra_specs": {"": "v"}}`, `{"extra_specs": []}`},
		"spec":   {`{"k": "v"}`, `{"k": "v", "j": "w"}`, `{"other": "v"}`, `{"k": 1}`},
		"access": {`{"addTenantAccess": {"tenant": "demo"}}`, `{"removeTenantAccess": {"tenant": "demo"}}`, `{"addTenantAccess": {}}`, `{"addTenantAccess": {"tenant": 1}}`},
	}
	routes := []string{"create", "update", "specs", "spec", "access"}
	for i, rt := range routes {
		for _, s := range append(seeds[rt], `{}`, `null`, `[]`, ``, `{"x"`) {
			f.Add(uint8(i), uint8(0), s)
			f.Add(uint8(i), uint8(54), s)
		}
	}
	z := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, route, v uint8, body string) {
		ver := microversion(v)
		// Each input meets a private flavor of its own, made through the API.
		z.n++
		fid := fmt.Sprintf("fz-%d", z.n)
		if w := z.send(t, http.MethodPost, "/v2.1/flavors", "admin:admin", MinVersion,
			mustJSON(map[string]any{"flavor": map[string]any{"name": fid, "id": fid, "ram": 64, "vcpus": 1, "disk": 1, "os-flavor-access:is_public": false}})); w.Code != http.StatusOK {
			t.Fatalf("create flavor %s: %d %s", fid, w.Code, w.Body)
		}
		switch routes[int(route)%len(routes)] {
		case "create":
			z.send(t, http.MethodPost, "/v2.1/flavors", "admin:admin", ver, []byte(body))
		case "update":
			z.send(t, http.MethodPut, "/v2.1/flavors/"+fid, "admin:admin", ver, []byte(body))
		case "specs":
			z.send(t, http.MethodPost, "/v2.1/flavors/"+fid+"/os-extra_specs", "admin:admin", ver, []byte(body))
		case "spec":
			z.send(t, http.MethodPut, "/v2.1/flavors/"+fid+"/os-extra_specs/k", "admin:admin", ver, []byte(body))
		case "access":
			z.send(t, http.MethodPost, "/v2.1/flavors/"+fid+"/action", "admin:admin", ver, []byte(body))
		}
	})
}

// FuzzKeypairBody: POST /os-keypairs, imported or generated, by a member
// and by an admin (who may name another user).
func FuzzKeypairBody(f *testing.F) {
	const pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3Y6g8pC5cjY5Yx6n4Q5Z6Wm0p9v0b6b0h8c2fW3wZ fuzz"
	for _, s := range []string{
		`{"keypair": {"name": "k", "public_key": "` + pub + `"}}`, `{"keypair": {"name": "k", "public_key": "` + pub + `", "type": "ssh"}}`,
		`{"keypair": {"name": "k", "public_key": "` + pub + `", "user_id": "other"}}`, `{"keypair": {"name": "k", "public_key": "ssh-rsa AAAA"}}`,
		`{"keypair": {"name": "k", "public_key": "not a key"}}`, `{"keypair": {"name": "", "public_key": "` + pub + `"}}`,
		`{"keypair": {"name": "a/b", "public_key": "` + pub + `"}}`, `{"keypair": {"name": "k", "type": "x509", "public_key": "x"}}`,
		`{"keypair": {"name": 1}}`, `{"keypair": {"name": "k", "bogus": 1}}`, `{"keypair": null}`, `{"keypairs": {}}`, `{}`, `null`, ``, `[]`,
	} {
		f.Add(uint8(1), false, s)
		f.Add(uint8(9), true, s)
	}
	z := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, v uint8, asAdmin bool, body string) {
		token := "demo:demo"
		if asAdmin {
			token = "admin:admin"
		}
		if !strings.Contains(body, "public_key") && strings.Contains(body, "name") {
			return // generating an RSA key pair is slow, and not parsing: imports only
		}
		z.send(t, http.MethodPost, "/v2.1/os-keypairs", token, microversion(v), []byte(body))
	})
}

// FuzzServerGroupBody: POST /os-server-groups (policies before 2.64,
// policy and rules from it).
func FuzzServerGroupBody(f *testing.F) {
	for _, s := range []struct {
		v    uint8
		body string
	}{
		{0, `{"server_group": {"name": "g", "policies": ["anti-affinity"]}}`}, {0, `{"server_group": {"name": "g", "policies": ["affinity", "affinity"]}}`},
		{0, `{"server_group": {"name": "g", "policies": []}}`}, {0, `{"server_group": {"name": "g", "policies": ["soft-affinity"]}}`},
		{63, `{"server_group": {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}}`},
		{63, `{"server_group": {"name": "g", "policy": "affinity", "rules": {"max_server_per_host": 2}}}`},
		{63, `{"server_group": {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": "0"}}}`},
		{63, `{"server_group": {"name": "g", "policy": "soft-anti-affinity"}}`}, {63, `{"server_group": {"name": "g", "policies": ["affinity"]}}`},
		{0, `{"server_group": {"name": "", "policies": ["affinity"]}}`}, {0, `{"server_group": {"policies": ["affinity"]}}`},
		{0, `{"server_group": {"name": "g", "policies": ["x"], "bogus": 1}}`}, {0, `{"server_group": []}`}, {0, `{}`}, {0, `null`}, {0, ``},
	} {
		f.Add(s.v, false, s.body)
		f.Add(s.v, true, s.body)
	}
	z := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, v uint8, asAdmin bool, body string) {
		token := "demo:demo"
		if asAdmin {
			token = "admin:admin"
		}
		z.send(t, http.MethodPost, "/v2.1/os-server-groups", token, microversion(v), []byte(body))
	})
}

// FuzzQuotaSetBody: PUT /os-quota-sets/{project} and
// /os-quota-class-sets/{class}.
func FuzzQuotaSetBody(f *testing.F) {
	for _, s := range []string{
		`{"quota_set": {"instances": 20, "cores": "40", "ram": -1}}`, `{"quota_set": {"instances": 20, "force": true}}`, `{"quota_set": {"force": "True"}}`,
		`{"quota_set": {"instances": -2}}`, `{"quota_set": {"instances": "x"}}`, `{"quota_set": {"instances": 1.5}}`, `{"quota_set": {"instances": 1e30}}`,
		`{"quota_set": {"floating_ips": 1}}`, `{"quota_set": {"server_groups": 1, "server_group_members": 2, "key_pairs": 3, "metadata_items": 4}}`,
		`{"quota_set": {"bogus": 1}}`, `{"quota_set": {}}`, `{"quota_set": null}`, `{"quota_class_set": {"instances": 5}}`, `{}`, `null`, ``,
	} {
		f.Add(false, uint8(0), s)
		f.Add(false, uint8(56), s)
		f.Add(true, uint8(0), strings.Replace(s, "quota_set", "quota_class_set", 1))
	}
	z := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, class bool, v uint8, body string) {
		if class {
			z.send(t, http.MethodPut, "/v2.1/os-quota-class-sets/default", "admin:admin", microversion(v), []byte(body))
			return
		}
		z.send(t, http.MethodPut, "/v2.1/os-quota-sets/demo", "admin:admin", microversion(v), []byte(body))
		z.send(t, http.MethodPut, "/v2.1/os-quota-sets/demo?user_id=demo", "admin:admin", microversion(v), []byte(body))
	})
}

// FuzzOperatorBodies: PUT /os-services/{id} (cell-qualified below 2.53,
// a UUID from it) and PUT /os-hosts/{host}, with the id fuzzed too.
func FuzzOperatorBodies(f *testing.F) {
	for _, s := range []struct {
		hosts bool
		v     uint8
		id    string
		body  string
	}{
		{false, 52, "00000000-0000-4000-8000-000000000001", `{"status": "disabled", "disabled_reason": "maintenance"}`},
		{false, 52, "00000000-0000-4000-8000-000000000001", `{"forced_down": true}`}, {false, 52, "x", `{"status": "enabled"}`},
		{false, 52, "00000000-0000-4000-8000-000000000001", `{"status": "x"}`}, {false, 52, "1", `{"forced_down": "maybe"}`},
		{false, 52, "1", `{"disabled_reason": ""}`}, {false, 52, "1", `{"bogus": 1}`}, {false, 0, "api!cell1@7", `{"status": "disabled"}`},
		{false, 0, "disable", `{"host": "api!cell1@h1", "binary": "nova-compute", "disabled_reason": "r"}`}, {false, 0, "enable", `{"host": "h", "binary": "nova-compute"}`},
		{false, 10, "force-down", `{"host": "api!cell1@h1", "binary": "nova-compute", "forced_down": true}`}, {false, 0, "disable-log-reason", `{"host": 1}`},
		{true, 0, "api!cell1@h1", `{"status": "enable"}`}, {true, 0, "api!cell1@h1", `{"maintenance_mode": "Disable", "status": "DISABLE"}`},
		{true, 0, "api!cell1@h1", `{"status": "on"}`}, {true, 0, "h1", `{}`}, {true, 0, "api!cell9@h1", `{"bogus": 1}`}, {true, 0, "@", `{"status": 1}`},
		{false, 0, "@", `null`}, {true, 0, "api@", ``},
	} {
		f.Add(s.hosts, s.v, s.id, s.body)
	}
	z := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, hosts bool, v uint8, id, body string) {
		if id == "" {
			return // another route (the collection)
		}
		if hosts {
			z.send(t, http.MethodPut, "/v2.1/os-hosts/"+url.PathEscape(id), "admin:admin", microversion(v), []byte(body))
			return
		}
		z.send(t, http.MethodPut, "/v2.1/os-services/"+url.PathEscape(id), "admin:admin", microversion(v), []byte(body))
	})
}

// FuzzSplitQualified: a cell-qualified name ("api!cell1@7") splits into a
// cell below the API cell and a non-empty item that qualify joins back
// into the same name; anything else is refused.
func FuzzSplitQualified(f *testing.F) {
	for _, s := range []string{"api!cell1@7", "api!cell1!a@cell1-host001", "api@7", "api!cell1@", "@7", "api!cell1", "other!c@1",
		"api!!c@1", "api!c@d@e", "api!c@", "api!c@@", "api!c!@1", "Api!c@1", "api! c@1", "api!c\x00@1", ""} {
		f.Add(s)
	}
	h := &base{cfg: Config{Cell: "api"}}
	f.Fuzz(func(t *testing.T, s string) {
		cell, item, ok := h.splitQualified(s)
		if !ok {
			if cell != "" || item != "" {
				t.Fatalf("%q: refused, with %q %q", s, cell, item)
			}
			return
		}
		if item == "" || qualify(cell, item) != s || strings.Contains(item, cellItemSep) {
			t.Fatalf("%q: split into %q and %q", s, cell, item)
		}
		if cellpath.Validate(cell) != nil || !cellpath.IsAncestor("api", cell) {
			t.Fatalf("%q: the cell %q is not a cell below api", s, cell)
		}
	})
}

// FuzzSecurityGroupProxyBodies: the bodies of the proxy APIs below 2.36:
// a group's create and update, and a rule's create (Nova's schemas and
// rule checks, then the Networking API's).
func FuzzSecurityGroupProxyBodies(f *testing.F) {
	const parent = "00000000-0000-4000-8000-00000000abcd"
	for _, s := range []struct {
		route uint8
		body  string
	}{
		{0, `{"security_group": {"name": "web", "description": "d"}}`}, {0, `{"security_group": {"name": "default", "description": ""}}`},
		{0, `{"security_group": {"name": "web"}}`}, {0, `{"security_group": {"name": 1, "description": null}}`}, {0, `{"security_group": null}`},
		{1, `{"security_group": {"name": "db", "description": "x"}}`}, {1, `{"security_group": {"name": "", "description": ""}}`},
		{2, `{"security_group_rule": {"parent_group_id": "` + parent + `", "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}}`},
		{2, `{"security_group_rule": {"parent_group_id": "` + parent + `", "ip_protocol": "icmp", "from_port": -1, "to_port": -1}}`},
		{2, `{"security_group_rule": {"parent_group_id": "` + parent + `", "group_id": "` + parent + `", "ip_protocol": "udp"}}`},
		{2, `{"security_group_rule": {"parent_group_id": "` + parent + `", "ip_protocol": "tcp", "from_port": "x", "to_port": 2.5, "cidr": "::/0"}}`},
		{2, `{"security_group_rule": {"parent_group_id": "nope", "ip_protocol": "gre", "from_port": 1, "to_port": 2, "cidr": "1.2.3.4/0"}}`},
		{2, `{"security_group_rule": {"parent_group_id": "` + parent + `", "group_id": null, "cidr": []}}`},
		{0, `{}`}, {1, `null`}, {2, `[]`}, {2, ``},
	} {
		f.Add(s.route, s.body)
	}
	z := newFuzzAPI(f)
	ctx := context.Background()
	if err := z.d.InTx(ctx, func(tx *db.Tx) error {
		return netdb.CreateSecurityGroup(ctx, tx, &netdb.SecurityGroup{ID: parent, Name: "parent", ProjectID: "demo", Stateful: true}, time.Unix(1, 0))
	}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		switch route % 3 {
		case 0:
			z.send(t, http.MethodPost, "/v2.1/os-security-groups", "demo:demo", MinVersion, []byte(body))
		case 1:
			z.send(t, http.MethodPut, "/v2.1/os-security-groups/"+parent, "demo:demo", MinVersion, []byte(body))
		default:
			z.send(t, http.MethodPost, "/v2.1/os-security-group-rules", "demo:demo", MinVersion, []byte(body))
		}
	})
}

// FuzzAggregateBodies: os-aggregates' create, update and action bodies
// (add_host, remove_host, set_metadata) and the images body (2.81), at
// any microversion, against an aggregate that exists.
func FuzzAggregateBodies(f *testing.F) {
	for _, s := range []struct {
		kind uint8
		v    uint8
		body string
	}{
		{0, 0, `{"aggregate": {"name": "a2", "availability_zone": "az1"}}`}, {0, 40, `{"aggregate": {"name": "a3"}}`},
		{0, 0, `{"aggregate": {"name": ""}}`}, {0, 0, `{"aggregate": {"name": "x", "availability_zone": 1}}`}, {0, 0, `{"aggregate": null}`},
		{1, 0, `{"aggregate": {"name": "renamed"}}`}, {1, 0, `{"aggregate": {"availability_zone": "az2"}}`}, {1, 0, `{"aggregate": {}}`},
		{2, 0, `{"add_host": {"host": "api!cell1@h1"}}`}, {2, 0, `{"remove_host": {"host": "h1"}}`},
		{2, 0, `{"set_metadata": {"metadata": {"ssd": "true", "availability_zone": null}}}`}, {2, 0, `{"set_metadata": {"metadata": {"k": 1}}}`},
		{2, 0, `{"add_host": {"host": "a", "x": 1}}`}, {2, 0, `{"bogus": {}}`}, {2, 0, `{}`}, {2, 0, `[]`}, {2, 0, ``},
		{3, 80, `{"cache": [{"id": "` + fuzzImage + `"}]}`}, {3, 80, `{"cache": []}`}, {3, 80, `{"cache": [{"id": 1}, {"x": 2}]}`},
		{3, 80, `{"cache": [{"id": "` + fuzzImage + `"}, {"id": "` + fuzzImage + `"}]}`}, {3, 80, `{"cache": "x", "y": 1}`},
	} {
		f.Add(s.kind, s.v, s.body)
	}
	z := newFuzzAPI(f)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/v2.1/os-aggregates", strings.NewReader(`{"aggregate": {"name": "a1"}}`))
	r.Header.Set("X-Auth-Token", "admin:admin")
	r.Header.Set("Content-Type", "application/json")
	z.api.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		f.Fatalf("create the aggregate: %d %s", w.Code, w.Body)
	}
	f.Fuzz(func(t *testing.T, kind, v uint8, body string) {
		switch kind % 4 {
		case 0:
			z.send(t, http.MethodPost, "/v2.1/os-aggregates", "admin:admin", microversion(v), []byte(body))
		case 1:
			z.send(t, http.MethodPut, "/v2.1/os-aggregates/1", "admin:admin", microversion(v), []byte(body))
		case 2:
			z.send(t, http.MethodPost, "/v2.1/os-aggregates/1/action", "admin:admin", microversion(v), []byte(body))
		default:
			z.send(t, http.MethodPost, "/v2.1/os-aggregates/1/images", "admin:admin", microversion(v), []byte(body))
		}
	})
}
