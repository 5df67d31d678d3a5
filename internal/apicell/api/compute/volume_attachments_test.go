package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	volumeapi "github.com/cellcloud/cellcloud/internal/apicell/api/volume"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// attachCaller plays the server's cell for attach_volume: it records
// each request and answers with answer (a device, or a wire error) and
// the volume's state from state (nil, or a nil state: none, as a cell of
// an earlier release or a move answers).
type attachCaller struct {
	noCaller
	mu     sync.Mutex
	calls  []wire.AttachVolume
	target []string
	answer func(req *wire.AttachVolume) (string, error)
	state  func(req *wire.AttachVolume) *wire.VolumeState
	// update plays update_volume_attachment (nil: not expected).
	update  func(req *wire.UpdateVolumeAttachment) (wire.VolumeState, error)
	updates []wire.UpdateVolumeAttachment
}

func (c *attachCaller) Call(_ context.Context, target, method, _ string, payload, out any) error {
	if method == wire.MethodUpdateVolumeAttachment && c.update != nil {
		req := payload.(*wire.UpdateVolumeAttachment)
		c.mu.Lock()
		c.updates = append(c.updates, *req)
		c.target = append(c.target, target)
		c.mu.Unlock()
		st, err := c.update(req)
		if err != nil {
			return err
		}
		*(out.(*wire.UpdateVolumeAttachmentAnswer)) = wire.UpdateVolumeAttachmentAnswer{Volume: st}
		return nil
	}
	if method != wire.MethodAttachVolume {
		return fmt.Errorf("unexpected call %s", method)
	}
	req := payload.(*wire.AttachVolume)
	c.mu.Lock()
	c.calls = append(c.calls, *req)
	c.target = append(c.target, target)
	answer, state := c.answer, c.state
	c.mu.Unlock()
	dev, err := answer(req)
	if err != nil {
		return err
	}
	ans := wire.AttachVolumeAnswer{Device: dev}
	if state != nil {
		ans.Volume = state(req)
	}
	*(out.(*wire.AttachVolumeAnswer)) = ans
	return nil
}

func (c *attachCaller) last() (wire.AttachVolume, string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.calls) == 0 {
		return wire.AttachVolume{}, "", 0
	}
	return c.calls[len(c.calls)-1], c.target[len(c.target)-1], len(c.calls)
}

// volSender records the messages of the transactions that commit, and
// fails every send while down.
type volSender struct {
	mu   sync.Mutex
	down bool
	msgs []struct {
		to, method string
		payload    any
	}
}

func (s *volSender) Send(_ context.Context, tx *db.Tx, to, method, _ string, p any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errors.New("outbox write failed")
	}
	tx.AfterCommit(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.msgs = append(s.msgs, struct {
			to, method string
			payload    any
		}{to, method, p})
	})
	return nil
}

// serviceAuth is noauth with one more principal: "svc" holds the service
// role in the demo project (Cinder calling Nova for the volume's owner).
type serviceAuth struct{ authn.NoAuth }

func (a serviceAuth) Authenticate(ctx context.Context, tok string) (authn.Principal, error) {
	if tok == "svc:svc" {
		return authn.Principal{UserID: "svc", UserName: "svc", ProjectID: "demo", ProjectName: "demo", Roles: []string{"service"}}, nil
	}
	return a.NoAuth.Authenticate(ctx, tok)
}

const (
	vaServer  = "00000000-0000-4000-8000-00000000c001"
	vaOther   = "00000000-0000-4000-8000-00000000c002"
	vaVol     = "00000000-0000-4000-8000-00000000d001"
	vaVol2    = "00000000-0000-4000-8000-00000000d002"
	vaRoot    = "00000000-0000-4000-8000-00000000d003"
	vaFar     = "00000000-0000-4000-8000-00000000d004"
	vaTheirs  = "00000000-0000-4000-8000-00000000d005"
	vaMissing = "00000000-0000-4000-8000-00000000dfff"
	vaCell    = "api!cell1"
)

type vaEnv struct {
	t      *testing.T
	d      *db.DB
	a      *API
	caller *attachCaller
	sender *volSender
	ver    map[string]int64
}

func newVAEnv(t *testing.T, d *db.DB) *vaEnv {
	t.Helper()
	ctx := context.Background()
	for _, m := range []struct {
		set string
		ms  []db.Migration
	}{{"api", apidb.Migrations}, {netdb.MigrationSet, netdb.Migrations}, {voldb.MigrationSet, voldb.Migrations}} {
		if err := d.Migrate(ctx, m.set, m.ms); err != nil {
			t.Fatal(err)
		}
	}
	if err := apidb.SeedFlavors(ctx, d); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
	err := d.InTx(ctx, func(tx *db.Tx) error {
		for _, s := range []struct{ uuid, project string }{{vaServer, "demo"}, {vaOther, "other"}} {
			in := apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: s.uuid, Name: "s", ProjectID: s.project, UserID: s.project,
				ImageRef: "img", ReservationID: "r-" + s.uuid, CreatedAt: now, AvailabilityZone: "az1"},
				FlavorID: "1", Flavor: wire.Flavor{ID: "1", Name: "m1.tiny", VCPUs: 1, RAMMB: 512, RootGB: 1},
				Cell: vaCell, Host: "h1", Node: "h1", VMState: "active", PowerState: 1, Version: 1}
			if err := apidb.Create(ctx, tx, []apidb.Instance{in}); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE instances SET cell_path = ?, availability_zone = 'az1' WHERE uuid = ?`, vaCell, s.uuid); err != nil {
				return err
			}
		}
		for _, v := range []struct{ id, project string }{{vaVol, "demo"}, {vaVol2, "demo"}, {vaRoot, "demo"}, {vaFar, "demo"}, {vaTheirs, "other"}} {
			zone := "az1"
			if v.id == vaFar {
				zone = "az2"
			}
			if err := voldb.Create(ctx, tx, &voldb.Volume{ID: v.id, ProjectID: v.project, UserID: v.project, SizeGB: 1,
				Status: voldb.StatusCreating, AvailabilityZone: zone, CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.NewFromRules(slices.Concat(policy.Base, Rules), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &vaEnv{t: t, d: d, sender: &volSender{}, ver: map[string]int64{},
		caller: &attachCaller{answer: func(*wire.AttachVolume) (string, error) { return "/dev/vdb", nil }}}
	e.a, err = New(Config{Cell: "api", DB: d, Sender: e.sender, Caller: e.caller, Auth: serviceAuth{}, Policy: pol,
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{vaVol, vaVol2, vaRoot, vaTheirs} {
		e.cellSays(id, vaCell, "available")
	}
	e.cellSays(vaFar, "api!cell2", "available")
	return e
}

// cellSays applies the next state of a volume as its cell sends it.
func (e *vaEnv) cellSays(id, cell, status string, atts ...wire.AttachmentState) {
	e.t.Helper()
	e.ver[id]++
	if err := e.d.InTx(context.Background(), func(tx *db.Tx) error {
		_, err := voldb.Apply(context.Background(), tx, []wire.VolumeState{{ID: id, Cell: cell, Version: e.ver[id], Status: status,
			SizeGB: 1, Attachments: atts}}, nil, time.Now())
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
}

// attached makes the cell say vol is attached to server.
func (e *vaEnv) attached(vol, server, device string, boot int, tag string, dot bool) {
	e.t.Helper()
	e.cellSays(vol, vaCell, "in-use", wire.AttachmentState{ID: "att-" + vol, InstanceUUID: server, Status: "attached", Device: device,
		Mode: "rw", BDMUUID: "bdm-" + vol, Tag: tag, DeleteOnTermination: dot, BootIndex: boot})
}

func (e *vaEnv) sql(q string, args ...any) {
	e.t.Helper()
	if _, err := e.d.Exec(context.Background(), q, args...); err != nil {
		e.t.Fatal(err)
	}
}

type vaResp struct {
	code int
	body map[string]any
	raw  string
}

// msg is the fault's message (of its one key).
func (r vaResp) msg() string {
	for _, v := range r.body {
		if m, ok := v.(map[string]any); ok {
			s, _ := m["message"].(string)
			return s
		}
	}
	return ""
}

func (e *vaEnv) do(token, method, path, version string, body any) vaResp {
	e.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	r := httptest.NewRequest(method, path, rd)
	r.Header.Set("X-Auth-Token", token)
	r.Header.Set("Content-Type", "application/json")
	if version != "" {
		r.Header.Set("OpenStack-API-Version", "compute "+version)
	}
	w := httptest.NewRecorder()
	e.a.ServeHTTP(w, r)
	out := vaResp{code: w.Code, raw: w.Body.String()}
	if w.Body.Len() > 0 {
		_ = json.Unmarshal(w.Body.Bytes(), &out.body)
	}
	return out
}

// The tokens of these tests (noauth: "user:project"; "admin" is an admin).
const (
	demo  = "demo:demo"
	other = "other:other"
	admin = "admin:admin"
)

const vaPath = "/v2.1/servers/" + vaServer + "/os-volume_attachments"

func attachBody(vol string, extra ...any) map[string]any {
	a := map[string]any{"volumeId": vol}
	for i := 0; i+1 < len(extra); i += 2 {
		a[extra[i].(string)] = extra[i+1]
	}
	return map[string]any{"volumeAttachment": a}
}

// TestVolumeAttachSchema: Nova's create schema per microversion (tag from
// 2.49, delete_on_termination from 2.79), with its texts; nothing is
// asked of the cell.
func TestVolumeAttachSchema(t *testing.T) {
	e := newVAEnv(t, dbtest.Open(t, "sqlite"))
	for _, c := range []struct {
		ver  string
		body any
		want string
	}{
		{"2.1", map[string]any{}, "'volumeAttachment' is a required property"},
		{"2.1", map[string]any{"volumeAttachment": map[string]any{}}, "Invalid input for field/attribute volumeAttachment. Value: {}. 'volumeId' is a required property"},
		{"2.1", attachBody("nope"), "Invalid input for field/attribute volumeId. Value: nope. 'nope' is not a 'uuid'"},
		{"2.1", attachBody(vaVol, "device", "vdb"), "Invalid input for field/attribute device. Value: vdb. 'vdb' does not match '(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$'"},
		{"2.1", attachBody(vaVol, "device", 5), "Invalid input for field/attribute device. Value: 5. 5 is not of type 'string', 'null'"},
		{"2.48", attachBody(vaVol, "tag", "t"), "Invalid input for field/attribute volumeAttachment. Value: {'tag': 't', 'volumeId': '" + vaVol + "'}. Additional properties are not allowed ('tag' was unexpected)"},
		{"2.49", attachBody(vaVol, "tag", "a/b"), "Invalid input for field/attribute tag. Value: a/b. 'a/b' does not match '^[^,/]*$'"},
		{"2.78", attachBody(vaVol, "delete_on_termination", true), "Additional properties are not allowed ('delete_on_termination' was unexpected)"},
		{"2.79", attachBody(vaVol, "delete_on_termination", "maybe"), "Invalid input for field/attribute delete_on_termination. Value: maybe."},
	} {
		r := e.do(demo, "POST", vaPath, c.ver, c.body)
		if r.code != 400 || !strings.Contains(r.msg(), c.want) {
			t.Errorf("%s %v: %d %q, want 400 containing %q", c.ver, c.body, r.code, r.msg(), c.want)
		}
	}
	if _, _, n := e.caller.last(); n != 0 {
		t.Errorf("%d calls to the cell for refused bodies", n)
	}
}

// TestVolumeAttach: Nova's checks on the copies (server, lock, state,
// shelved below 2.20, the volume, already attached, another cell, its
// status), then the call to the server's cell, whose answer is the
// device (with no state, as a cell of an earlier release answers: the
// copy is reserved); the answer's fields per microversion.
func TestVolumeAttach(t *testing.T) {
	e := newVAEnv(t, dbtest.Open(t, "sqlite"))
	post := func(token, ver string, body any) vaResp { return e.do(token, "POST", vaPath, ver, body) }

	// Success at 2.1: the cell is asked with the ids the API made.
	r := post(demo, "2.1", attachBody(vaVol, "device", "/dev/vdc"))
	if r.code != 200 {
		t.Fatalf("attach: %d %s", r.code, r.raw)
	}
	va := r.body["volumeAttachment"].(map[string]any)
	if len(va) != 4 || va["id"] != vaVol || va["volumeId"] != vaVol || va["serverId"] != vaServer || va["device"] != "/dev/vdb" {
		t.Errorf("2.1 answer %v", va)
	}
	req, target, _ := e.caller.last()
	if target != vaCell || req.InstanceUUID != vaServer || req.VolumeID != vaVol || req.Device != "/dev/vdc" || !uuidRE.MatchString(req.AttachmentID) ||
		!uuidRE.MatchString(req.BDMUUID) || req.AttachmentID == req.BDMUUID || req.UserID != "demo" || req.ProjectID != "demo" {
		t.Errorf("attach_volume to %s: %+v", target, req)
	}
	// A cell that answers no state (one of an earlier release): the copy
	// is reserved, attaching at its version, until the cell's update
	// (TestVolumeAttachThenDelete has the state answered).
	if v, _ := voldb.Get(context.Background(), e.d, vaVol); v.Status != "attaching" || v.Version != e.ver[vaVol] || len(v.Attachments) != 0 {
		t.Errorf("the copy after the call: %s at version %d %v, want attaching at %d", v.Status, v.Version, v.Attachments, e.ver[vaVol])
	}
	// The cell's attaches fail on the host here: the volume is available
	// again after each.
	e.cellSays(vaVol, vaCell, "available")
	// 2.70: tag; 2.79: delete_on_termination.
	va = post(demo, "2.70", attachBody(vaVol)).body["volumeAttachment"].(map[string]any)
	if len(va) != 5 || va["tag"] != nil {
		t.Errorf("2.70 answer %v", va)
	}
	e.cellSays(vaVol, vaCell, "available")
	va = post(demo, "2.79", attachBody(vaVol, "tag", "db", "delete_on_termination", "yes")).body["volumeAttachment"].(map[string]any)
	if len(va) != 6 || va["tag"] != "db" || va["delete_on_termination"] != true {
		t.Errorf("2.79 answer %v", va)
	}
	if req, _, _ := e.caller.last(); req.Tag != "db" || !req.DeleteOnTermination {
		t.Errorf("2.79 request %+v", req)
	}
	e.cellSays(vaVol, vaCell, "available")

	// The refusals on the copies, in Nova's order.
	check := func(name string, r vaResp, code int, msg string) {
		t.Helper()
		if r.code != code || r.msg() != msg {
			t.Errorf("%s: %d %q, want %d %q", name, r.code, r.msg(), code, msg)
		}
	}
	_, _, calls := e.caller.last()
	check("unknown server", e.do(demo, "POST", "/v2.1/servers/"+vaMissing+"/os-volume_attachments", "2.1", attachBody(vaVol)), 404,
		"Instance "+vaMissing+" could not be found.")
	check("another project's server", e.do(demo, "POST", "/v2.1/servers/"+vaOther+"/os-volume_attachments", "2.1", attachBody(vaVol)), 404,
		"Instance "+vaOther+" could not be found.")
	check("unknown volume", post(demo, "2.1", attachBody(vaMissing)), 404, "Volume "+vaMissing+" could not be found.")
	check("another project's volume", post(demo, "2.1", attachBody(vaTheirs)), 404, "Volume "+vaTheirs+" could not be found.")
	check("another cell's volume", post(demo, "2.1", attachBody(vaFar)), 400, "Invalid volume: Instance "+vaServer+" and volume "+vaFar+
		" are not in the same availability_zone. Instance is in az1. Volume is in az2")
	e.cellSays(vaVol2, vaCell, "extending")
	r = post(demo, "2.1", attachBody(vaVol2))
	if r.code != 400 || !strings.HasPrefix(r.msg(), "Invalid input received: Invalid volume: Volume "+vaVol2+
		" status must be available or downloading to reserve, but the current status is extending. (HTTP 400) (Request-ID: ") {
		t.Errorf("volume extending: %d %q", r.code, r.msg())
	}
	e.attached(vaVol2, vaOther, "/dev/vdb", -1, "", false)
	check("attached elsewhere", post(demo, "2.1", attachBody(vaVol2)), 400, "Invalid volume: volume "+vaVol2+" is already attached to instances: "+vaOther)
	e.sql(`UPDATE instances SET locked = 1, locked_by = 'owner' WHERE uuid = ?`, vaServer)
	check("locked", post(demo, "2.1", attachBody(vaVol)), 409, "Instance "+vaServer+" is locked")
	e.sql(`UPDATE instances SET locked = 0, locked_by = '', vm_state = 'error' WHERE uuid = ?`, vaServer)
	check("error", post(demo, "2.1", attachBody(vaVol)), 409, "Cannot 'attach_volume' instance "+vaServer+" while it is in vm_state error")
	e.sql(`UPDATE instances SET vm_state = 'active', task_state = 'rebooting' WHERE uuid = ?`, vaServer)
	check("a task", post(demo, "2.1", attachBody(vaVol)), 409, "Cannot 'attach_volume' instance "+vaServer+" while it is in task_state rebooting")
	e.sql(`UPDATE instances SET vm_state = 'shelved_offloaded', task_state = '' WHERE uuid = ?`, vaServer)
	check("shelved below 2.20", post(demo, "2.19", attachBody(vaVol)), 409, "Cannot 'attach_volume' instance "+vaServer+" while it is in vm_state shelved_offloaded")
	check("tag on shelved-offloaded", post(demo, "2.49", attachBody(vaVol, "tag", "x")), 400, "Tagged volume attachment is not supported for shelved-offloaded instances.")
	if _, _, n := e.caller.last(); n != calls {
		t.Errorf("%d calls to the cell for refusals on the copies", n-calls)
	}
	if r := post(demo, "2.20", attachBody(vaVol)); r.code != 200 {
		t.Errorf("shelved-offloaded at 2.20: %d %s", r.code, r.raw)
	}
	e.cellSays(vaVol, vaCell, "available")
	e.sql(`UPDATE instances SET vm_state = 'active' WHERE uuid = ?`, vaServer)

	// The cell's refusals (its rows are the truth).
	for reason, want := range map[string]struct {
		code int
		msg  string
	}{
		wire.AttachReasonInstanceNotFound: {404, "Instance " + vaServer + " could not be found."},
		wire.AttachReasonInstanceState:    {409, "Cannot 'attach_volume' instance " + vaServer + " while it is in vm_state active"},
		wire.AttachReasonVolumeNotFound:   {404, "Volume " + vaVol + " could not be found."},
		wire.AttachReasonAlreadyAttached:  {400, "Invalid volume: volume " + vaVol + " already attached"},
		wire.AttachReasonDeviceInUse:      {409, "The supplied device path (/dev/vdc) is in use."},
		wire.AttachReasonTooManyDevices:   {403, "The maximum allowed number of disk devices (26) to attach to a single instance has been exceeded."},
	} {
		e.caller.answer = func(*wire.AttachVolume) (string, error) { return "", wire.Errorf(wire.CodeConflict, "%s", reason) }
		check("cell says "+reason, post(demo, "2.1", attachBody(vaVol, "device", "/dev/vdc")), want.code, want.msg)
	}
	e.caller.answer = func(*wire.AttachVolume) (string, error) {
		return "", wire.Errorf(wire.CodeConflict, "%s", wire.AttachReasonVolumeStatus)
	}
	if r := post(demo, "2.1", attachBody(vaVol)); r.code != 400 || !strings.Contains(r.msg(), "status must be available or downloading to reserve, but the current status is available.") {
		t.Errorf("cell says volume_status: %d %q", r.code, r.msg())
	}
	// A cell that does not answer: 503.
	e.caller.answer = func(*wire.AttachVolume) (string, error) { return "", wire.Errorf(wire.CodeTimeout, "deadline") }
	if r := post(demo, "2.1", attachBody(vaVol)); r.code != 503 {
		t.Errorf("cell silent: %d %s", r.code, r.raw)
	}
}

// TestVolumeAttachmentViews: index and show from the mirror, with each
// microversion's fields (2.70 tag, 2.79 delete_on_termination, 2.89
// attachment_id and bdm_uuid without id), paging, the 2.75 query check,
// and the 404 of a volume not attached; volumes_attached in the server
// views (2.3 delete_on_termination).
func TestVolumeAttachmentViews(t *testing.T) {
	e := newVAEnv(t, dbtest.Open(t, "sqlite"))
	e.attached(vaRoot, vaServer, "/dev/vda", 0, "", true)
	e.attached(vaVol, vaServer, "/dev/vdb", -1, "data", false)

	list := func(ver, q string) []any {
		t.Helper()
		r := e.do(demo, "GET", vaPath+q, ver, nil)
		if r.code != 200 {
			t.Fatalf("index %s%s: %d %s", ver, q, r.code, r.raw)
		}
		return r.body["volumeAttachments"].([]any)
	}
	l := list("2.1", "")
	if len(l) != 2 {
		t.Fatalf("index: %v", l)
	}
	root, data := l[0].(map[string]any), l[1].(map[string]any)
	if len(root) != 4 || root["id"] != vaRoot || root["volumeId"] != vaRoot || root["serverId"] != vaServer || root["device"] != "/dev/vda" {
		t.Errorf("2.1 root %v", root)
	}
	if data["device"] != "/dev/vdb" {
		t.Errorf("2.1 data %v", data)
	}
	if v := list("2.70", "")[1].(map[string]any); len(v) != 5 || v["tag"] != "data" {
		t.Errorf("2.70 %v", v)
	}
	if v := list("2.79", "")[0].(map[string]any); len(v) != 6 || v["tag"] != nil || v["delete_on_termination"] != true {
		t.Errorf("2.79 %v", v)
	}
	v := list("2.89", "")[1].(map[string]any)
	if _, hasID := v["id"]; hasID || len(v) != 7 || v["attachment_id"] != "att-"+vaVol || v["bdm_uuid"] != "bdm-"+vaVol {
		t.Errorf("2.89 %v", v)
	}
	if l := list("2.1", "?limit=1&offset=1"); len(l) != 1 || l[0].(map[string]any)["volumeId"] != vaVol {
		t.Errorf("limit/offset: %v", l)
	}
	if l := list("2.1", "?limit=0"); len(l) != 2 {
		t.Errorf("limit 0 (max_limit): %v", l)
	}
	if l := list("2.74", "?foo=1"); len(l) != 2 {
		t.Errorf("2.74 with another key: %v", l)
	}
	if r := e.do(demo, "GET", vaPath+"?foo=1", "2.75", nil); r.code != 400 || r.msg() != "Additional properties are not allowed ('foo' was unexpected)" {
		t.Errorf("2.75 with another key: %d %q", r.code, r.msg())
	}
	if r := e.do(demo, "GET", vaPath+"?limit=-1", "2.1", nil); r.code != 400 {
		t.Errorf("negative limit: %d", r.code)
	}
	// Show.
	r := e.do(demo, "GET", vaPath+"/"+vaVol, "2.89", nil)
	if s := r.body["volumeAttachment"].(map[string]any); r.code != 200 || s["attachment_id"] != "att-"+vaVol || s["tag"] != "data" {
		t.Errorf("show 2.89: %d %v", r.code, r.body)
	}
	if r := e.do(demo, "GET", vaPath+"/"+vaVol2, "2.1", nil); r.code != 404 || r.msg() != "Instance "+vaServer+" is not attached to volume "+vaVol2 {
		t.Errorf("show not attached: %d %q", r.code, r.msg())
	}
	if r := e.do(other, "GET", vaPath, "2.1", nil); r.code != 404 {
		t.Errorf("another project's index: %d", r.code)
	}
	// The admin sees it.
	if r := e.do(admin, "GET", vaPath+"/"+vaVol, "2.1", nil); r.code != 200 {
		t.Errorf("admin show: %d", r.code)
	}

	// volumes_attached in show and detail: {"id"}, and from 2.3
	// delete_on_termination.
	vols := func(ver string, detail bool) []any {
		t.Helper()
		if detail {
			r := e.do(demo, "GET", "/v2.1/servers/detail", ver, nil)
			for _, s := range r.body["servers"].([]any) {
				if s.(map[string]any)["id"] == vaServer {
					return s.(map[string]any)["os-extended-volumes:volumes_attached"].([]any)
				}
			}
			t.Fatalf("detail: %s", r.raw)
		}
		r := e.do(demo, "GET", "/v2.1/servers/"+vaServer, ver, nil)
		return r.body["server"].(map[string]any)["os-extended-volumes:volumes_attached"].([]any)
	}
	for _, detail := range []bool{false, true} {
		if got := vols("2.1", detail); len(got) != 2 || len(got[0].(map[string]any)) != 1 || got[0].(map[string]any)["id"] != vaRoot {
			t.Errorf("volumes_attached 2.1 (detail %v): %v", detail, got)
		}
		if got := vols("2.3", detail); len(got) != 2 || got[0].(map[string]any)["delete_on_termination"] != true ||
			got[1].(map[string]any)["delete_on_termination"] != false {
			t.Errorf("volumes_attached 2.3 (detail %v): %v", detail, got)
		}
	}
	if r := e.do(other, "GET", "/v2.1/servers/"+vaOther, "2.3", nil); len(r.body["server"].(map[string]any)["os-extended-volumes:volumes_attached"].([]any)) != 0 {
		t.Errorf("a server with none: %s", r.raw)
	}
}

// TestVolumeDetach: Nova's checks (the volume, not attached, the root
// device, lock and state), then the copy's volume detaching (its version
// unchanged) and detach_volume to the server's cell in one transaction:
// an outbox that fails leaves the copy as it was; the cell's next update
// replaces the status.
func TestVolumeDetach(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newVAEnv(t, d)
		e.attached(vaRoot, vaServer, "/dev/vda", 0, "", false)
		e.attached(vaVol, vaServer, "/dev/vdb", -1, "", false)
		del := func(token, ver, vol string) vaResp { return e.do(token, "DELETE", vaPath+"/"+vol, ver, nil) }
		check := func(name string, r vaResp, code int, msg string) {
			t.Helper()
			if r.code != code || r.msg() != msg {
				t.Errorf("%s: %d %q, want %d %q", name, r.code, r.msg(), code, msg)
			}
		}
		check("unknown volume", del(demo, "2.1", vaMissing), 404, "Volume "+vaMissing+" could not be found.")
		check("not attached", del(demo, "2.1", vaVol2), 404, "Instance "+vaServer+" is not attached to volume "+vaVol2)
		check("root", del(demo, "2.1", vaRoot), 400, "Cannot detach a root device volume")
		e.sql(`UPDATE instances SET locked = 1, locked_by = 'owner' WHERE uuid = ?`, vaServer)
		check("locked", del(demo, "2.1", vaVol), 409, "Instance "+vaServer+" is locked")
		e.sql(`UPDATE instances SET locked = 0, locked_by = '', vm_state = 'shelved' WHERE uuid = ?`, vaServer)
		check("shelved below 2.20", del(demo, "2.19", vaVol), 409, "Cannot 'detach_volume' instance "+vaServer+" while it is in vm_state shelved")
		e.sql(`UPDATE instances SET vm_state = 'active' WHERE uuid = ?`, vaServer)

		// The outbox fails halfway: nothing changes.
		e.sender.mu.Lock()
		e.sender.down = true
		e.sender.mu.Unlock()
		if r := del(demo, "2.1", vaVol); r.code != 500 {
			t.Errorf("detach with a failing outbox: %d", r.code)
		}
		if v, _ := voldb.Get(context.Background(), d, vaVol); v.Status != "in-use" {
			t.Errorf("after a failed detach the copy is %s", v.Status)
		}
		e.sender.mu.Lock()
		e.sender.down = false
		e.sender.mu.Unlock()

		if r := del(demo, "2.1", vaVol); r.code != 202 || r.raw != "" {
			t.Fatalf("detach: %d %s", r.code, r.raw)
		}
		v, _ := voldb.Get(context.Background(), d, vaVol)
		if v.Status != "detaching" || v.Version != e.ver[vaVol] {
			t.Errorf("the copy after the detach: %s v%d (cell's v%d)", v.Status, v.Version, e.ver[vaVol])
		}
		if len(e.sender.msgs) != 1 || e.sender.msgs[0].to != vaCell || e.sender.msgs[0].method != wire.MethodDetachVolume {
			t.Fatalf("sent %+v", e.sender.msgs)
		}
		if p := e.sender.msgs[0].payload.(*wire.DetachVolume); p.InstanceUUID != vaServer || p.VolumeID != vaVol || p.UserID != "demo" || p.ProjectID != "demo" {
			t.Errorf("detach_volume %+v", p)
		}
		// A repeat while detaching: Cinder's begin_detaching refuses it.
		r := del(demo, "2.1", vaVol)
		if r.code != 400 || !strings.HasPrefix(r.msg(), "Invalid volume: Invalid input received: Invalid volume: Unable to detach volume. "+
			"Volume status must be 'in-use' and attach_status must be 'attached' to detach. (HTTP 400)") {
			t.Errorf("repeat: %d %q", r.code, r.msg())
		}
		if len(e.sender.msgs) != 1 {
			t.Errorf("a refused repeat sent %d messages", len(e.sender.msgs)-1)
		}
		// The cell's update (detached) replaces the status: not attached.
		e.cellSays(vaVol, vaCell, "available")
		check("after the detach", del(demo, "2.1", vaVol), 404, "Instance "+vaServer+" is not attached to volume "+vaVol)
	})
}

// TestVolumeAttachmentUpdate: below 2.85, or naming another volume, PUT is
// the swap, the service role's (403 for users; for the service, Nova's 409
// as no volume migrates); from 2.85 on the same volume the immutable
// fields are checked, an unchanged delete_on_termination is accepted and a
// change refused (no message carries it to the cell).
func TestVolumeAttachmentUpdate(t *testing.T) {
	e := newVAEnv(t, dbtest.Open(t, "sqlite"))
	e.attached(vaVol, vaServer, "/dev/vdb", -1, "data", false)
	put := func(token, ver, vol string, body any) vaResp { return e.do(token, "PUT", vaPath+"/"+vol, ver, body) }
	check := func(name string, r vaResp, code int, msg string) {
		t.Helper()
		if r.code != code || r.msg() != msg {
			t.Errorf("%s: %d %q, want %d %q", name, r.code, r.msg(), code, msg)
		}
	}
	swap := "Policy doesn't allow os_compute_api:os-volumes-attachments:swap to be performed."
	check("2.84 same volume", put(demo, "2.84", vaVol, attachBody(vaVol)), 403, swap)
	check("2.85 another volume", put(demo, "2.85", vaVol, attachBody(vaVol2)), 403, swap)
	check("admin swap", put(admin, "2.1", vaVol, attachBody(vaVol2)), 403, swap)
	check("2.84 schema", put(demo, "2.84", vaVol, attachBody(vaVol, "device", "/dev/vdb")), 400,
		"Invalid input for field/attribute volumeAttachment. Value: {'device': '/dev/vdb', 'volumeId': '"+vaVol+"'}. Additional properties are not allowed ('device' was unexpected)")
	check("service swap", e.do("svc:svc", "PUT", vaPath+"/"+vaVol, "2.1", attachBody(vaVol2)), 409,
		"volume "+vaVol+" is not migrating; this API should only be called by Cinder")

	check("id", put(demo, "2.85", vaVol, attachBody(vaVol, "id", vaVol2)), 400, "The id property is not mutable")
	check("serverId", put(demo, "2.85", vaVol, attachBody(vaVol, "serverId", vaOther)), 400, "The serverId property is not mutable")
	check("device", put(demo, "2.85", vaVol, attachBody(vaVol, "device", "/dev/vdc")), 400, "The device property is not mutable")
	check("device null", put(demo, "2.85", vaVol, attachBody(vaVol, "device", nil)), 400, "The device property is not mutable")
	check("tag", put(demo, "2.85", vaVol, attachBody(vaVol, "tag", "other")), 400, "The tag property is not mutable")
	check("not attached", put(demo, "2.85", vaVol2, attachBody(vaVol2)), 404, "No volume Block Device Mapping with id "+vaVol2+".")
	for _, body := range []any{
		attachBody(vaVol),
		attachBody(vaVol, "id", vaVol, "serverId", vaServer, "device", "/dev/vdb", "tag", "data", "delete_on_termination", false),
	} {
		if r := put(demo, "2.85", vaVol, body); r.code != 202 || r.raw != "" {
			t.Errorf("unchanged %v: %d %s", body, r.code, r.raw)
		}
	}
	if len(e.caller.updates) != 0 {
		t.Errorf("an unchanged flag called the cell: %+v", e.caller.updates)
	}
	if len(e.sender.msgs) != 0 {
		t.Errorf("an update sent %+v", e.sender.msgs)
	}
}

// TestVolumeAttachmentUpdateDeleteOnTermination: 2.85's PUT that changes
// delete_on_termination calls update_volume_attachment on the server's
// cell and applies its answer to the copy before the 202, so the next GET
// shows the flag; the cell's volume_update arriving after it changes
// nothing, an older one (a late copy) cannot undo it; a repeat with the
// flag as it is asks nothing of the cell; the cell's not_found is Nova's
// 404, a cell of an earlier release (unknown_method) a 409.
func TestVolumeAttachmentUpdateDeleteOnTermination(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newVAEnv(t, d)
		e.attached(vaVol, vaServer, "/dev/vdb", -1, "data", false)
		att := wire.AttachmentState{ID: "att-" + vaVol, InstanceUUID: vaServer, Status: "attached", Device: "/dev/vdb",
			Mode: "rw", BDMUUID: "bdm-" + vaVol, Tag: "data", BootIndex: -1}
		// The cell: the mapping's flag at the volume's next version.
		e.caller.update = func(req *wire.UpdateVolumeAttachment) (wire.VolumeState, error) {
			a := att
			a.DeleteOnTermination = req.DeleteOnTermination
			return wire.VolumeState{ID: req.VolumeID, Cell: vaCell, Version: e.ver[vaVol] + 1, Status: "in-use", SizeGB: 1,
				Attachments: []wire.AttachmentState{a}}, nil
		}
		show := func() any {
			t.Helper()
			r := e.do(demo, "GET", vaPath+"/"+vaVol, "2.79", nil)
			if r.code != 200 {
				t.Fatalf("show: %d %s", r.code, r.raw)
			}
			return r.body["volumeAttachment"].(map[string]any)["delete_on_termination"]
		}
		r := e.do(demo, "PUT", vaPath+"/"+vaVol, "2.85", attachBody(vaVol, "delete_on_termination", true))
		if r.code != 202 || r.raw != "" {
			t.Fatalf("PUT: %d %s", r.code, r.raw)
		}
		if len(e.caller.updates) != 1 || e.caller.target[len(e.caller.target)-1] != vaCell {
			t.Fatalf("calls %+v to %v", e.caller.updates, e.caller.target)
		}
		if u := e.caller.updates[0]; u.InstanceUUID != vaServer || u.VolumeID != vaVol || !u.DeleteOnTermination || u.ProjectID != "demo" {
			t.Errorf("request %+v", u)
		}
		if got := show(); got != true {
			t.Errorf("after the PUT: delete_on_termination %v, want true", got)
		}
		r = e.do(demo, "GET", "/v2.1/servers/"+vaServer, "2.3", nil)
		vols, _ := r.body["server"].(map[string]any)["os-extended-volumes:volumes_attached"].([]any)
		if len(vols) != 1 || vols[0].(map[string]any)["delete_on_termination"] != true {
			t.Errorf("volumes_attached %v", vols)
		}
		// The late copy: the state before the change (the old version).
		if err := d.InTx(context.Background(), func(tx *db.Tx) error {
			_, err := voldb.Apply(context.Background(), tx, []wire.VolumeState{{ID: vaVol, Cell: vaCell, Version: e.ver[vaVol],
				Status: "in-use", SizeGB: 1, Attachments: []wire.AttachmentState{att}}}, nil, time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got := show(); got != true {
			t.Errorf("after a late update: delete_on_termination %v, want true", got)
		}
		// The repeat: the copy shows the flag, the cell is not asked.
		if r := e.do(demo, "PUT", vaPath+"/"+vaVol, "2.85", attachBody(vaVol, "delete_on_termination", true)); r.code != 202 {
			t.Errorf("repeat: %d %s", r.code, r.raw)
		}
		if len(e.caller.updates) != 1 {
			t.Errorf("the repeat called the cell: %+v", e.caller.updates)
		}
		// The cell says no such attachment (detached meanwhile).
		e.caller.update = func(*wire.UpdateVolumeAttachment) (wire.VolumeState, error) {
			return wire.VolumeState{}, wire.Errorf(wire.CodeNotFound, "volume %s is not attached to instance %s", vaVol, vaServer)
		}
		r = e.do(demo, "PUT", vaPath+"/"+vaVol, "2.85", attachBody(vaVol, "delete_on_termination", false))
		if r.code != 404 || r.msg() != "No volume Block Device Mapping with id "+vaVol+"." {
			t.Errorf("cell not_found: %d %q", r.code, r.msg())
		}
		e.caller.update = func(*wire.UpdateVolumeAttachment) (wire.VolumeState, error) {
			return wire.VolumeState{}, wire.Errorf(wire.CodeUnknownMethod, "unknown method")
		}
		r = e.do(demo, "PUT", vaPath+"/"+vaVol, "2.85", attachBody(vaVol, "delete_on_termination", false))
		if r.code != 409 {
			t.Errorf("older cell: %d %q", r.code, r.msg())
		}
		if got := show(); got != true {
			t.Errorf("after refusals: delete_on_termination %v, want true", got)
		}
		if len(e.sender.msgs) != 0 {
			t.Errorf("the PUT sent %+v", e.sender.msgs)
		}
	})
}

// TestVolumeAttachThenDelete: once the Compute API's attach has answered,
// the Block Storage API's delete of the volume is Cinder's 400 (Nova
// returns once Cinder has reserved the volume), however late the cell's
// volume_update of the attach is and whatever older states of the volume
// arrive after it, late, repeated or reordered: the copy took the state
// the cell answered, by version. Both APIs are driven with gophercloud,
// as a client does it (the fault suite's acknowledged delete of an
// in-use volume).
func TestVolumeAttachThenDelete(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newVAEnv(t, d)
		ctx := context.Background()
		if err := d.Migrate(ctx, voltypes.MigrationSet, voltypes.Migrations); err != nil {
			t.Fatal(err)
		}
		types, err := voltypes.New(voltypes.Config{})
		if err != nil {
			t.Fatal(err)
		}
		pol, err := policy.NewFromRules(slices.Concat(policy.Base, volumeapi.Rules), nil)
		if err != nil {
			t.Fatal(err)
		}
		vols, err := volumeapi.New(volumeapi.Config{Cell: "api", Logger: slog.New(slog.DiscardHandler), Auth: serviceAuth{}, Policy: pol,
			DB: d, Sender: e.sender, Types: types, Quotas: types, TypeUsage: voldb.Counter{}, QuotaUsage: voldb.Counter{}})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/v2.1/", e.a)
		mux.Handle("/volume/", http.StripPrefix("/volume", vols))
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		client := func(base string) *gophercloud.ServiceClient {
			pc := &gophercloud.ProviderClient{HTTPClient: *srv.Client()}
			pc.SetToken(demo)
			return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: base, ResourceBase: base}
		}
		cc, vc := client(srv.URL+"/v2.1/"), client(srv.URL+"/volume/v3/demo/")
		vc.Microversion = "3.60"

		// The states the cell sent of vaVol (available at version 1,
		// which the copy has): an attach and a detach that the copy has
		// not seen yet (versions 2 to 5), then this attach, answered at
		// version 6; its update is held back.
		st := func(version int64, status string, atts ...wire.AttachmentState) wire.VolumeState {
			return wire.VolumeState{ID: vaVol, Cell: vaCell, Version: version, Status: status, SizeGB: 1, Attachments: atts}
		}
		att := func(id, status string) wire.AttachmentState {
			return wire.AttachmentState{ID: id, InstanceUUID: vaServer, Status: status, Device: "/dev/vdb", Mode: "rw", BDMUUID: "bdm-" + id, BootIndex: -1}
		}
		late := []wire.VolumeState{st(2, "attaching", att("a1", "attaching")), st(3, "in-use", att("a1", "attached")),
			st(4, "detaching", att("a1", "detaching")), st(5, "available")}
		var answered wire.VolumeState
		e.caller.mu.Lock()
		e.caller.state = func(req *wire.AttachVolume) *wire.VolumeState {
			answered = st(6, "attaching", att(req.AttachmentID, "attaching"))
			return &answered
		}
		e.caller.mu.Unlock()
		if _, err := volumeattach.Create(ctx, cc, vaServer, volumeattach.CreateOpts{VolumeID: vaVol}).Extract(); err != nil {
			t.Fatalf("attach: %v", err)
		}
		if v, err := voldb.Get(ctx, d, vaVol); err != nil || v.Version != 6 || len(v.Attachments) != 1 {
			t.Errorf("the copy after the attach: %+v, %v; want the answered state, at version 6 with its attachment", v, err)
		}
		apply := func(states ...wire.VolumeState) {
			t.Helper()
			if err := d.InTx(ctx, func(tx *db.Tx) error {
				_, err := voldb.Apply(ctx, tx, states, nil, time.Now())
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		const refused = "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer."
		// Cinder's view lists the attached attachments only.
		deleteRefused := func(when, status string, attached int) {
			t.Helper()
			if v, err := volumes.Get(ctx, vc, vaVol).Extract(); err != nil || v.Status != status || len(v.Attachments) != attached {
				t.Errorf("%s: the volume %+v, %v; want %s with %d attachments", when, v, err, status, attached)
			}
			err := volumes.Delete(ctx, vc, vaVol, nil).ExtractErr()
			var ue gophercloud.ErrUnexpectedResponseCode
			if !errors.As(err, &ue) || ue.Actual != http.StatusBadRequest || !strings.Contains(string(ue.Body), refused) {
				t.Errorf("%s: the delete answered %v, want 400 %q", when, err, refused)
			}
		}
		deleteRefused("right after the attach", "attaching", 0)

		// The held states arrive, reordered, with repeats (a heal
		// resend of the first, the attach's own update twice): none
		// takes the copy back.
		apply(late[3], late[0], st(1, "available"), late[2], late[1], answered, answered)
		deleteRefused("after late and repeated states", "attaching", 0)

		// The cell's next state (the attach done) is newer: in-use.
		apply(st(7, "in-use", att(answered.Attachments[0].ID, "attached")))
		deleteRefused("once attached", "in-use", 1)

		e.sender.mu.Lock()
		defer e.sender.mu.Unlock()
		for _, m := range e.sender.msgs {
			if m.method == wire.MethodVolumeAction {
				t.Errorf("sent %s %+v to %s for a refused delete", m.method, m.payload, m.to)
			}
		}
	})
}
