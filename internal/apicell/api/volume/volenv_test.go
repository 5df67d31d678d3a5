package volume_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	identityapi "github.com/cellcloud/cellcloud/internal/apicell/api/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/api/volume"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

// The API cell's path in these tests, and the cell below that the tests
// play (with voldb.Apply).
const (
	rootCell = "api"
	cell1    = "api!c1"
)

// sentMsg is one message the API sent, recorded when its transaction
// committed.
type sentMsg struct {
	target, method string
	payload        any
}

// recSender records what is sent in transactions that commit.
type recSender struct {
	mu   sync.Mutex
	msgs []sentMsg
	// fail, when set, is what Send returns (the outbox failing halfway
	// through a transaction).
	fail error
}

func (s *recSender) Send(_ context.Context, tx *db.Tx, target, method, _ string, payload any) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return fail
	}
	tx.AfterCommit(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.msgs = append(s.msgs, sentMsg{target, method, payload})
	})
	return nil
}

func (s *recSender) all() []sentMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// fakeTypes is the default type and a "gold" type (multiattach). The
// TypeManager it embeds (nil) stands for the methods the volumes do not
// use.
type fakeTypes struct {
	volume.TypeManager
	types []*voltypes.Type
}

var (
	defaultType = &voltypes.Type{ID: "6b9f2c6e-3d0a-4f5e-9a51-0c7d8e2f4a10", Name: "__DEFAULT__", IsPublic: true, ExtraSpecs: map[string]string{}}
	goldType    = &voltypes.Type{ID: "1c1a8e8e-2f7c-4d1e-8a0b-5b9f1e0c2d3a", Name: "gold", IsPublic: true, ExtraSpecs: map[string]string{"multiattach": "<is> True"}}
)

func (f *fakeTypes) Type(_ context.Context, _ db.Querier, ref, _ string, _ bool) (*voltypes.Type, error) {
	for _, t := range f.types {
		if t.ID == ref || t.Name == ref {
			return t, nil
		}
	}
	return nil, notfound.New("type not found")
}

func (f *fakeTypes) Default(context.Context, db.Querier) (*voltypes.Type, error) {
	return defaultType, nil
}

// fakeQuotas are fixed limits for every project (the QuotaManager it
// embeds, nil, stands for the methods the volumes do not use).
type fakeQuotas struct {
	volume.QuotaManager
	mu     sync.Mutex
	limits map[string]int64
}

func (f *fakeQuotas) Limits(context.Context, db.Querier, string) (map[string]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int64{}
	for k, v := range f.limits {
		out[k] = v
	}
	return out, nil
}

func (f *fakeQuotas) set(k string, v int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits[k] = v
}

// fakeImages is an image store in memory.
type fakeImages struct {
	mu      sync.Mutex
	images  map[string]*volume.Image
	created []*volume.Image
}

func (f *fakeImages) Image(_ context.Context, _ db.Querier, id, _ string, _ bool) (*volume.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if img, ok := f.images[id]; ok {
		return img, nil
	}
	return nil, notfound.New("image not found")
}

func (f *fakeImages) ImagesNamed(_ context.Context, _ db.Querier, name, _ string, _ bool) ([]*volume.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*volume.Image
	for _, img := range f.images {
		if img.Name == name {
			out = append(out, img)
		}
	}
	return out, nil
}

func (f *fakeImages) CreateImage(_ context.Context, tx *db.Tx, img *volume.Image, _ string) error {
	tx.AfterCommit(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.created = append(f.created, img)
	})
	return nil
}

// volEnv is the Block Storage API with volumes on database d, with a
// recording sender, the default and gold types, fixed quotas and an image
// store in memory.
type volEnv struct {
	*env
	d      *db.DB
	sent   *recSender
	quotas *fakeQuotas
	images *fakeImages
}

func newVolEnv(t *testing.T, d *db.DB) *volEnv {
	t.Helper()
	return newVolEnvWith(t, d, nil)
}

// newVolEnvWith is newVolEnv with the configuration changed by with.
func newVolEnvWith(t *testing.T, d *db.DB, with func(*volume.Config)) *volEnv {
	t.Helper()
	ctx := context.Background()
	for _, m := range []struct {
		set string
		ms  []db.Migration
	}{{identity.MigrationSet, identity.Migrations}, {"api", apidb.Migrations}, {voldb.MigrationSet, voldb.Migrations}} {
		if err := d.Migrate(ctx, m.set, m.ms); err != nil {
			t.Fatal(err)
		}
	}
	st, err := identity.New(ctx, d, identity.Options{TokenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Bootstrap(ctx,
		identity.Account{User: "admin", Password: "pw-admin", Project: "admin", Role: identity.RoleAdmin},
		identity.Account{User: "demo", Password: "pw-demo", Project: "demo", Role: identity.RoleMember}); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.NewFromRules(slices.Concat(policy.Base, identityapi.Rules, volume.Rules), nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	at := func(path string) func(string) string { return func(base string) string { return base + path } }
	ids, err := identityapi.New(identityapi.Config{Cell: rootCell, Store: st, Policy: pol, Logger: log, Catalog: []identityapi.Endpoint{
		{Type: "identity", Name: "keystone", URL: at("/identity")},
		{Type: "block-storage", Name: "cinder", URL: at("/volume/v3/" + identityapi.ProjectIDTemplate)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ve := &volEnv{d: d, sent: &recSender{},
		quotas: &fakeQuotas{limits: map[string]int64{"volumes": 10, "gigabytes": 1000, "snapshots": 10, "per_volume_gigabytes": -1}},
		images: &fakeImages{images: map[string]*volume.Image{}}}
	cfg := volume.Config{Cell: rootCell, Logger: log, Auth: authn.Local{Store: st}, Policy: pol,
		DB: d, Sender: ve.sent, Types: &fakeTypes{types: []*voltypes.Type{defaultType, goldType}}, Quotas: ve.quotas, Images: ve.images,
		TypeUsage: voldb.Counter{}, QuotaUsage: voldb.Counter{},
		Zones: func(context.Context) []string { return []string{"zone2"} }}
	if with != nil {
		with(&cfg)
	}
	vols, err := volume.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/identity/", http.StripPrefix("/identity", ids))
	mux.Handle("/volume/", http.StripPrefix("/volume", vols))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, st: st}
	e.admin, e.adminProject = e.token("admin", "pw-admin", "admin")
	e.demo, e.demoProject = e.token("demo", "pw-demo", "demo")
	ve.env = e
	return ve
}

// send sends a request with a JSON body (nil: none).
func (e *volEnv) send(method, path, token string, body any, headers ...string) *response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// demoPath is a path under the demo project's endpoint.
func (e *volEnv) demoPath(p string) string  { return "/volume/v3/" + e.demoProject + p }
func (e *volEnv) adminPath(p string) string { return "/volume/v3/" + e.adminProject + p }

// createVolume creates a volume as demo and returns its id.
func (e *volEnv) createVolume(vol map[string]any) string {
	e.t.Helper()
	v := e.send("POST", e.demoPath("/volumes"), e.demo, map[string]any{"volume": vol}).json(e.t, 202)["volume"].(map[string]any)
	return v["id"].(string)
}

// cellSays applies states as the volume's cell would send them.
func (e *volEnv) cellSays(vols []wire.VolumeState, snaps []wire.SnapshotState) {
	e.t.Helper()
	if err := e.d.InTx(context.Background(), func(tx *db.Tx) error {
		_, err := voldb.Apply(context.Background(), tx, vols, snaps, time.Now())
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
}

// available creates a volume and makes it available in cell1 at version 1.
func (e *volEnv) available(vol map[string]any) string {
	e.t.Helper()
	id := e.createVolume(vol)
	size := 1
	if s, ok := vol["size"].(int); ok {
		size = s
	}
	e.cellSays([]wire.VolumeState{{ID: id, Cell: cell1, Version: 1, Status: "available", SizeGB: size}}, nil)
	return id
}

// rows counts the volumes and snapshots rows (deleted ones too).
func (e *volEnv) rows() (vols, snaps int) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.d.QueryRow(ctx, `SELECT COUNT(*) FROM volumes`).Scan(&vols); err != nil {
		e.t.Fatal(err)
	}
	if err := e.d.QueryRow(ctx, `SELECT COUNT(*) FROM volume_snapshots`).Scan(&snaps); err != nil {
		e.t.Fatal(err)
	}
	return vols, snaps
}

// client is a gophercloud Block Storage client of user.
func (e *volEnv) gc(user, password, project string) *gophercloud.ServiceClient {
	e.t.Helper()
	pc, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{IdentityEndpoint: e.srv.URL + "/identity/v3",
		Username: user, Password: password, DomainName: "Default", TenantName: project})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := openstack.NewBlockStorageV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// volumeRow reads a volume's copy.
func (e *volEnv) volumeRow(id string) *voldb.Volume {
	e.t.Helper()
	v, err := voldb.GetAny(context.Background(), e.d, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}
