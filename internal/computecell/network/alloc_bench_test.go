package network_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// BenchmarkAllocate is one allocation of the default network on SQLite,
// 32 at a time per core (so that the group commit shares the commits as
// under load), the blocks (of 256) leased two at a time when the cell runs
// out, as the root would, their leases counted in.
func BenchmarkAllocate(b *testing.B) {
	d := dbtest.Open(b, benchEngine())
	ctx := context.Background()
	s, _ := serviceWith(b, d, network.Config{})
	all := network.SubnetBlocks("private", "sub-1", "10.0.0.0/12").Blocks
	var mu sync.Mutex
	granted := 0
	grant := func(seen int) {
		mu.Lock()
		defer mu.Unlock()
		if granted != seen || granted >= len(all) {
			return // another did
		}
		m := wire.BlocksLeased{NetworkName: "private", Blocks: all[granted : granted+2]}
		if err := network.Grant(ctx, d, m); err != nil {
			b.Error(err)
		}
		granted += 2
	}
	grant(0)
	var next atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := uuidN(int(next.Add(1)))
			for {
				mu.Lock()
				seen := granted
				mu.Unlock()
				_, err := s.Allocate(ctx, u, nil)
				if errors.Is(err, wire.ErrAddressesPending) {
					grant(seen)
					continue
				}
				if err != nil {
					b.Error(err)
					return
				}
				break
			}
		}
	})
}

// benchEngine is sqlite, or postgres when CELLCLOUD_BENCH_ENGINE says so.
func benchEngine() string {
	if e := os.Getenv("CELLCLOUD_BENCH_ENGINE"); e != "" {
		return e
	}
	return "sqlite"
}
