package cells

import (
	"encoding/json"
	"strconv"

	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// outgoing is one envelope the relay publishes: an outbox entry as it was
// queued, or several instance updates merged into one.
type outgoing struct {
	msgID string
	body  []byte
	seqs  []int64
}

// Bounds of a merged instance update: the receiver applies it in one
// transaction, holding its write lock meanwhile.
const (
	mergeMaxStates = 128
	mergeMaxBytes  = 128 << 10
)

// coalesce merges runs of consecutive instance_update entries that travel
// alike (same sender, target, version and heal flag) into one envelope
// carrying every state of the run, in order. Applying the merged envelope
// has the effect of applying its parts one after another, and the API cell
// applies a state only when its version is newer, so a merged envelope that
// is relayed again after a failure, grouped differently, does no harm.
// Other entries go out unchanged, in their place. seen, when not nil, is
// shown each instance update as decoded.
func coalesce(entries []outbox.Entry, seen func(*wire.Envelope, *wire.InstanceUpdate)) []outgoing {
	out := make([]outgoing, 0, len(entries))
	var run *merging
	flush := func() {
		if run == nil {
			return
		}
		out = append(out, run.finish())
		run = nil
	}
	for _, e := range entries {
		if e.Method != wire.MethodInstanceUpdate {
			flush()
			out = append(out, single(e))
			continue
		}
		env, u, err := decodeUpdate(e.Body)
		if err != nil {
			// Sent as it is; the receiver reports what is wrong with it.
			flush()
			out = append(out, single(e))
			continue
		}
		if seen != nil {
			seen(env, u)
		}
		if run != nil && !run.accepts(env, u, len(e.Body)) {
			flush()
		}
		if run == nil {
			run = &merging{first: e, env: env, heal: u.Heal}
		}
		run.add(e, env, u)
	}
	flush()
	return out
}

func single(e outbox.Entry) outgoing {
	return outgoing{msgID: e.MsgID, body: e.Body, seqs: []int64{e.Seq}}
}

func decodeUpdate(b []byte) (*wire.Envelope, *wire.InstanceUpdate, error) {
	env, err := wire.Decode(b)
	if err != nil {
		return nil, nil, err
	}
	var u wire.InstanceUpdate
	if err := json.Unmarshal(env.Payload, &u); err != nil {
		return nil, nil, err
	}
	return env, &u, nil
}

// merging is a run of instance updates being merged.
type merging struct {
	first  outbox.Entry
	env    *wire.Envelope
	heal   bool
	states []wire.InstanceState
	seqs   []int64
	bytes  int
}

func (m *merging) accepts(env *wire.Envelope, u *wire.InstanceUpdate, size int) bool {
	return env.Sender == m.env.Sender && env.Target == m.env.Target && env.Kind == m.env.Kind &&
		env.Direction == m.env.Direction && env.Version == m.env.Version && u.Heal == m.heal &&
		len(m.states)+len(u.Instances) <= mergeMaxStates && m.bytes+size <= mergeMaxBytes
}

func (m *merging) add(e outbox.Entry, env *wire.Envelope, u *wire.InstanceUpdate) {
	for _, st := range u.Instances {
		if st.RequestID == "" {
			st.RequestID = env.RequestID
		}
		m.states = append(m.states, st)
	}
	m.seqs = append(m.seqs, e.Seq)
	m.bytes += len(e.Body)
}

// finish returns the run as one envelope, or its only entry unchanged.
func (m *merging) finish() outgoing {
	if len(m.seqs) == 1 {
		return single(m.first)
	}
	env := *m.env
	// The id is the first part's, marked with the count: the broker's
	// de-duplication then catches a republish of the same run.
	env.ID = m.env.ID + "+" + strconv.Itoa(len(m.seqs)-1)
	payload, err := json.Marshal(&wire.InstanceUpdate{Instances: m.states, Heal: m.heal})
	if err == nil {
		env.Payload = payload
		if b, err := json.Marshal(&env); err == nil && len(b) <= wire.MaxSize {
			return outgoing{msgID: env.ID, body: b, seqs: m.seqs}
		}
	}
	// Not expected: the parts fit, so their sum (bounded above) does too.
	// Send only the first; the rest stay queued for the next round.
	return single(m.first)
}
