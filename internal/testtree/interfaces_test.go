package testtree_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// An interface attached while the server's cell is down is answered at
// once (the API cell made the port and knows its address), and
// attach_interface waits in the API cell's outbox until the cell returns,
// which then records the address and reports it, once.
func TestAttachInterfaceWhileTheCellIsDown(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2})
	ctx := context.Background()
	netID, _ := userNetwork(t, tr.API.DB, "attach", "172.21.0.0/24")
	uuids := bootOn(t, tr, netID, "attach", tr.Cells[1].Config().Cell, 1)
	id := uuids[0]
	activeWithAddresses(t, tr, uuids)

	// Back on the same broker address, where the API cell's link finds it.
	cfg := testtree.StopCell(t, tr.Cells[1])

	// The server is project p's; an admin attaches.
	r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/os-interface", "admin:p", map[string]any{"interfaceAttachment": map[string]any{"net_id": netID}})
	if r.Status != http.StatusOK {
		t.Fatalf("attach while the cell is down: %s", r)
	}
	var att struct {
		InterfaceAttachment struct {
			PortID   string `json:"port_id"`
			FixedIPs []struct {
				IPAddress string `json:"ip_address"`
			} `json:"fixed_ips"`
		} `json:"interfaceAttachment"`
	}
	r.JSON(t, &att)
	port := att.InterfaceAttachment.PortID
	if port == "" || len(att.InterfaceAttachment.FixedIPs) != 1 {
		t.Fatalf("attachment %s", r.Body)
	}

	back := testtree.RestartCell(t, cfg)
	testpoll.Eventually(t, 30*time.Second, "the returned cell to report the attached address", func() (bool, string) {
		in, err := apidb.Get(ctx, tr.API.DB, id)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range in.Addresses {
			if a.PortID == port && a.Addr == att.InterfaceAttachment.FixedIPs[0].IPAddress {
				return true, ""
			}
		}
		return false, fmt.Sprintf("addresses %+v", in.Addresses)
	})
	var n int
	if err := back.DB.QueryRow(ctx, `SELECT COUNT(*) FROM instance_actions WHERE instance_uuid = ? AND action = 'attach_interface'`, id).Scan(&n); err != nil || n != 1 {
		t.Fatalf("attach_interface recorded %d times (%v); want once", n, err)
	}
}
