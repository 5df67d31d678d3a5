package compute_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestExtendedServerAttributes: the OS-EXT-SRV-ATTR attributes as Nova's
// view shows them: host, instance_name and hypervisor_hostname from 2.1,
// reservation_id, launch_index, hostname, kernel_id, ramdisk_id,
// root_device_name (a device, /dev/vda, once on a host) and user_data
// from 2.3; to whom the os-extended-server-attributes rule allows (admins
// by default, here also the project's members through a policy file); and
// neither in the update nor, before 2.75, in the rebuild answer.
func TestExtendedServerAttributes(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "policy.yaml")
	rule := "\"os_compute_api:os-extended-server-attributes\": \"rule:context_is_admin or project_id:%(project_id)s\"\n"
	if err := os.WriteFile(file, []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := testtree.Start(t, testtree.Options{PolicyFile: file})
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
		"name": "Web Server_01.prod", "flavorRef": "1", "imageRef": imageID, "user_data": "aGVsbG8=",
		"min_count": 2, "return_reservation_id": true}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("create: %s", r)
	}
	var created struct {
		ReservationID string `json:"reservation_id"`
	}
	r.JSON(t, &created)
	var ids []string
	for _, s := range listAll(t, tr, demo, "?reservation_id="+created.ReservationID) {
		ids = append(ids, s["id"].(string))
	}
	if len(ids) != 2 {
		t.Fatalf("reservation %s has %d servers", created.ReservationID, len(ids))
	}
	for _, id := range ids {
		waitIdle(t, tr, id, "ACTIVE")
	}

	show := func(token, id, version string) map[string]any {
		t.Helper()
		var out struct {
			Server map[string]any `json:"server"`
		}
		r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, token, nil, atVersion(version)...)
		if r.Status != http.StatusOK {
			t.Fatalf("show %s: %s", id, r)
		}
		r.JSON(t, &out)
		return out.Server
	}
	ext := func(v map[string]any) []string {
		var keys []string
		for _, k := range sortedKeys(v) {
			if strings.HasPrefix(k, "OS-EXT-SRV-ATTR:") {
				keys = append(keys, strings.TrimPrefix(k, "OS-EXT-SRV-ATTR:"))
			}
		}
		return keys
	}
	at21 := "[host hypervisor_hostname instance_name]"
	at23 := "[host hostname hypervisor_hostname instance_name kernel_id launch_index ramdisk_id reservation_id root_device_name user_data]"
	for _, token := range []string{admin, demo} {
		if got := ext(show(token, ids[0], "2.1")); fmtList(got) != at21 {
			t.Errorf("%s at 2.1: %v, want %s", token, got, at21)
		}
		if got := ext(show(token, ids[0], "2.3")); fmtList(got) != at23 {
			t.Errorf("%s at 2.3: %v, want %s", token, got, at23)
		}
	}

	names := map[string]string{}
	for i, id := range ids {
		v := show(admin, id, "2.3")
		names[v["name"].(string)] = v["OS-EXT-SRV-ATTR:hostname"].(string)
		if v["OS-EXT-SRV-ATTR:reservation_id"] != created.ReservationID || v["OS-EXT-SRV-ATTR:kernel_id"] != "" ||
			v["OS-EXT-SRV-ATTR:ramdisk_id"] != "" || v["OS-EXT-SRV-ATTR:root_device_name"] != "/dev/vda" ||
			v["OS-EXT-SRV-ATTR:user_data"] != "aGVsbG8=" || v["OS-EXT-SRV-ATTR:host"] == nil {
			t.Errorf("server %d at 2.3: %v", i, v)
		}
	}
	// Nova's sanitize_hostname of "Web Server_01.prod-N".
	if names["Web Server_01.prod-1"] != "web-server-01-prod-1" || names["Web Server_01.prod-2"] != "web-server-01-prod-2" {
		t.Errorf("hostnames %v", names)
	}
	// The detailed list shows the same, and the launch indexes 0 and 1.
	indexes := map[float64]bool{}
	var detail struct {
		Servers []map[string]any `json:"servers"`
	}
	tr.Do(t, http.MethodGet, "/v2.1/servers/detail?reservation_id="+created.ReservationID, demo, nil, atVersion("2.3")...).JSON(t, &detail)
	for _, s := range detail.Servers {
		if fmtList(ext(s)) != at23 {
			t.Errorf("detail at 2.3: %v", ext(s))
		}
		if n, ok := s["OS-EXT-SRV-ATTR:launch_index"].(float64); ok {
			indexes[n] = true
		}
	}
	if len(indexes) != 2 || !indexes[0] || !indexes[1] {
		t.Errorf("launch indexes %v, want 0 and 1", indexes)
	}

	// gophercloud dereferences root_device_name.
	sc := tr.Compute(admin)
	sc.Microversion = "2.3"
	s, err := servers.Get(context.Background(), sc, ids[0]).Extract()
	if err != nil || s.RootDeviceName == nil || *s.RootDeviceName != "/dev/vda" || s.Hostname == nil || s.LaunchIndex == nil {
		t.Errorf("gophercloud: %v %+v", err, s)
	}

	// Neither the update nor (before 2.75) the rebuild answer has them;
	// the rebuild's has key_name from 2.54 and user_data from 2.57.
	r = tr.Do(t, http.MethodPut, "/v2.1/servers/"+ids[0], admin, map[string]any{"server": map[string]any{"name": "Web Server_01.prod-1"}}, atVersion("2.3")...)
	if got := ext(r.Map(t)["server"].(map[string]any)); len(got) != 0 {
		t.Errorf("update at 2.3 shows %v", got)
	}
	for _, c := range []struct {
		version string
		keyName bool
		user    bool
	}{{"2.3", false, false}, {"2.54", true, false}, {"2.57", true, true}} {
		r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+ids[0]+"/action", admin, map[string]any{"rebuild": map[string]any{"imageRef": imageID}}, atVersion(c.version)...)
		if r.Status != http.StatusAccepted {
			t.Fatalf("rebuild at %s: %s", c.version, r)
		}
		v := r.Map(t)["server"].(map[string]any)
		_, hasKey := v["key_name"]
		ud, hasUser := v["user_data"]
		if got := ext(v); len(got) != 0 || hasKey != c.keyName || hasUser != c.user || (hasUser && ud != "aGVsbG8=") {
			t.Errorf("rebuild at %s: extended %v, key_name %v, user_data %v", c.version, got, hasKey, ud)
		}
		waitIdle(t, tr, ids[0], "ACTIVE")
	}
}

func fmtList(l []string) string { return "[" + strings.Join(l, " ") + "]" }

// TestExtendedServerAttributesDefaultPolicy: by default only admins see
// the extended attributes; a server no host ever took (no valid host) has
// no root device name, as in Nova, whose compute host names it.
func TestExtendedServerAttributesDefaultPolicy(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	id := create(t, tr, demo, map[string]any{"name": "---", "flavorRef": "1", "imageRef": imageID})
	waitIdle(t, tr, id, "ACTIVE")
	get := func(token, id string) map[string]any {
		t.Helper()
		var out struct {
			Server map[string]any `json:"server"`
		}
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, token, nil, atVersion("2.3")...).JSON(t, &out)
		return out.Server
	}
	for k := range get(demo, id) {
		if strings.HasPrefix(k, "OS-EXT-SRV-ATTR:") {
			t.Errorf("a member sees %s", k)
		}
	}
	v := get(admin, id)
	// Nothing of the name is left: Nova's "Server-{uuid}".
	if v["OS-EXT-SRV-ATTR:hostname"] != "Server-"+id || v["OS-EXT-SRV-ATTR:root_device_name"] != "/dev/vda" || v["OS-EXT-SRV-ATTR:user_data"] != nil {
		t.Errorf("admin at 2.3: %v", v)
	}

	r := tr.Do(t, http.MethodPost, "/v2.1/flavors", admin, map[string]any{"flavor": map[string]any{"name": "huge", "id": "huge", "ram": 1 << 30, "vcpus": 1, "disk": 1}})
	if r.Status != http.StatusOK {
		t.Fatalf("flavor: %s", r)
	}
	big := create(t, tr, admin, map[string]any{"name": "nowhere", "flavorRef": "huge", "imageRef": imageID})
	waitIdle(t, tr, big, "ERROR")
	if v := get(admin, big); v["OS-EXT-SRV-ATTR:root_device_name"] != nil || v["OS-EXT-SRV-ATTR:host"] != nil {
		t.Errorf("a server no host took: root_device_name %v, host %v", v["OS-EXT-SRV-ATTR:root_device_name"], v["OS-EXT-SRV-ATTR:host"])
	}
}
