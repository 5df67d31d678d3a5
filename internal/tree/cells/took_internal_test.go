package cells

import (
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestTookStatesRemembersAWindowAndTwo: a state is found for its child
// only, sent after the time asked about, for at least a window and
// forgotten after two.
func TestTookStatesRemembersAWindowAndTwo(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tk := newTookStates(time.Minute)
	tk.saw("api!c1", &wire.InstanceUpdate{Instances: []wire.InstanceState{{UUID: "u1"}, {UUID: "u2"}}}, t0)
	b := &wire.BuildInstances{Instances: []wire.InstanceSpec{{UUID: "u0"}, {UUID: "u2"}}}
	other := &wire.BuildInstances{Instances: []wire.InstanceSpec{{UUID: "u3"}}}
	for _, c := range []struct {
		child string
		b     *wire.BuildInstances
		since time.Time
		want  bool
	}{
		{"api!c1", b, t0.Add(-time.Second), true},
		{"api!c1", b, t0, false}, // not after the build was queued
		{"api!c2", b, t0.Add(-time.Second), false},
		{"api!c1", other, t0.Add(-time.Second), false},
	} {
		if got := tk.sentAfter(c.child, c.b, c.since); got != c.want {
			t.Errorf("sentAfter(%s, %v, %v) = %v, want %v", c.child, uuidsOf(c.b), c.since, got, c.want)
		}
	}
	// A window later the generation turns: still remembered; after the
	// next turn, forgotten.
	tk.saw("api!c1", &wire.InstanceUpdate{Instances: []wire.InstanceState{{UUID: "u9"}}}, t0.Add(61*time.Second))
	if !tk.sentAfter("api!c1", b, t0.Add(-time.Second)) {
		t.Error("forgotten after one window, want remembered")
	}
	tk.saw("api!c1", &wire.InstanceUpdate{Instances: []wire.InstanceState{{UUID: "u9"}}}, t0.Add(122*time.Second))
	if tk.sentAfter("api!c1", b, t0.Add(-time.Second)) {
		t.Error("remembered after two windows, want forgotten")
	}
}

func uuidsOf(b *wire.BuildInstances) []string {
	var out []string
	for _, in := range b.Instances {
		out = append(out, in.UUID)
	}
	return out
}
