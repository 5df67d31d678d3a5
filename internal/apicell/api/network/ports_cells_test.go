package network_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// TestBoundPortChangeGoesToTheServersCell: an update of a bound port that
// changes its groups, port security or address pairs sends port_update to
// its server's cell in the update's transaction, with the port's new
// revision (a late copy of an older update carries a lower one, which the
// cell ignores); an update of its name sends nothing, nor does a change of
// a port bound to no server.
func TestBoundPortChangeGoesToTheServersCell(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var port, free struct {
			Port struct {
				ID             string `json:"id"`
				RevisionNumber int64  `json:"revision_number"`
			} `json:"port"`
		}
		e.send(t, http.MethodPost, "/networking/v2.0/ports", demo, map[string]any{"port": map[string]any{"network_id": e.private}}).json(t, &port)
		e.send(t, http.MethodPost, "/networking/v2.0/ports", demo, map[string]any{"port": map[string]any{"network_id": e.private}}).json(t, &free)
		var group struct {
			SecurityGroup struct {
				ID string `json:"id"`
			} `json:"security_group"`
		}
		e.send(t, http.MethodPost, "/networking/v2.0/security-groups", demo, map[string]any{"security_group": map[string]any{"name": "web"}}).json(t, &group)
		e.boot(vmDemo, "demo", "active", "host-1")
		if err := e.d.InTx(ctx, func(tx *db.Tx) error { return netdb.BindPort(ctx, tx, port.Port.ID, vmDemo, "", t0) }); err != nil {
			t.Fatal(err)
		}
		web := group.SecurityGroup.ID
		put := func(id string, body map[string]any) {
			t.Helper()
			if r := e.send(t, http.MethodPut, "/networking/v2.0/ports/"+id, demo, map[string]any{"port": body}); r.status != http.StatusOK {
				t.Fatalf("update %s: %d %s", id, r.status, r.body)
			}
		}
		put(port.Port.ID, map[string]any{"security_groups": []string{web}, "allowed_address_pairs": []map[string]string{{"ip_address": "10.7.0.0/24"}}})
		ups := e.cells.takePortUpdates()
		p, err := netdb.GetPort(ctx, e.d, port.Port.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ups) != 1 || ups[0].to != "api!cell1" {
			t.Fatalf("port updates %+v, want one to api!cell1", ups)
		}
		u := ups[0].u
		if u.UUID != vmDemo || u.PortID != p.ID || u.Revision != p.RevisionNumber || !slices.Equal(u.SecurityGroups, []string{web}) || !u.PortSecurity ||
			len(u.AllowedAddressPairs) != 1 || u.AllowedAddressPairs[0].IPAddress != "10.7.0.0/24" {
			t.Errorf("port_update %+v, want the port's groups [%s], pairs and revision %d", u, web, p.RevisionNumber)
		}
		put(port.Port.ID, map[string]any{"security_groups": []string{}, "allowed_address_pairs": []any{}, "port_security_enabled": false})
		if ups := e.cells.takePortUpdates(); len(ups) != 1 || ups[0].u.PortSecurity || len(ups[0].u.SecurityGroups) != 0 || ups[0].u.Revision != u.Revision+1 {
			t.Errorf("port security off sent %+v, want one port_update without groups at revision %d", ups, u.Revision+1)
		}
		put(port.Port.ID, map[string]any{"name": "renamed"})
		put(free.Port.ID, map[string]any{"security_groups": []string{web}})
		if ups := e.cells.takePortUpdates(); len(ups) != 0 {
			t.Errorf("a rename and an unbound port's change sent %+v", ups)
		}
	})
}
