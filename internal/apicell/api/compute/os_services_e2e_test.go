package compute_test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
)

// TestServices: os-services across two cells: list with filters, disable
// with a reason and enable (both the 2.1 actions and the 2.53 UUID form),
// force down, and delete: a host with an instance is refused, an empty one
// goes with its hypervisor. A disabled host takes no builds.
func TestServices(t *testing.T) {
	tr := operatorTree(t)
	ctx := ctxT(t)
	list := func(mv string, opts services.ListOpts) []services.Service {
		t.Helper()
		pages, err := services.List(adminAt(tr, mv), opts).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ss, err := services.ExtractServices(pages)
		if err != nil {
			t.Fatal(err)
		}
		return ss
	}
	all := list("2.11", services.ListOpts{})
	bins := map[string]int{}
	ids := map[string]bool{}
	for _, s := range all {
		bins[s.Binary]++
		if s.State != "up" || s.Status != "enabled" || !strings.Contains(s.Host, "@") {
			t.Errorf("service %+v", s)
		}
		if n, err := strconv.ParseInt(s.ID, 10, 64); err != nil || n <= 0 || ids[s.ID] {
			t.Errorf("service id %q at 2.11 is not an integer of its own", s.ID)
		}
		ids[s.ID] = true
		if (s.Binary == "nova-compute") != (s.Zone == "nova") {
			t.Errorf("service %s zone %q", s.Binary, s.Zone)
		}
	}
	if bins["nova-compute"] != 4 || bins["nova-conductor"] != 2 || bins["nova-scheduler"] != 2 || bins["nova-network"] != 2 {
		t.Errorf("services by binary: %v", bins)
	}
	computes := list("2.11", services.ListOpts{Binary: "nova-compute"})
	if len(computes) != 4 {
		t.Fatalf("nova-compute services: %d", len(computes))
	}
	host := computes[0].Host // api!cell1@cell1-host001
	if ss := list("2.11", services.ListOpts{Host: host}); len(ss) != 1 || ss[0].Host != host {
		t.Errorf("services on %s: %+v", host, ss)
	}
	bare := host[strings.Index(host, "@")+1:]
	if ss := list("2.11", services.ListOpts{Host: bare, Binary: "nova-compute"}); len(ss) != 1 || ss[0].Host != host {
		t.Errorf("services on bare %s: %+v", bare, ss)
	}

	// 2.1 actions: disable with a reason, by the qualified host.
	r := tr.Do(t, "PUT", "/v2.1/os-services/disable-log-reason", admin,
		map[string]any{"host": host, "binary": "nova-compute", "disabled_reason": "maintenance"})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"disabled_reason":"maintenance"`) {
		t.Fatalf("disable-log-reason: %d %s", r.Status, r.Body)
	}
	if ss := list("2.11", services.ListOpts{Host: host}); ss[0].Status != "disabled" || ss[0].DisabledReason != "maintenance" {
		t.Errorf("after disable: %+v", ss[0])
	}
	hv := allHypervisors(t, adminAt(tr, "2.1"), nil)
	for _, h := range hv {
		if h.Service.Host == host && h.Status != "disabled" {
			t.Errorf("hypervisor of a disabled service: %+v", h)
		}
	}
	for _, c := range []struct {
		action string
		body   map[string]any
		status int
		msg    string
	}{
		{"disable", map[string]any{"host": host, "binary": "nova-scheduler"}, 400, "Updating a nova-scheduler service is not supported"},
		{"disable", map[string]any{"host": "api!cell1@nope", "binary": "nova-compute"}, 404, "Could not find binary nova-compute on host api!cell1@nope."},
		{"disable", map[string]any{"host": "nope", "binary": "nova-compute"}, 404, "Host 'nope' is not mapped to any cell"},
		{"disable-log-reason", map[string]any{"host": host, "binary": "nova-compute"}, 400, "Missing disabled reason field"},
		{"frobnicate", map[string]any{"host": host, "binary": "nova-compute"}, 404, "Unknown action"},
		{"disable", map[string]any{"binary": "nova-compute"}, 400, "'host' is a required property"},
		{"disable", map[string]any{"host": host, "binary": "nova-compute", "x": 1}, 400, "'x' was unexpected"},
	} {
		r := tr.Do(t, "PUT", "/v2.1/os-services/"+c.action, admin, c.body, "X-OpenStack-Nova-API-Version", "2.11")
		if r.Status != c.status || !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("PUT %s %v: %d %s, want %d %q", c.action, c.body, r.Status, r.Body, c.status, c.msg)
		}
	}

	// 2.53: by UUID.
	byUUID := list("2.53", services.ListOpts{Host: host})[0]
	up, err := services.Update(ctx, adminAt(tr, "2.53"), byUUID.ID, services.UpdateOpts{Status: services.ServiceEnabled}).Extract()
	if err != nil || up.Status != "enabled" || up.DisabledReason != "" || up.ID != byUUID.ID {
		t.Errorf("enable by uuid: %+v %v", up, err)
	}
	up, err = services.Update(ctx, adminAt(tr, "2.53"), byUUID.ID, services.UpdateOpts{ForcedDown: true}).Extract()
	if err != nil || !up.ForcedDown || up.State != "down" {
		t.Errorf("force down: %+v %v", up, err)
	}
	if r := tr.Do(t, "PUT", "/v2.1/os-services/"+byUUID.ID, admin, map[string]any{"status": "enabled", "disabled_reason": "x"},
		"X-OpenStack-Nova-API-Version", "2.53"); r.Status != 400 || !strings.Contains(string(r.Body), "Specifying 'disabled_reason' with status 'enabled' is invalid.") {
		t.Errorf("reason with enabled: %d %s", r.Status, r.Body)
	}
	if r := tr.Do(t, "PUT", "/v2.1/os-services/"+byUUID.ID, admin, map[string]any{}, "X-OpenStack-Nova-API-Version", "2.53"); r.Status != 400 ||
		!strings.Contains(string(r.Body), "No updates were requested.") {
		t.Errorf("empty update: %d %s", r.Status, r.Body)
	}
	if r := tr.Do(t, "PUT", "/v2.1/os-services/disable", admin, map[string]any{"host": host, "binary": "nova-compute"},
		"X-OpenStack-Nova-API-Version", "2.53"); r.Status != 400 || !strings.Contains(string(r.Body), "Invalid uuid disable") {
		t.Errorf("2.1 action at 2.53: %d %s", r.Status, r.Body)
	}
	// Back up, for the builds below.
	if _, err := services.Update(ctx, adminAt(tr, "2.53"), byUUID.ID, services.UpdateOpts{Status: services.ServiceEnabled}).Extract(); err != nil {
		t.Fatal(err)
	}
	r = tr.Do(t, "PUT", "/v2.1/os-services/"+byUUID.ID, admin, map[string]any{"forced_down": false}, "X-OpenStack-Nova-API-Version", "2.53")
	if r.Status != http.StatusOK {
		t.Fatalf("force up: %d %s", r.Status, r.Body)
	}

	// Disable every host of cell1 but one; builds land there or in cell2.
	sc := tr.Compute(demo)
	var target string
	for _, s := range computes {
		if strings.HasPrefix(s.Host, "api!cell1@") && target == "" {
			target = s.Host
			continue
		}
		if _, err := services.Update(ctx, adminAt(tr, "2.53"), uuidOf(t, list("2.53", services.ListOpts{Host: s.Host})), services.UpdateOpts{Status: services.ServiceDisabled}).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	id := create(t, tr, demo, map[string]any{"name": "pinned", "flavorRef": "1", "imageRef": imageID})
	s := waitStatus(t, sc, id, "ACTIVE")
	adminView := waitStatus(t, tr.Compute(admin), s.ID, "ACTIVE")
	if want := target[strings.Index(target, "@")+1:]; adminView.Host != want {
		t.Errorf("the build went to %q, want the only enabled host %q", adminView.Host, want)
	}

	// Delete: the host with the server is refused; an empty one goes, with
	// its hypervisor.
	withServer := uuidOf(t, list("2.53", services.ListOpts{Host: target}))
	if err := services.Delete(ctx, adminAt(tr, "2.53"), withServer).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) ||
		!strings.Contains(err.Error(), "Unable to delete compute service that is hosting instances.") {
		t.Errorf("delete a host with an instance: %v", err)
	}
	var empty services.Service
	for _, s := range list("2.53", services.ListOpts{Binary: "nova-compute"}) {
		if s.Host != target {
			empty = s
			break
		}
	}
	if err := services.Delete(ctx, adminAt(tr, "2.53"), empty.ID).ExtractErr(); err != nil {
		t.Fatalf("delete an empty compute service: %v", err)
	}
	if n := len(list("2.53", services.ListOpts{Binary: "nova-compute"})); n != 3 {
		t.Errorf("%d compute services after a delete, want 3", n)
	}
	if n := len(allHypervisors(t, adminAt(tr, "2.53"), nil)); n != 3 {
		t.Errorf("%d hypervisors after a delete, want 3", n)
	}
	if err := services.Delete(ctx, adminAt(tr, "2.53"), empty.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("delete it again: %v, want 404", err)
	}
	for _, c := range []struct {
		mv, id string
		status int
		msg    string
	}{
		{"2.1", "7000", 404, "Service 7000 not found."},
		{"2.1", "nope", 400, "id must be an integer"},
		{"2.1", "api!cell1@x", 400, "id must be an integer"},
		{"2.1", "api!cell9@1", 404, "Service api!cell9@1 not found."},
		{"2.53", "nope", 400, "Invalid uuid nope"},
	} {
		r := tr.Do(t, "DELETE", "/v2.1/os-services/"+c.id, admin, nil, "X-OpenStack-Nova-API-Version", c.mv)
		if r.Status != c.status || !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("DELETE %s at %s: %d %s, want %d %q", c.id, c.mv, r.Status, r.Body, c.status, c.msg)
		}
	}
	// Below 2.53 a service is deleted by the integer os-services lists.
	i := slices.IndexFunc(all, func(s services.Service) bool {
		return s.Binary == "nova-conductor" && strings.HasPrefix(s.Host, "api!cell2@")
	})
	if i < 0 {
		t.Fatalf("no conductor of api!cell2 in %+v", all)
	}
	if r := tr.Do(t, "DELETE", "/v2.1/os-services/"+all[i].ID, admin, nil); r.Status != http.StatusNoContent {
		t.Errorf("DELETE %s (api!cell2's conductor) at 2.1: %d %s", all[i].ID, r.Status, r.Body)
	}
	if slices.ContainsFunc(list("2.11", services.ListOpts{}), func(s services.Service) bool { return s.ID == all[i].ID }) {
		t.Errorf("service %s still listed after its delete", all[i].ID)
	}
	if r := tr.Do(t, "DELETE", "/v2.1/os-services/"+all[i].ID, admin, nil); r.Status != http.StatusNotFound {
		t.Errorf("DELETE %s again: %d %s, want 404", all[i].ID, r.Status, r.Body)
	}
	if !slices.ContainsFunc(all, func(s services.Service) bool { return s.Binary == "nova-conductor" && s.Zone == "internal" }) {
		t.Errorf("nova-conductor is not in zone internal: %+v", all)
	}
}

func uuidOf(t *testing.T, ss []services.Service) string {
	t.Helper()
	if len(ss) != 1 {
		t.Fatalf("want one service, got %+v", ss)
	}
	return ss[0].ID
}
