package integration

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"

	"github.com/cellcloud/cellcloud/internal/apicell/aggsync"
	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// aggOperator is an operator changing host aggregates while the faults
// run: hosts join and leave an aggregate, whose metadata changes too, so
// that the cells' snapshots are sent, lost, duplicated and reordered
// while cells, brokers and links die. The zone aggregate is made before
// the load (its hosts have no instances yet) and left alone after.
type aggOperator struct {
	c       *gophercloud.ServiceClient
	rng     *rand.Rand
	hosts   []string
	plain   int
	changes atomic.Int64
}

// setup makes the aggregates: fault-zone (zone fz1) with zoneHosts, and
// fault-plain, empty.
func (o *aggOperator) setup(ctx context.Context, zoneHosts []string) error {
	z, err := aggregates.Create(ctx, o.c, aggregates.CreateOpts{Name: "fault-zone", AvailabilityZone: "fz1"}).Extract()
	if err != nil {
		return err
	}
	for _, h := range zoneHosts {
		if _, err := aggregates.AddHost(ctx, o.c, z.ID, aggregates.AddHostOpts{Host: h}).Extract(); err != nil {
			return fmt.Errorf("add %s to the zone: %w", h, err)
		}
	}
	p, err := aggregates.Create(ctx, o.c, aggregates.CreateOpts{Name: "fault-plain"}).Extract()
	if err != nil {
		return err
	}
	o.plain = p.ID
	return nil
}

// run changes fault-plain every pace until ctx ends: a random host joins
// it (or leaves it, when it has it already), or its metadata changes.
// Answers are not judged: the API cell is killed now and then.
func (o *aggOperator) run(ctx context.Context, pace time.Duration) {
	tick := time.NewTicker(pace)
	defer tick.Stop()
	gen := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if o.rng.Float64() < 0.6 {
			h := o.hosts[o.rng.IntN(len(o.hosts))]
			_, err := aggregates.AddHost(rctx, o.c, o.plain, aggregates.AddHostOpts{Host: h}).Extract()
			if gophercloud.ResponseCodeIs(err, 409) {
				_, err = aggregates.RemoveHost(rctx, o.c, o.plain, aggregates.RemoveHostOpts{Host: h}).Extract()
			}
			if err == nil {
				o.changes.Add(1)
			}
		} else {
			gen++
			md := map[string]any{"gen": fmt.Sprint(gen)}
			if gen%3 == 0 {
				md["cpu_allocation_ratio"] = fmt.Sprint(8 + gen%5)
			}
			if _, err := aggregates.SetMetadata(rctx, o.c, o.plain, aggregates.SetMetadataOpts{Metadata: md}).Extract(); err == nil {
				o.changes.Add(1)
			}
		}
		cancel()
	}
}

// aggConverged says whether every cell holds the aggregates of its hosts
// as the root has them (names, metadata, the cell's hosts), and each of
// its compute nodes is in the zone they give it.
func aggConverged(apiDB *db.DB, cellDBs map[string]*db.DB) (bool, string) {
	ctx := context.Background()
	p := &aggsync.Pusher{DefaultZone: "nova"}
	for _, c := range slices.Sorted(maps.Keys(cellDBs)) {
		want, err := p.Snapshot(ctx, apiDB, c, 0)
		if err != nil {
			return false, err.Error()
		}
		got, err := celldb.HeldAggregates(ctx, cellDBs[c])
		if err != nil {
			return false, fmt.Sprintf("%s: %v", c, err)
		}
		norm := func(as []wire.HostAggregate) []wire.HostAggregate {
			out := make([]wire.HostAggregate, 0, len(as))
			for _, a := range as {
				a.Hosts = slices.Sorted(slices.Values(a.Hosts))
				if len(a.Metadata) == 0 {
					a.Metadata = nil
				}
				out = append(out, a)
			}
			return out
		}
		if w, g := norm(want.Aggregates), norm(got); !reflect.DeepEqual(w, g) {
			return false, fmt.Sprintf("%s holds aggregates %+v, the root's are %+v", c, g, w)
		}
		byHost := map[string][]map[string]string{}
		for _, a := range want.Aggregates {
			for _, h := range a.Hosts {
				byHost[h] = append(byHost[h], a.Metadata)
			}
		}
		nodes, err := celldb.ListNodes(ctx, cellDBs[c])
		if err != nil {
			return false, err.Error()
		}
		for _, n := range nodes {
			if z := celldb.NodeAggregatesOf(byHost[n.Host], "nova").Zone; n.AvailabilityZone != z {
				return false, fmt.Sprintf("%s: host %s is in zone %q, its aggregates say %q", c, n.Host, n.AvailabilityZone, z)
			}
		}
	}
	return true, ""
}
