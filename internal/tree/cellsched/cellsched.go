// Package cellsched is the cell scheduler: given the candidate cells (a cell's
// children, and the cell itself when it has hosts) and what their last
// capacity reports said, it picks where a build goes.
//
// It is pure logic: it imports no database, broker or HTTP code. The cells
// service builds the candidates from its cells table and hands the decision on.
package cellsched

import (
	"errors"
	"time"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

// ErrNoValidCell is returned when no candidate passes the filters.
var ErrNoValidCell = errors.New("no valid cell was found")

// Candidate is one cell the scheduler may choose.
type Candidate struct {
	// Path is the cell's full path, e.g. "api!cell1".
	Path string
	// Self is true for the scheduling cell's own hosts.
	Self bool
	// Report is the cell's last capacity report (its subtree's sum).
	Report capacity.Report
	// LastSeen is when the report arrived; zero for Self.
	LastSeen time.Time
	// WeightOffset and WeightScale come from the cells table: the operator's
	// knobs to prefer or avoid a cell.
	WeightOffset float64
	WeightScale  float64
}

// Request is one build to place: NumInstances of Flavor.
type Request struct {
	Flavor       capacity.Flavor
	NumInstances int
	// AvailabilityZone, when set, must be one of the cell's zones, and the
	// room that counts is that zone's (capacity.Report.FitsIn).
	AvailabilityZone string
	// ImageProperties that constrain placement, e.g. "hypervisor_type": "fake".
	ImageProperties map[string]string
	// ExtraSpecs are the flavor's extra specs (the aggregate instance
	// extra specs filter).
	ExtraSpecs map[string]string
	// ProjectID is the project the instances are built for (the aggregate
	// multi-tenancy isolation filter).
	ProjectID string
	// TargetCell is an admin's scheduler hint: the path of the cell (or of
	// a descendant of the candidate) the build must go to. Empty means none.
	TargetCell string
	// SameCell and DifferentCell are cell paths resolved from the
	// same_cell / different_cell hints (the cells holding the named instances).
	SameCell      []string
	DifferentCell []string
	// Tried are cells that already failed this build.
	Tried []string
	// Now is the scheduling time (injected, for the mute-child weigher).
	Now time.Time
}

// Filter decides whether a candidate can take the request.
type Filter interface {
	Passes(req *Request, c *Candidate) bool
}

// Weigher scores a candidate; higher is better. Scores from different
// weighers are normalised to [0,1] across candidates before the weigher's
// multiplier is applied, except where a weigher says otherwise.
type Weigher interface {
	Weigh(req *Request, c *Candidate) float64
}
