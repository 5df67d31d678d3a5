package cells

import (
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// A routing cell that places a build on a child keeps the build until
// the child proves alive long enough after it (sweepSent), and places it
// elsewhere if the child dies first. The child may have taken the build
// by then: built its instances, even made them ACTIVE, and sent their
// states up through this cell. The root tells from its copy
// (Placer.Taken); a routing cell keeps no copy, so it remembers here the
// instances whose states each child sent up through it, and when: a
// build of which one instance's state came from the child after the
// build was queued for it was taken (a cell sends an instance's state
// only once it holds the instance), and is not placed again. The relay
// reads every instance update it sends anyway (coalesce), so this costs
// a map entry per instance state, at routing cells only. It is kept in
// memory, in two generations of tookWindow each: a routing cell that
// restarts, or a child dead for longer, falls back to placing such a
// build again, fenced, as before.

// tookCap bounds the instances one generation remembers: past it the
// generation turns early (the oldest are forgotten).
const tookCap = 1 << 20

// tookWindow is how long an instance's state is remembered at least:
// longer than a kept build can wait to be placed elsewhere once the
// child sent it up (it is placed elsewhere build_accept_timeout after its
// send at the earliest, when its cell is down — cells.down_after, or at
// once when it cannot receive — and looked at every quarter of the
// timeout; a child alive that long has it pruned).
func tookWindow(c Config) time.Duration {
	return 2*c.BuildAcceptTimeout + c.DownAfter + c.ReportInterval + time.Minute
}

type tookStates struct {
	mu       sync.Mutex
	window   time.Duration
	turnAt   time.Time
	cur, old map[tookKey]time.Time
}

type tookKey struct{ child, uuid string }

func newTookStates(window time.Duration) *tookStates {
	return &tookStates{window: window, cur: map[tookKey]time.Time{}, old: map[tookKey]time.Time{}}
}

// saw records that child sent up the states of u at time at.
func (t *tookStates) saw(child string, u *wire.InstanceUpdate, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at.After(t.turnAt) || len(t.cur) >= tookCap {
		t.old, t.cur = t.cur, make(map[tookKey]time.Time, len(t.cur))
		t.turnAt = at.Add(t.window)
	}
	for _, st := range u.Instances {
		t.cur[tookKey{child, st.UUID}] = at
	}
}

// sentAfter reports whether child sent up the state of one of b's
// instances after since.
func (t *tookStates) sentAfter(child string, b *wire.BuildInstances, since time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, in := range b.Instances {
		for _, m := range []map[tookKey]time.Time{t.cur, t.old} {
			if at, ok := m[tookKey{child, in.UUID}]; ok && at.After(since) {
				return true
			}
		}
	}
	return false
}

// noteStates is coalesce's look at an instance update the relay sends:
// one going to this cell's parent from a cell below one of its children
// is remembered under that child.
func (s *Service) noteStates(to string) func(*wire.Envelope, *wire.InstanceUpdate) {
	parent := cellpath.Parent(s.path)
	if parent == "" || to != parent {
		return nil
	}
	return func(env *wire.Envelope, u *wire.InstanceUpdate) {
		child := cellpath.NextHop(s.path, env.Sender)
		if child == "" || child == parent {
			return // this cell's own, or not from below
		}
		s.took.saw(child, u, time.Now()) // the outbox's clock (created_at)
	}
}
