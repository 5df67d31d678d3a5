package image_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	imageapi "github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// Tokens in noauth mode: "user:project"; the user "admin" is an admin.
const (
	demo  = "demo:demo"
	other = "other:other"
	admin = "admin:admin"
)

// mount is where the node mounts the Image API, as devstack does.
const mount = "/image"

type server struct {
	api *imageapi.API
	srv *httptest.Server
	db  *db.DB
	dir string
	cfg imageapi.Config
}

// start serves a new Image API over d, mounted under /image with
// http.StripPrefix, as the node wires it.
func start(t *testing.T, d *db.DB, mods ...func(*imageapi.Config)) *server {
	t.Helper()
	pol, err := policy.NewFromRules(slices.Concat(policy.Base, imageapi.Rules), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := imageapi.Config{DB: d, StoreDir: filepath.Join(t.TempDir(), "images"), Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Auth: authn.NoAuth{}, Policy: pol}
	for _, m := range mods {
		m(&cfg)
	}
	if d != nil {
		if err := d.Migrate(context.Background(), imagedb.MigrationSet, imagedb.Migrations); err != nil {
			t.Fatalf("migrate images: %v", err)
		}
	}
	api, err := imageapi.New(cfg)
	if err != nil {
		t.Fatalf("new image api: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(mount+"/", http.StripPrefix(mount, api))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &server{api: api, srv: srv, db: d, dir: cfg.StoreDir, cfg: cfg}
}

// forEach runs f against a fresh server on every engine.
func forEach(t *testing.T, f func(t *testing.T, s *server), mods ...func(*imageapi.Config)) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) { f(t, start(t, d, mods...)) })
}

// client is a gophercloud image client as openstack.NewImageV2 makes one
// from a catalog entry "http://host/image".
func (s *server) client(token string) *gophercloud.ServiceClient {
	pc := &gophercloud.ProviderClient{}
	pc.SetToken(token)
	base := s.srv.URL + mount + "/"
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: base, ResourceBase: base + "v2/", Type: "image"}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) String() string { return http.StatusText(r.Status) + ": " + string(r.Body) }

func (r *response) JSON(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response is not JSON (%v): %s", err, r.Body)
	}
}

// do sends a raw request to the mounted API. A body that is not an
// io.Reader or []byte is sent as JSON.
func (s *server) do(t *testing.T, method, path, token string, body any, header ...string) *response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.srv.URL+mount+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// raw reads an image's JSON view as the caller token sees it.
func (s *server) raw(t *testing.T, token, id string) map[string]any {
	t.Helper()
	r := s.do(t, http.MethodGet, "/v2/images/"+id, token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("get %s: %s", id, r)
	}
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// create makes an image through gophercloud.
func (s *server) create(t *testing.T, token string, opts images.CreateOpts) *images.Image {
	t.Helper()
	img, err := images.Create(context.Background(), s.client(token), opts).Extract()
	if err != nil {
		t.Fatalf("create %+v: %v", opts, err)
	}
	return img
}

// allIDs lists the ids of every image, deleted or hidden ones aside, as an
// admin sees them with visibility=all.
func (s *server) allIDs(t *testing.T) []string {
	t.Helper()
	r := s.do(t, http.MethodGet, "/v2/images?visibility=all&limit=1000", admin, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("list: %s", r)
	}
	var out struct {
		Images []struct {
			ID string `json:"id"`
		} `json:"images"`
	}
	r.JSON(t, &out)
	var ids []string
	for _, i := range out.Images {
		ids = append(ids, i.ID)
	}
	slices.Sort(ids)
	return ids
}

// storeFiles lists the store directory.
func (s *server) storeFiles(t *testing.T) []string {
	t.Helper()
	des, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

// wantError checks a response is Glance's JSON error with status and a
// message containing each of parts.
func wantError(t *testing.T, r *response, status int, parts ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	var e struct {
		Message string `json:"message"`
		Code    string `json:"code"`
		Title   string `json:"title"`
	}
	r.JSON(t, &e)
	if code := fmt.Sprintf("%d %s", status, http.StatusText(status)); e.Code != code || e.Title != http.StatusText(status) || e.Message == "" {
		t.Fatalf("error shape: code %q title %q, want %q / %q: %s", e.Code, e.Title, code, http.StatusText(status), r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
	for _, p := range parts {
		if !bytes.Contains([]byte(e.Message), []byte(p)) {
			t.Fatalf("message %q does not contain %q", e.Message, p)
		}
	}
}

// unchanged fails when an image's view differs from before.
func unchanged(t *testing.T, s *server, id string, before map[string]any, what string) {
	t.Helper()
	if after := s.raw(t, admin, id); !reflect.DeepEqual(before, after) {
		t.Fatalf("%s changed the image:\nbefore %v\nafter  %v", what, before, after)
	}
}

func ptr[T any](v T) *T { return &v }
