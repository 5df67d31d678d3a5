package image

// Fuzz targets for the request bodies of the Image API, on its pure
// parsers: the create body (newImage) and the JSON-patch update
// (parsePatch, then applyChange on a scratch image). The property: no
// body panics; a refusal is a fault of a 4xx status; what is accepted,
// written again, is accepted the same.
//
// Run one briefly: go test -run '^$' -fuzz '^FuzzImagePatch$' -fuzztime 10s ./internal/apicell/api/image

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
)

const fuzzImageID = "70a599e0-31e7-49b7-b260-868f441e862b"

func fuzzCaller(admin bool) httpkit.Caller {
	if admin {
		return httpkit.Caller{Principal: authn.Principal{UserID: "admin", ProjectID: "admin", Roles: []string{"admin"}}, Admin: true}
	}
	return httpkit.Caller{Principal: authn.Principal{UserID: "demo", ProjectID: "demo", Roles: []string{"member"}}}
}

// checkRefusal: err is a fault of a 4xx status with a message.
func checkRefusal(t *testing.T, body string, err error) {
	t.Helper()
	var f *httpkit.Fault
	if !errors.As(err, &f) || f.Status < 400 || f.Status >= 500 || f.Message == "" {
		t.Fatalf("%q: refused with %v, want a 4xx fault", body, err)
	}
}

// FuzzImageCreate: POST /v2/images, read as createImage reads it. An image
// accepted, shown (view) and sent again, is the same image.
func FuzzImageCreate(f *testing.F) {
	for _, s := range []string{
		`{"name": "img", "disk_format": "qcow2", "container_format": "bare", "visibility": "private", "min_ram": 64, "min_disk": 1, "tags": ["a", "b"], "os_distro": "cirros"}`,
		`{"id": "` + fuzzImageID + `", "name": null, "protected": true, "os_hidden": false, "visibility": "shared"}`,
		`{"id": "` + strings.ToUpper(fuzzImageID) + `", "owner": "other"}`, `{"visibility": "public"}`, `{"visibility": "community"}`,
		`{"id": "not-a-uuid"}`, `{"id": 5}`, `{"status": "active"}`, `{"size": 1}`, `{"locations": []}`, `{"owner": "demo", "os_glance_x": "y"}`,
		`{"min_ram": "lots"}`, `{"min_disk": -5}`, `{"min_ram": 4294967296}`, `{"min_ram": 1.0}`, `{"disk_format": "floppy"}`, `{"container_format": null}`,
		`{"tags": "a,b"}`, `{"tags": ["a", "a"]}`, `{"tags": [1]}`, `{"tags": ["` + strings.Repeat("t", 256) + `"]}`, `{"os_version": 22}`,
		`{"": "v"}`, `{"deleted": "x"}`, `{"name": "` + strings.Repeat("n", 256) + `"}`, `{"k": "` + strings.Repeat("v", 300) + `"}`,
		`{}`, `[]`, `"x"`, `null`, ``, `{"name"`, ` {"name": "img"} `,
	} {
		f.Add(false, s)
		f.Add(true, s)
	}
	f.Fuzz(func(t *testing.T, admin bool, body string) {
		c := fuzzCaller(admin)
		create := func(body string) (*imagedb.Image, error) {
			r := httptest.NewRequest(http.MethodPost, "/v2/images", strings.NewReader(body))
			raw, err := readJSON(httptest.NewRecorder(), r)
			if err != nil {
				return nil, err
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
				return nil, errorf(http.StatusBadRequest, "not an object")
			}
			return newImage(c, fields)
		}
		img, err := create(body)
		if err != nil {
			checkRefusal(t, body, err)
			return
		}
		if !uuidRE.MatchString(img.ID) || img.Status != imagedb.StatusQueued || (!c.Admin && img.Owner != c.ProjectID) {
			t.Fatalf("%q: accepted as %+v", body, img)
		}
		// Shown and sent again: the same image.
		v := view(img)
		again := map[string]any{}
		for k, val := range v {
			if k == "id" || slices.Contains(baseAttrs, k) {
				again[k] = val
			} else if _, ok := img.Properties[k]; ok {
				again[k] = val
			}
		}
		b, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		img2, err := create(string(b))
		if err != nil {
			t.Fatalf("%q: accepted, but shown and sent again (%s) it is refused: %v", body, b, err)
		}
		if !reflect.DeepEqual(img, img2) {
			t.Fatalf("%q: accepted as %+v, sent again as %s it is %+v", body, img, b, img2)
		}
	})
}

// escapePointer is the JSON pointer of a decoded path.
func escapePointer(path []string) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~", "~0"), "/", "~1")
	}
	return "/" + strings.Join(parts, "/")
}

// FuzzImagePatch: PATCH /v2/images/{id} in either media type. The
// operations parsed, written again in draft 10, parse the same; applied to
// an image, each is applied or refused with a 4xx.
func FuzzImagePatch(f *testing.F) {
	op := func(o, path, value string) string {
		s := `{"op": "` + o + `", "path": "` + path + `"`
		if value != "" {
			s += `, "value": ` + value
		}
		return s + `}`
	}
	for _, s := range []struct {
		draft4 bool
		body   string
	}{
		{false, `[` + op("replace", "/name", `"changed"`) + `, ` + op("add", "/new_prop", `"v"`) + `, ` + op("remove", "/os_distro", "") + `]`},
		{false, `[` + op("replace", "/tags", `["a", "b"]`) + `, ` + op("replace", "/min_ram", `64`) + `, ` + op("replace", "/visibility", `"public"`) + `]`},
		{false, `[` + op("replace", "/disk_format", `"qcow2"`) + `, ` + op("replace", "/owner", `"other"`) + `, ` + op("replace", "/protected", `true`) + `]`},
		{false, `[` + op("add", "/a~1b~0c", `"x"`) + `, ` + op("add", "/a~2b", `"x"`) + `]`}, {false, `[` + op("add", "/tags/-", `"x"`) + `]`},
		{false, `[` + op("replace", "/status", `"active"`) + `]`}, {false, `[` + op("replace", "/id", `"x"`) + `]`},
		{false, `[` + op("add", "/os_glance_x", `"y"`) + `]`}, {false, `[` + op("add", "/locations/-", `{"url": "x", "metadata": {}}`) + `]`},
		{false, `[` + op("replace", "/min_disk", `-5`) + `]`}, {false, `[` + op("add", "/os_version", `22`) + `]`},
		{false, `[` + op("replace", "/nope", `"x"`) + `, ` + op("remove", "/nope", "") + `, ` + op("remove", "/name", "") + `]`},
		{false, `[` + op("move", "/name", `"x"`) + `]`}, {false, `[` + op("replace", "/name", "") + `]`}, {false, `[` + op("replace", "name", `"x"`) + `]`},
		{false, `[` + op("add", "//a", `"x"`) + `, ` + op("add", "/a/", `"x"`) + `, ` + op("add", "/ / ", `"x"`) + `]`},
		{false, `[{"path": "/name", "value": "x"}]`}, {false, `[{"op": "add", "value": "x"}]`}, {false, `{"op": "replace"}`}, {false, `["replace"]`},
		{true, `[{"replace": "/name", "value": null}, {"add": "/new_prop", "value": "v"}, {"remove": "/os_distro"}]`},
		{true, `[{"add": "/name", "value": "x"}]`}, {true, `[{"add": "/a", "replace": "/b", "value": "x"}]`}, {true, `[{"replace": 5}]`},
		{false, `[]`}, {false, `null`}, {false, ``}, {false, `[`},
	} {
		f.Add(s.draft4, false, s.body)
		f.Add(s.draft4, true, s.body)
	}
	f.Fuzz(func(t *testing.T, draft4, admin bool, body string) {
		ct := patchV21
		if draft4 {
			ct = patchV20
		}
		parse := func(body string) ([]change, error) {
			r := httptest.NewRequest(http.MethodPatch, "/v2/images/"+fuzzImageID, strings.NewReader(body))
			r.Header.Set("Content-Type", ct)
			return parsePatch(httptest.NewRecorder(), r)
		}
		changes, err := parse(body)
		if err != nil {
			checkRefusal(t, body, err)
			return
		}
		// Written again (in the media type it came in), the same changes.
		ops := make([]map[string]any, len(changes))
		for i, ch := range changes {
			if len(ch.path) == 0 || !slices.Contains(patchOps, ch.op) {
				t.Fatalf("%q: parsed %+v", body, ch)
			}
			o := map[string]any{"op": ch.op, "path": escapePointer(ch.path)}
			if draft4 {
				o = map[string]any{ch.op: escapePointer(ch.path)}
			}
			if ch.op != "remove" {
				o["value"] = ch.value
			}
			ops[i] = o
		}
		b, err := json.Marshal(ops)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parse(string(b))
		if err != nil {
			t.Fatalf("%q: parsed, but written again (%s) it is refused: %v", body, b, err)
		}
		if len(again) != len(changes) {
			t.Fatalf("%q: %d changes, written again %d", body, len(changes), len(again))
		}
		for i := range changes {
			x, y := changes[i], again[i]
			if x.op != y.op || !slices.Equal(x.path, y.path) || x.draft != y.draft || (x.op != "remove" && !jsonEqual(x.value, y.value)) {
				t.Fatalf("%q: change %d is %+v, written again %+v", body, i, x, y)
			}
		}
		// Applied in order to a queued image, as updateImage does.
		cur := &imagedb.Image{ID: fuzzImageID, Name: "img", Status: imagedb.StatusQueued, Visibility: imagedb.Shared, Owner: "demo",
			Properties: map[string]string{"os_distro": "cirros"}, Tags: []string{}}
		img := *cur
		img.Properties = map[string]string{"os_distro": "cirros"}
		for _, ch := range changes {
			if err := applyChange(fuzzCaller(admin), cur, &img, ch); err != nil {
				checkRefusal(t, body, err)
				return
			}
		}
		if err := checkQuotas(&img); err != nil {
			checkRefusal(t, body, err)
		}
	})
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
