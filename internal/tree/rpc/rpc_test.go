package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/rpc"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

var quiet = slog.New(slog.DiscardHandler)

// conns starts an embedded broker and returns a server and a client
// connection to it.
func conns(t *testing.T) (server, client *nats.Conn) {
	t.Helper()
	b, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: "api!cell1", Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("broker: %v", err)
	}
	t.Cleanup(b.Shutdown)
	connect := func(name string) *nats.Conn {
		nc, err := nats.Connect(b.URL(), nats.Name(name))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	return connect("server"), connect("client")
}

func serve(t *testing.T, nc *nats.Conn, subject, queue string, h rpc.Handler) {
	t.Helper()
	srv := rpc.NewServer(nc, quiet)
	if err := srv.Handle(subject, queue, h); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	// Make sure the subscription reached the server before anyone calls.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type addReq struct {
	A, B int
}

type addRep struct {
	Sum  int    `json:"sum"`
	Note string `json:"note"`
}

func TestRoundTrip(t *testing.T) {
	srv, cli := conns(t)
	serve(t, srv, "test.add", "adders", func(_ context.Context, b json.RawMessage) (any, error) {
		var r addReq
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, wire.Errorf(wire.CodeBadMessage, "add: %v", err)
		}
		return addRep{Sum: r.A + r.B, Note: "ok"}, nil
	})
	for i := range 20 {
		var out addRep
		if err := rpc.Call(callCtx(t), cli, "test.add", addReq{A: i, B: 100}, &out); err != nil {
			t.Fatalf("Call: %v", err)
		}
		if out.Sum != i+100 || out.Note != "ok" {
			t.Fatalf("Call(%d+100) = %+v", i, out)
		}
	}
	// A nil out ignores the result; a handler with no result answers too.
	if err := rpc.Call(callCtx(t), cli, "test.add", addReq{A: 1, B: 2}, nil); err != nil {
		t.Errorf("Call with nil out: %v", err)
	}
	serve(t, srv, "test.nothing", "", func(context.Context, json.RawMessage) (any, error) { return nil, nil })
	out := addRep{Sum: -1}
	if err := rpc.Call(callCtx(t), cli, "test.nothing", struct{}{}, &out); err != nil || out.Sum != -1 {
		t.Errorf("Call of a handler with no result = %v, out %+v; want no error and out untouched", err, out)
	}
	// A request that cannot be encoded fails before it is sent.
	if err := rpc.Call(callCtx(t), cli, "test.add", func() {}, nil); err == nil {
		t.Error("Call with an unencodable request succeeded")
	}
}

func TestErrorsKeepTheirCode(t *testing.T) {
	srv, cli := conns(t)
	serve(t, srv, "test.fail", "", func(_ context.Context, b json.RawMessage) (any, error) {
		var which string
		_ = json.Unmarshal(b, &which)
		switch which {
		case "gone":
			return nil, wire.ErrGone
		case "gone-wrapped":
			return nil, fmt.Errorf("spawn of x on h1: %w", wire.ErrGone)
		case "conflict":
			return nil, wire.Errorf(wire.CodeConflict, "instance x is busy")
		case "not-found-wrapped":
			return nil, fmt.Errorf("lookup: %w", wire.Errorf(wire.CodeNotFound, "no instance x"))
		default:
			return nil, errors.New("disk on fire")
		}
	})
	for _, tc := range []struct {
		which    string
		code     wire.Code
		sentinel error
		message  string
	}{
		{"gone", wire.CodeGone, wire.ErrGone, ""},
		{"gone-wrapped", wire.CodeGone, wire.ErrGone, "spawn of x on h1: gone"},
		{"conflict", wire.CodeConflict, wire.ErrConflict, "instance x is busy"},
		{"not-found-wrapped", wire.CodeNotFound, wire.ErrNotFound, "no instance x"},
		{"plain", wire.CodeInternal, nil, "disk on fire"},
	} {
		err := rpc.Call(callCtx(t), cli, "test.fail", tc.which, nil)
		var we *wire.Error
		if !errors.As(err, &we) {
			t.Errorf("%s: Call = %v (%T), want a *wire.Error", tc.which, err, err)
			continue
		}
		if we.Code != tc.code {
			t.Errorf("%s: code %q, want %q", tc.which, we.Code, tc.code)
		}
		if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
			t.Errorf("%s: errors.Is(%v, %v) = false", tc.which, err, tc.sentinel)
		}
		if tc.message != "" && we.Message != tc.message {
			t.Errorf("%s: message %q, want %q", tc.which, we.Message, tc.message)
		}
		if tc.sentinel != wire.ErrGone && errors.Is(err, wire.ErrGone) {
			t.Errorf("%s: %v matches ErrGone", tc.which, err)
		}
	}
}

func TestCallWithNoServerFailsPromptly(t *testing.T) {
	_, cli := conns(t)
	const deadline = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := rpc.Call(ctx, cli, "test.nobody.home", "hello", nil)
	took := time.Since(start)
	if err == nil {
		t.Fatal("Call with no server succeeded")
	}
	// NATS answers "no responders" at once; without it the deadline ends
	// the call. Either way it must not outlive the deadline.
	if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call with no server = %v, want no responders or the context deadline", err)
	}
	if took > deadline+time.Second {
		t.Errorf("Call with no server took %v, past its %v deadline", took, deadline)
	}
}

func TestCallEndsAtTheContextDeadline(t *testing.T) {
	srv, cli := conns(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	serve(t, srv, "test.slow", "", func(ctx context.Context, _ json.RawMessage) (any, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	const deadline = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := rpc.Call(ctx, cli, "test.slow", nil, nil)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call to a server that does not answer = %v, want context.DeadlineExceeded", err)
	}
	if took < deadline || took > deadline+2*time.Second {
		t.Errorf("Call took %v, want about its %v deadline", took, deadline)
	}
	// A context already done fails without sending.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if err := rpc.Call(done, cli, "test.slow", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Call with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestBadResultIsAnError(t *testing.T) {
	srv, cli := conns(t)
	serve(t, srv, "test.str", "", func(context.Context, json.RawMessage) (any, error) { return "not a number", nil })
	var n int
	if err := rpc.Call(callCtx(t), cli, "test.str", nil, &n); err == nil {
		t.Error("decoding a string result into an int succeeded")
	}
	// A reply that is not an rpc reply at all.
	sub, err := srv.Subscribe("test.raw", func(m *nats.Msg) { _ = m.Respond([]byte("garbage")) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := srv.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := rpc.Call(callCtx(t), cli, "test.raw", nil, nil); err == nil {
		t.Error("a malformed reply was accepted")
	}
}

// TestShutdownCancelsAndWaits: Shutdown cancels the requests in flight,
// returns only once their goroutines have, and takes no request after.
func TestShutdownCancelsAndWaits(t *testing.T) {
	srvConn, cli := conns(t)
	s := rpc.NewServer(srvConn, quiet)
	entered := make(chan struct{})
	var finished atomic.Bool
	if err := s.Handle("test.block", "", func(ctx context.Context, _ json.RawMessage) (any, error) {
		close(entered)
		<-ctx.Done()
		finished.Store(true)
		return nil, ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	if err := srvConn.Flush(); err != nil {
		t.Fatal(err)
	}
	callDone := make(chan error, 1)
	go func() { callDone <- rpc.Call(callCtx(t), cli, "test.block", nil, nil) }()
	<-entered
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Error("Shutdown returned before the request in flight did")
	}
	if err := <-callDone; err == nil {
		t.Error("the cancelled request answered without an error")
	}
	if s.Subjects() != 0 {
		t.Errorf("%d subjects still served after Shutdown", s.Subjects())
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}
