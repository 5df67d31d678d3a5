package compute

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// TestCreateDestinationSchema: host and hypervisor_hostname as Nova's
// create_v274 schema reads them (parameter_types.fqdn), a host also
// named PATH@HOST.
func TestCreateDestinationSchema(t *testing.T) {
	for _, c := range []struct {
		host, node string // raw JSON, "" for absent
		wantHost   string
		wantNode   string
		err        string
	}{
		{},
		{host: `"h1"`, wantHost: "h1"},
		{node: `"n-1.example_x"`, wantNode: "n-1.example_x"},
		{host: `"api!cell1@h1"`, node: `"h1"`, wantHost: "api!cell1@h1", wantNode: "h1"},
		{host: `""`, err: "Invalid input for field/attribute host. Value: . '' should be non-empty"},
		{node: `"bad host"`, err: "Invalid input for field/attribute hypervisor_hostname. Value: bad host. 'bad host' does not match '^[a-zA-Z0-9-._]*$'"},
		{host: `7`, err: "Invalid input for field/attribute host. Value: 7. 7 is not of type 'string'"},
		{host: `null`, err: "Invalid input for field/attribute host. Value: None. None is not of type 'string'"},
		{node: `"` + strings.Repeat("a", 256) + `"`, err: "is too long"},
	} {
		b := &createBody{Host: json.RawMessage(c.host), HypervisorHostname: json.RawMessage(c.node)}
		var out createRequest
		err := createDestination(Version{2, 74}, b, &out)
		if c.err != "" {
			var f *httpkit.Fault
			if !errors.As(err, &f) || f.Status != http.StatusBadRequest || !strings.Contains(f.Message, c.err) {
				t.Errorf("host %s node %s: %v, want 400 %q", c.host, c.node, err, c.err)
			}
			continue
		}
		if err != nil || out.requestedHost != c.wantHost || out.requestedNode != c.wantNode {
			t.Errorf("host %s node %s: %q %q %v, want %q %q", c.host, c.node, out.requestedHost, out.requestedNode, err, c.wantHost, c.wantNode)
		}
	}
}
