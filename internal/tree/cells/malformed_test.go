package cells_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// badEnvelopes are messages a cell must survive: garbage, envelopes that do
// not check, and well-formed ones that lead nowhere.
func badEnvelopes(t *testing.T) [][]byte {
	t.Helper()
	raw := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	valid := func(f func(e *wire.Envelope)) []byte {
		e, err := cells.NewTargeted(api, cell1, methodEcho, "req-bad", nil)
		if err != nil {
			t.Fatal(err)
		}
		e.WantResponse = true
		e.Deadline = time.Now().Add(5 * time.Second)
		f(e)
		return raw(e)
	}
	return [][]byte{
		nil,
		[]byte("not json"),
		[]byte("{"),
		[]byte("null"),
		[]byte("[]"),
		[]byte("{}"),
		[]byte(`{"id":"x"}`),
		[]byte(`{"id":"x","method":"m","version":"1.0","kind":"targeted","target":"api!cell1","sender":"api"}`),
		[]byte(`{"id":"x","method":"m","version":"1.0","kind":"targeted","target":"api!cell1","sender":"api","route":"api"}`),
		[]byte(strings.Repeat(" ", wire.MaxSize+1)),
		valid(func(e *wire.Envelope) { e.Kind = "sideways" }),
		valid(func(e *wire.Envelope) { e.Version = "one" }),
		valid(func(e *wire.Envelope) { e.Route = []string{"api", "bad path"} }),
		valid(func(e *wire.Envelope) { e.Sender = "" }),
		valid(func(e *wire.Envelope) { e.Kind = wire.Broadcast; e.Direction = "sideways"; e.HopLimit = 1 }),
		valid(func(e *wire.Envelope) { e.Kind = wire.Broadcast; e.Direction = wire.Down; e.HopLimit = -1 }),
		// Well-formed, but for nowhere or for nobody.
		valid(func(e *wire.Envelope) { e.Target = "other!x"; e.Sender = "other"; e.Route = []string{"other"} }),
		valid(func(e *wire.Envelope) { e.Kind = wire.Response; e.InReplyTo = "nobody-asked" }),
		valid(func(e *wire.Envelope) { e.Method = "no_such_method" }),
		valid(func(e *wire.Envelope) { e.Deadline = time.Now().Add(-time.Hour) }),
		valid(func(e *wire.Envelope) { e.Payload = json.RawMessage(`{"n":"not a number"}`); e.Method = methodNote }),
	}
}

func TestMalformedMessagesDoNotStopACell(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1)
	c1 := tr.cell(cell1)
	nc, err := nats.Connect(c1.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	for i, b := range badEnvelopes(t) {
		if err := nc.Publish("cellcloud.api!cell1.call", b); err != nil {
			t.Fatalf("message %d: publish call: %v", i, err)
		}
		if _, err := js.Publish(ctx, "cellcloud.api!cell1.in", b); err != nil {
			t.Fatalf("message %d: publish to inbox: %v", i, err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// Every bad durable message is dropped, not retried for ever.
	stream, err := js.Stream(ctx, "CELLIN_api_cell1")
	if err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, wait, "the inbox to drop every bad message", func() (bool, string) {
		info, err := stream.Info(ctx)
		if err != nil {
			return false, fmt.Sprintf("stream info: %v", err)
		}
		return info.State.Msgs == 0, fmt.Sprintf("%d messages in the stream", info.State.Msgs)
	})
	if got := tr.logs.find("dropping a malformed call", map[string]string{"cell": cell1}); len(got) == 0 {
		t.Error("no malformed call was logged")
	}
	if got := tr.logs.find("dropping a malformed message", map[string]string{"cell": cell1}); len(got) == 0 {
		t.Error("no malformed durable message was logged")
	}
	if got := tr.appliedAt(cell1); len(got) != 0 {
		t.Errorf("bad messages were applied: %+v", got)
	}

	// The cell still answers calls and applies durable messages.
	var e echo
	if err := tr.cell(api).service().Call(ctx, cell1, methodEcho, "req-after", nil, &e); err != nil || e.Cell != cell1 {
		t.Fatalf("call after bad messages: %+v, %v", e, err)
	}
	tr.cell(api).send(cell1, 42)
	testpoll.Eventually(t, wait, "a durable message after bad ones", func() (bool, string) {
		got := tr.appliedAt(cell1)
		return len(got) == 1, fmt.Sprintf("applied %+v", got)
	})
}
