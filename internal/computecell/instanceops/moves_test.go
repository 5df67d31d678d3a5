package instanceops

import (
	"maps"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestMoveRequest: a move asks the host scheduler with the instance's
// zone and project, the extra specs of the flavor it moves to and the
// properties of the image it was built from, never for a forced host.
func TestMoveRequest(t *testing.T) {
	old := wire.Flavor{ID: "1", VCPUs: 1, RAMMB: 512, ExtraSpecs: map[string]string{"ssd": "false"}}
	bigger := wire.Flavor{ID: "2", VCPUs: 2, RAMMB: 2048, RootGB: 20, ExtraSpecs: map[string]string{"ssd": "true"}}
	in := &celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: "u1", ProjectID: "p1", AvailabilityZone: "az1"}, Flavor: old,
		Build: celldb.BuildContext{ImageProps: map[string]string{"os_distro": "debian"}, ForcedHost: "h1", ForcedNode: "h1"}}
	for _, f := range []wire.Flavor{old, bigger} {
		req := moveRequest(in, f)
		if req.Flavor != f.Need() || req.NumInstances != 1 || req.AvailabilityZone != "az1" || req.ProjectID != "p1" ||
			!maps.Equal(req.ExtraSpecs, f.ExtraSpecs) || !maps.Equal(req.ImageProperties, in.Build.ImageProps) ||
			req.ForcedHost != "" || req.ForcedNode != "" {
			t.Errorf("moveRequest(flavor %s) = %+v", f.ID, req)
		}
	}
}
