package compute_test

import (
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// interfaceTags lists a server's interfaces at microversion mv and returns
// each one's tag by port, as the answer has it (absent: the key is not
// there).
func interfaceTags(t *testing.T, tr *testtree.Tree, token, id, mv string) map[string]any {
	t.Helper()
	r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-interface", token, nil, atVersion(mv)...)
	if r.Status != http.StatusOK {
		t.Fatalf("list interfaces at %s: %s", mv, r)
	}
	var out struct {
		Attachments []map[string]any `json:"interfaceAttachments"`
	}
	r.JSON(t, &out)
	tags := map[string]any{}
	for _, a := range out.Attachments {
		if tag, ok := a["tag"]; ok {
			tags[a["port_id"].(string)] = tag
		} else {
			tags[a["port_id"].(string)] = "absent"
		}
	}
	return tags
}

// TestInterfaceTags (2.70): the tags given to a boot's networks (a port
// passed in, a port made for a fixed IP, a port the cell makes) and to an
// attach are kept, and os-interface shows them from 2.70 (null for an
// interface without one); at 2.69 there is no tag.
func TestInterfaceTags(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	nc, sc := networking(tr, demo), tr.Compute(demo)
	private := privateNetwork(t, nc)
	mine, err := ports.Create(ctx, nc, ports.CreateOpts{NetworkID: private, Name: "mine"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	const fixedIP = "10.0.7.7"
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
		"name": "tagged", "flavorRef": "1", "imageRef": imageID,
		"networks": []map[string]any{
			{"port": mine.ID, "tag": "passed-in"},
			{"uuid": private, "fixed_ip": fixedIP, "tag": "fixed"},
			{"uuid": private, "tag": "made-by-cell"},
			{"uuid": private},
		},
	}}, atVersion("2.70")...)
	if r.Status != http.StatusAccepted {
		t.Fatalf("boot with tagged networks: %s", r)
	}
	var created struct {
		Server struct {
			ID string `json:"id"`
		} `json:"server"`
	}
	r.JSON(t, &created)
	id := created.Server.ID
	waitStatus(t, sc, id, "ACTIVE")

	// The ports of the server, by what they are.
	var fixedPort string
	var cellPorts []string
	for _, p := range portsOf(t, nc, ports.ListOpts{DeviceID: id}) {
		switch {
		case p.ID == mine.ID:
		case len(p.FixedIPs) == 1 && p.FixedIPs[0].IPAddress == fixedIP:
			fixedPort = p.ID
		default:
			cellPorts = append(cellPorts, p.ID)
		}
	}
	if fixedPort == "" || len(cellPorts) != 2 {
		t.Fatalf("ports of the server: fixed %q, made by the cell %v", fixedPort, cellPorts)
	}
	tags := interfaceTags(t, tr, demo, id, "2.70")
	if tags[mine.ID] != "passed-in" || tags[fixedPort] != "fixed" {
		t.Errorf("tags at 2.70 = %v; want passed-in on %s, fixed on %s", tags, mine.ID, fixedPort)
	}
	// One of the cell's two ports is tagged, the other's tag is null.
	if a, b := tags[cellPorts[0]], tags[cellPorts[1]]; !(a == "made-by-cell" && b == nil) && !(a == nil && b == "made-by-cell") {
		t.Errorf("tags of the cell's ports = %v, %v; want made-by-cell and null", a, b)
	}
	for port, tag := range interfaceTags(t, tr, demo, id, "2.69") {
		if tag != "absent" {
			t.Errorf("port %s has a tag at 2.69: %v", port, tag)
		}
	}

	// An attach with a tag (2.49) answers it from 2.70, and show has it.
	attach := func(mv string, body map[string]any) map[string]any {
		t.Helper()
		r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/os-interface", demo, map[string]any{"interfaceAttachment": body}, atVersion(mv)...)
		if r.Status != http.StatusOK {
			t.Fatalf("attach %v at %s: %s", body, mv, r)
		}
		var out struct {
			Attachment map[string]any `json:"interfaceAttachment"`
		}
		r.JSON(t, &out)
		return out.Attachment
	}
	att := attach("2.70", map[string]any{"net_id": private, "tag": "attached"})
	if att["tag"] != "attached" {
		t.Errorf("attach at 2.70 answers tag %v", att["tag"])
	}
	port := att["port_id"].(string)
	show := func(mv string) map[string]any {
		t.Helper()
		r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-interface/"+port, demo, nil, atVersion(mv)...)
		if r.Status != http.StatusOK {
			t.Fatalf("show interface at %s: %s", mv, r)
		}
		var out struct {
			Attachment map[string]any `json:"interfaceAttachment"`
		}
		r.JSON(t, &out)
		return out.Attachment
	}
	if tag, ok := show("2.70")["tag"]; !ok || tag != "attached" {
		t.Errorf("show at 2.70: tag %v (%v)", tag, ok)
	}
	if tag, ok := show("2.69")["tag"]; ok {
		t.Errorf("show at 2.69 has a tag: %v", tag)
	}
	// At 2.69 the tag is taken and kept, but not answered.
	att = attach("2.69", map[string]any{"net_id": private, "tag": "quiet"})
	if _, ok := att["tag"]; ok {
		t.Errorf("attach at 2.69 answers a tag: %v", att)
	}
	if tags := interfaceTags(t, tr, demo, id, "2.70"); tags[att["port_id"].(string)] != "quiet" || tags[port] != "attached" {
		t.Errorf("tags after the attaches = %v", tags)
	}
	// Untagged: null.
	att = attach("2.70", map[string]any{"net_id": private})
	if tag, ok := att["tag"]; !ok || tag != nil {
		t.Errorf("untagged attach at 2.70: tag %v (%v); want null", tag, ok)
	}

	// The caller's port, detached and attached again without a tag, has
	// none.
	if r := tr.Do(t, http.MethodDelete, "/v2.1/servers/"+id+"/os-interface/"+mine.ID, demo, nil); r.Status != http.StatusAccepted {
		t.Fatalf("detach: %s", r)
	}
	cellReports(t, tr, id, mine.ID, false)
	att = attach("2.70", map[string]any{"port_id": mine.ID})
	if att["tag"] != nil {
		t.Errorf("the port attached again has tag %v", att["tag"])
	}
}
