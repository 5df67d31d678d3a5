package scenario_test

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/scenario"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// The scenarios run in process here, and as separate processes in
// test/integration.

func TestBootActDeleteInProcess(t *testing.T) {
	t.Parallel()
	scenario.BootActDelete(t, testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2}))
}

func TestCirrosID(t *testing.T) {
	if scenario.CirrosID != image.CirrosID {
		t.Errorf("scenario.CirrosID %s, the seeded image is %s", scenario.CirrosID, image.CirrosID)
	}
}
