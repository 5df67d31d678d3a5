package compute

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzCreateBody: no body makes the create's checks panic, at any
// microversion; a body they accept has a name, a flavor and an image.
func FuzzCreateBody(f *testing.F) {
	const img = "5f5c1b7e-6c2a-4e43-9a57-0d8c1c0c1c0c"
	for _, s := range []string{
		`{"server": {"name": "a", "flavorRef": "1", "imageRef": "` + img + `"}}`,
		`{"server": {"name": "a\u0000", "flavorRef": 1, "imageRef": "` + img + `", "metadata": {"k": "v"}}}`,
		`{"server": {"name": "a", "flavorRef": "1", "imageRef": "` + img + `", "networks": [{"uuid": "` + img + `", "fixed_ip": "10.0.0.1", "tag": "x"}]}}`,
		`{"server": {"name": "a", "flavorRef": "1", "imageRef": "` + img + `", "networks": [{"port": null}, {"port": "` + img + `"}]}}`,
		`{"server": {"name": "a", "flavorRef": "1", "imageRef": "` + img + `", "block_device_mapping_v2": [{"source_type": "image", "destination_type": "local", "boot_index": "0", "uuid": "` + img + `"}]}}`,
		`{"server": {"name": "a", "flavorRef": "1", "imageRef": "` + img + `", "block_device_mapping_v2": [{"boot_index": 1e400, "volume_size": "99999999999999999999999", "no_device": true}]}}`,
		`{"server": {"name": "a", "flavorRef": "1", "imageRef": "` + img + `", "block_device_mapping": [{"volume_id": 5}], "block_device_mapping_v2": [null]}}`,
	} {
		for _, v := range []int{1, 32, 37, 42, 67, 69} {
			f.Add(s, v)
		}
	}
	f.Fuzz(func(t *testing.T, body string, minor int) {
		ctx := context.WithValue(context.Background(), keyVersion, Version{2, minor})
		r := httptest.NewRequest(http.MethodPost, "/v2.1/servers", strings.NewReader(body)).WithContext(ctx)
		req, err := readCreate(httptest.NewRecorder(), r)
		if err == nil && (req.name == "" || req.flavorRef == "" || req.imageRef == "") {
			t.Errorf("accepted %q without a name, flavor or image: %+v", body, req)
		}
	})
}

// FuzzCreateImageBody: no createImage value makes its checks panic; one
// they accept has a name.
func FuzzCreateImageBody(f *testing.F) {
	for _, s := range []string{`{"name": "snap"}`, `{"name": "snap", "metadata": {"k": "v"}}`, `{"name": 1}`, `null`, `{"metadata": {"a/b": 2}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		if !json.Valid([]byte(arg)) {
			return
		}
		p, err := readCreateImage(json.RawMessage(arg))
		if err == nil && p.name == "" {
			t.Errorf("accepted %q without a name", arg)
		}
	})
}
