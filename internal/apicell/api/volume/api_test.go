package volume_test

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
)

// TestCatalogDiscovery finds the endpoint as gophercloud's
// NewBlockStorageV3 does, in a token's catalog whose URL holds the
// token's project.
func TestCatalogDiscovery(t *testing.T) {
	e := newEnv(t)
	c := e.client("demo", "pw-demo", "demo")
	if want := e.srv.URL + "/volume/v3/" + e.demoProject + "/"; c.Endpoint != want {
		t.Fatalf("endpoint %q, want %q", c.Endpoint, want)
	}
	// The endpoint listing shows the template, as Keystone does.
	eps := e.do("GET", "/identity/v3/endpoints", e.admin).json(t, 200)["endpoints"].([]any)
	var templated int
	for _, ep := range eps {
		if ep.(map[string]any)["url"] == e.srv.URL+"/volume/v3/$(project_id)s" {
			templated++
		}
	}
	if templated != 6 {
		t.Errorf("%d endpoints with the template, want 6 (two types, three interfaces): %v", templated, eps)
	}
	var out map[string]any
	if _, err := c.Get(context.Background(), c.ServiceURL("limits"), &out, &gophercloud.RequestOpts{}); err != nil {
		t.Fatalf("limits at the discovered endpoint: %v", err)
	}
}

func TestGate(t *testing.T) {
	e := newEnv(t)
	demo := "/volume/v3/" + e.demoProject
	for _, tc := range []struct {
		name, path, token string
		headers           []string
		status            int
		fault, message    string
		// version is the OpenStack-API-Version answered ("" for none).
		version string
	}{
		{name: "no token", path: demo + "/types", status: 401, fault: "unauthorized",
			message: "The request you have made requires authentication."},
		{name: "bad token", path: demo + "/types", token: "nope", status: 401, fault: "unauthorized",
			message: "The request you have made requires authentication."},
		{name: "another project's path", path: "/volume/v3/" + e.adminProject + "/types", token: e.demo, status: 400, fault: "badRequest",
			message: "Malformed request url", version: "volume 3.0"},
		{name: "an admin in another project's path", path: demo + "/limits", token: e.admin, status: 400, fault: "badRequest",
			message: "Malformed request url", version: "volume 3.0"},
		{name: "version out of range", path: demo + "/types", token: e.demo, headers: []string{"OpenStack-API-Version", "volume 3.61"},
			status: 406, fault: "computeFault", message: "Version 3.61 is not supported by the API. Minimum is 3.0 and maximum is 3.60."},
		{name: "bad version", path: demo + "/types", token: e.demo, headers: []string{"OpenStack-API-Version", "volume 3"},
			status: 400, fault: "badRequest", message: "API Version String 3 is of invalid format. Must be of format MajorNum.MinorNum."},
		{name: "no such route", path: demo + "/volumes", token: e.demo, status: 404, fault: "itemNotFound",
			message: "The resource could not be found."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", tc.path, tc.token, tc.headers...)
			if msg := r.fault(t, tc.status, tc.fault); msg != tc.message {
				t.Errorf("message %q, want %q", msg, tc.message)
			}
			if got := r.header.Get("OpenStack-API-Version"); got != tc.version {
				t.Errorf("OpenStack-API-Version %q, want %q", got, tc.version)
			}
			if r.header.Get("X-Openstack-Request-Id") == "" || r.header.Get("X-Compute-Request-Id") == "" {
				t.Errorf("request id headers missing: %v", r.header)
			}
		})
	}
	// A served request answers the version it got, and Vary.
	for _, tc := range []struct{ ask, want string }{{"", "volume 3.0"}, {"volume latest", "volume 3.60"}, {"volume 3.27", "volume 3.27"}} {
		var hdr []string
		if tc.ask != "" {
			hdr = []string{"OpenStack-API-Version", tc.ask}
		}
		r := e.do("GET", demo+"/types", e.demo, hdr...)
		r.json(t, 200)
		if r.header.Get("OpenStack-API-Version") != tc.want || r.header.Get("Vary") != "OpenStack-API-Version" {
			t.Errorf("asked %q: headers %v", tc.ask, r.header)
		}
	}
}
