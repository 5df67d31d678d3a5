package cells

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Faults makes the relay misbehave on purpose, the way a network and a
// broker can: it publishes messages twice, holds batches back and sends a
// batch out of order. It is for fault testing only (test/integration's
// fault suite), never for production: each fault costs messages and time.
// The zero value injects nothing; a nil *Faults in Config costs nothing.
type Faults struct {
	// Duplicate is the probability that a relayed message is published a
	// second time, under another broker message id so that the broker's
	// dedupe window keeps both: the receiver's applied ids must stop the
	// second from taking effect.
	Duplicate float64
	// Reorder is the probability that a batch is published in a shuffled
	// order.
	Reorder float64
	// Delay is the probability that a batch is held back, for a random
	// time up to MaxDelay, before it is published.
	Delay    float64
	MaxDelay time.Duration
	// Seed seeds the random choices; 0 takes a random seed.
	Seed uint64
}

func (f *Faults) validate() error {
	for name, p := range map[string]float64{"duplicate": f.Duplicate, "reorder": f.Reorder, "delay": f.Delay} {
		if p < 0 || p > 1 {
			return fmt.Errorf("cells: fault injection %s probability %v is not between 0 and 1", name, p)
		}
	}
	if f.MaxDelay < 0 {
		return fmt.Errorf("cells: fault injection max_delay %v is negative", f.MaxDelay)
	}
	return nil
}

// faultInjector applies Faults to the batches of the relay.
type faultInjector struct {
	f   Faults
	mu  sync.Mutex
	rng *rand.Rand
}

func newFaultInjector(f *Faults) *faultInjector {
	if f == nil {
		return nil
	}
	seed := f.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &faultInjector{f: *f, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// batch returns the batch as it is to be published to nb: perhaps
// shuffled, perhaps with some messages twice (the copies carry no outbox
// sequence numbers, so their acknowledgement clears nothing), after
// perhaps waiting. Each fault is logged, for the fault suite to count.
func (s *Service) injectFaults(ctx context.Context, nb string, msgs []outgoing) []outgoing {
	fi := s.faults
	fi.mu.Lock()
	var wait time.Duration
	if fi.f.MaxDelay > 0 && fi.rng.Float64() < fi.f.Delay {
		wait = time.Duration(fi.rng.Int64N(int64(fi.f.MaxDelay))) + 1
	}
	reorder := len(msgs) > 1 && fi.rng.Float64() < fi.f.Reorder
	if reorder {
		fi.rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	}
	out := msgs
	dups := 0
	for _, o := range msgs {
		if fi.rng.Float64() < fi.f.Duplicate {
			out = append(out, outgoing{msgID: o.msgID + ".dup", body: o.body})
			dups++
		}
	}
	fi.mu.Unlock()
	if wait > 0 {
		s.log.Warn("fault injection: delaying a batch", "fault", "delay", "neighbour", nb, "messages", len(msgs), "delay", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if reorder {
		s.log.Warn("fault injection: reordering a batch", "fault", "reorder", "neighbour", nb, "messages", len(msgs))
	}
	if dups > 0 {
		s.log.Warn("fault injection: duplicating messages", "fault", "duplicate", "neighbour", nb, "messages", dups)
	}
	return out
}
