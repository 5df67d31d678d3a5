package cells

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func updateEntry(t *testing.T, seq int64, sender, rid string, heal bool, uuids ...string) outbox.Entry {
	t.Helper()
	u := wire.InstanceUpdate{Heal: heal}
	for i, id := range uuids {
		u.Instances = append(u.Instances, wire.InstanceState{UUID: id, Cell: sender, Version: int64(i + 1), VMState: "active"})
	}
	env, err := NewTargeted(sender, "api", wire.MethodInstanceUpdate, rid, &u)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return outbox.Entry{Seq: seq, MsgID: env.ID, Method: wire.MethodInstanceUpdate, Body: b}
}

func TestCoalesceMergesRunsOfInstanceUpdates(t *testing.T) {
	other := outbox.Entry{Seq: 3, MsgID: "other", Method: wire.MethodBuildFailed, Body: []byte(`{"not":"decoded"}`)}
	entries := []outbox.Entry{
		updateEntry(t, 1, "api!cell1", "req-1", false, "a"),
		updateEntry(t, 2, "api!cell1", "req-2", false, "b", "c"),
		other, // breaks the run: order with other methods is kept
		updateEntry(t, 4, "api!cell1", "req-4", false, "d"),
		updateEntry(t, 5, "api!cell1", "req-5", true, "e"), // a heal resend goes on its own
		updateEntry(t, 6, "api!cell1!x", "req-6", true, "f"),
	}
	out := coalesce(entries, nil)
	var seqs [][]int64
	for _, o := range out {
		seqs = append(seqs, o.seqs)
	}
	want := [][]int64{{1, 2}, {3}, {4}, {5}, {6}}
	if !slices.EqualFunc(seqs, want, slices.Equal) {
		t.Fatalf("coalesced into %v, want %v", seqs, want)
	}
	for i := 1; i < len(out); i++ {
		if e := entries[i+1]; out[i].msgID != e.MsgID || string(out[i].body) != string(e.Body) {
			t.Errorf("entry %d was changed; only runs of two or more are merged", e.Seq)
		}
	}

	env, err := wire.Decode(out[0].body)
	if err != nil {
		t.Fatalf("merged envelope: %v", err)
	}
	if env.ID != entries[0].MsgID+"+1" || out[0].msgID != env.ID {
		t.Errorf("merged id %q (published as %q), want the first part's id with +1", env.ID, out[0].msgID)
	}
	if env.Method != wire.MethodInstanceUpdate || env.Sender != "api!cell1" || env.Target != "api" || env.RequestID != "req-1" {
		t.Errorf("merged envelope %+v does not travel as its parts did", env)
	}
	var u wire.InstanceUpdate
	if err := json.Unmarshal(env.Payload, &u); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range u.Instances {
		got = append(got, st.UUID+"/"+st.RequestID)
	}
	if w := []string{"a/req-1", "b/req-2", "c/req-2"}; !slices.Equal(got, w) {
		t.Errorf("merged states %v, want %v in order, each with its request id", got, w)
	}
}

func TestCoalesceBoundsAMergedEnvelope(t *testing.T) {
	var entries []outbox.Entry
	for i := range 3 * mergeMaxStates / 2 {
		entries = append(entries, updateEntry(t, int64(i+1), "api!cell1", "r", false, strings.Repeat("u", 8)))
	}
	out := coalesce(entries, nil)
	if len(out) != 2 || len(out[0].seqs) != mergeMaxStates || len(out[1].seqs) != mergeMaxStates/2 {
		t.Fatalf("%d updates went out as %d envelopes; want at most %d states in each", len(entries), len(out), mergeMaxStates)
	}
	for _, o := range out {
		if len(o.body) > wire.MaxSize {
			t.Errorf("merged envelope of %d bytes is over the limit", len(o.body))
		}
	}
}
