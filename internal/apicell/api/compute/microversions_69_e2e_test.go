package compute_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestMicroversions61To69 checks what 2.61 to 2.69 change: the events of
// an instance action carry hostId, and host for admins (2.62); image
// certificates are checked as Nova's schema does, refused since no driver
// here verifies signatures, and shown as null (2.63); changes-before
// bounds server and instance action lists (2.66); the microversion is
// served up to 2.69.
func TestMicroversions61To69(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 2})
	at := func(v string) []string { return []string{"X-OpenStack-Nova-API-Version", v} }
	id := create(t, tr, demo, map[string]any{"name": "mv69", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, tr.Compute(demo), id, "ACTIVE")

	r := tr.Do(t, "GET", "/v2.1/", demo, nil)
	if !strings.Contains(string(r.Body), `"version":"2.69"`) {
		t.Errorf("the version document does not say 2.69: %s", r.Body)
	}

	// 2.62: hostId on every event, host for admins.
	var acts struct {
		Actions []struct {
			RequestID string `json:"request_id"`
		} `json:"instanceActions"`
	}
	tr.Do(t, "GET", "/v2.1/servers/"+id+"/os-instance-actions", demo, nil).JSON(t, &acts)
	if len(acts.Actions) == 0 {
		t.Fatal("no instance action for the create")
	}
	rid := acts.Actions[0].RequestID
	event := func(token, ver string) map[string]any {
		var out struct {
			Action struct {
				Events []map[string]any `json:"events"`
			} `json:"instanceAction"`
		}
		tr.Do(t, "GET", "/v2.1/servers/"+id+"/os-instance-actions/"+rid, token, nil, at(ver)...).JSON(t, &out)
		if len(out.Action.Events) == 0 {
			t.Fatalf("no events at %s", ver)
		}
		return out.Action.Events[len(out.Action.Events)-1]
	}
	if e := event(demo, "2.61"); e["hostId"] != nil {
		t.Errorf("hostId before 2.62: %v", e)
	}
	if e := event(demo, "2.62"); len(e["hostId"].(string)) != 56 || e["host"] != nil {
		t.Errorf("a member's event at 2.62: %v", e)
	}
	if e := event(admin, "2.62"); !strings.HasPrefix(e["host"].(string), "cell1-host") {
		t.Errorf("an admin's event at 2.62: %v", e)
	}

	// 2.63: trusted_image_certificates.
	server := func(certs any) map[string]any {
		return map[string]any{"server": map[string]any{"name": "c", "flavorRef": "1", "imageRef": imageID, "networks": "auto",
			"trusted_image_certificates": certs}}
	}
	for _, c := range []struct {
		ver   string
		certs any
		msg   string
	}{
		{"2.62", []string{"a"}, "('trusted_image_certificates' was unexpected)"},
		{"2.63", []string{}, "Value: []. [] should be non-empty"},
		{"2.63", []string{"a", "a"}, "['a', 'a'] has non-unique elements"},
		{"2.63", "x", "'x' is not of type 'array', 'null'"},
		{"2.63", []any{1}, "Invalid input for field/attribute 0. Value: 1. 1 is not of type 'string'"},
		{"2.63", []string{"cert-1"}, "Image certificate validation is not supported"},
	} {
		r := tr.Do(t, "POST", "/v2.1/servers", demo, server(c.certs), at(c.ver)...)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("create with certificates %v at %s: %d %s, want 400 %q", c.certs, c.ver, r.Status, r.Body, c.msg)
		}
	}
	if r := tr.Do(t, "POST", "/v2.1/servers", demo, server(nil), at("2.63")...); r.Status != http.StatusAccepted {
		t.Errorf("create with null certificates: %d %s", r.Status, r.Body)
	}
	var shown struct {
		Server map[string]any `json:"server"`
	}
	tr.Do(t, "GET", "/v2.1/servers/"+id, demo, nil, at("2.63")...).JSON(t, &shown)
	if v, ok := shown.Server["trusted_image_certificates"]; !ok || v != nil {
		t.Errorf("trusted_image_certificates at 2.63: %v (present %v)", v, ok)
	}

	// 2.66: changes-before.
	past := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	future := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	count := func(query, ver string) int {
		var out struct {
			Servers []any `json:"servers"`
		}
		r := tr.Do(t, "GET", "/v2.1/servers?"+query, demo, nil, at(ver)...)
		if r.Status != http.StatusOK {
			t.Fatalf("GET /servers?%s at %s: %d %s", query, ver, r.Status, r.Body)
		}
		r.JSON(t, &out)
		return len(out.Servers)
	}
	if n := count("changes-before="+past, "2.66"); n != 0 {
		t.Errorf("servers changed before an hour ago: %d", n)
	}
	if n := count("changes-before="+future, "2.66"); n < 1 {
		t.Errorf("servers changed before an hour from now: %d", n)
	}
	if n := count("changes-before="+past, "2.65"); n < 1 {
		t.Errorf("changes-before is ignored before 2.66, yet %d servers", n)
	}
	for _, c := range []struct{ path, msg string }{
		{"/v2.1/servers?changes-since=" + future + "&changes-before=" + past, "The value of changes-since must be less than or equal to changes-before."},
		{"/v2.1/servers?changes-before=foo", "'foo' is not a 'date-time'"},
		{"/v2.1/servers/" + id + "/os-instance-actions?changes-before=foo", "'foo' is not a 'date-time'"},
		{"/v2.1/servers/" + id + "/os-instance-actions?changes-since=" + future + "&changes-before=" + past, "must be less than or equal to changes-before"},
	} {
		r := tr.Do(t, "GET", c.path, demo, nil, at("2.66")...)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("GET %s: %d %s, want 400 %q", c.path, r.Status, r.Body, c.msg)
		}
	}
	r = tr.Do(t, "GET", "/v2.1/servers/"+id+"/os-instance-actions?changes-before="+future, demo, nil, at("2.65")...)
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "('changes-before' was unexpected)") {
		t.Errorf("changes-before on instance actions at 2.65: %d %s", r.Status, r.Body)
	}
	var listed struct {
		Actions []any `json:"instanceActions"`
	}
	tr.Do(t, "GET", "/v2.1/servers/"+id+"/os-instance-actions?changes-before="+past, demo, nil, at("2.66")...).JSON(t, &listed)
	if len(listed.Actions) != 0 {
		t.Errorf("instance actions changed before an hour ago: %v", listed.Actions)
	}
}
