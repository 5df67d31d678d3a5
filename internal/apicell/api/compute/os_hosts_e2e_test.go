package compute_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestHosts: os-hosts lists every cell's enabled services with qualified
// host names; show gives a host's resources with its instances' use by
// project; update disables, enables and puts a host in maintenance (seen
// in os-services); the power actions answer as the fake driver does. Bad
// names are refused clearly.
func TestHosts(t *testing.T) {
	tr := operatorTree(t)
	id := create(t, tr, demo, map[string]any{"name": "h", "flavorRef": "2", "imageRef": imageID})
	srv := waitStatus(t, tr.Compute(admin), id, "ACTIVE")

	var hosts struct {
		Hosts []struct {
			HostName string `json:"host_name"`
			Service  string `json:"service"`
			Zone     string `json:"zone"`
		} `json:"hosts"`
	}
	r := tr.Do(t, "GET", "/v2.1/os-hosts", admin, nil)
	r.JSON(t, &hosts)
	computes := 0
	var host string
	for _, h := range hosts.Hosts {
		if h.Service == "compute" {
			computes++
			if h.Zone != "nova" || !strings.HasPrefix(h.HostName, "api!cell") {
				t.Errorf("host row %+v", h)
			}
			if strings.HasSuffix(h.HostName, "@"+srv.Host) {
				host = h.HostName
			}
		}
	}
	if computes != 4 || host == "" {
		t.Fatalf("os-hosts: %s (want 4 compute rows, one on %s)", r.Body, srv.Host)
	}

	var show struct {
		Host []struct {
			Resource struct {
				Host     string `json:"host"`
				Project  string `json:"project"`
				CPU      int64  `json:"cpu"`
				MemoryMB int64  `json:"memory_mb"`
				DiskGB   int64  `json:"disk_gb"`
			} `json:"resource"`
		} `json:"host"`
	}
	r = tr.Do(t, "GET", "/v2.1/os-hosts/"+host, admin, nil)
	r.JSON(t, &show)
	if len(show.Host) != 4 || show.Host[0].Resource.Project != "(total)" || show.Host[0].Resource.CPU != 16 ||
		show.Host[1].Resource.Project != "(used_now)" || show.Host[2].Resource.Project != "(used_max)" ||
		show.Host[3].Resource.Project != srv.TenantID || show.Host[3].Resource.CPU != 1 || show.Host[3].Resource.DiskGB != 20 {
		t.Errorf("os-hosts show %s: %s", host, r.Body)
	}

	r = tr.Do(t, "PUT", "/v2.1/os-hosts/"+host, admin, map[string]any{"status": "disable", "maintenance_mode": "Enable"})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"status":"disabled"`) || !strings.Contains(string(r.Body), `"maintenance_mode":"on_maintenance"`) {
		t.Errorf("update host: %d %s", r.Status, r.Body)
	}
	r = tr.Do(t, "GET", "/v2.1/os-services?host="+host, admin, nil)
	if !strings.Contains(string(r.Body), `"status":"disabled"`) || !strings.Contains(string(r.Body), `"disabled_reason":"maintenance"`) {
		t.Errorf("service of a host in maintenance: %s", r.Body)
	}
	r = tr.Do(t, "PUT", "/v2.1/os-hosts/"+host, admin, map[string]any{"maintenance_mode": "disable"})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"maintenance_mode":"off_maintenance"`) {
		t.Errorf("out of maintenance: %d %s", r.Status, r.Body)
	}
	r = tr.Do(t, "GET", "/v2.1/os-hosts/"+host+"/reboot", admin, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"power_action":"reboot"`) {
		t.Errorf("reboot: %d %s", r.Status, r.Body)
	}

	for _, c := range []struct {
		method, path, mv string
		body             any
		status           int
		msg              string
	}{
		{"GET", "/v2.1/os-hosts/nope", "2.1", nil, 404, "Host 'nope' is not mapped to any cell"},
		{"GET", "/v2.1/os-hosts/api!cell1@nope", "2.1", nil, 404, "Compute host api!cell1@nope could not be found."},
		{"PUT", "/v2.1/os-hosts/" + host, "2.1", map[string]any{}, 400, "{} is not valid under any of the given schemas"},
		{"PUT", "/v2.1/os-hosts/" + host, "2.1", map[string]any{"status": "off"}, 400, "is not one of ['enable'"},
		{"PUT", "/v2.1/os-hosts/" + host, "2.1", map[string]any{"status": "enable", "x": 1}, 400, "'x' was unexpected"},
		{"GET", "/v2.1/os-hosts", "2.43", nil, 404, "The resource could not be found."},
		{"GET", "/v2.1/os-hosts", "2.1", nil, 200, ""},
	} {
		r := tr.Do(t, c.method, c.path, admin, c.body, "X-OpenStack-Nova-API-Version", c.mv)
		if r.Status != c.status || !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("%s %s at %s: %d %s, want %d %q", c.method, c.path, c.mv, r.Status, r.Body, c.status, c.msg)
		}
	}
	if r := tr.Do(t, "GET", "/v2.1/os-hosts", demo, nil); r.Status != http.StatusForbidden {
		t.Errorf("a member lists hosts: %d", r.Status)
	}
}
