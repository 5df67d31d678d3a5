package node

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"testing"
)

// fakeComponent records its starts and stops in a shared log.
type fakeComponent struct {
	name    string
	log     *[]string
	failing bool
}

func (f *fakeComponent) Start(context.Context) error {
	*f.log = append(*f.log, "start "+f.name)
	if f.failing {
		return errors.New("no")
	}
	return nil
}

func (f *fakeComponent) Shutdown(context.Context) error {
	*f.log = append(*f.log, "stop "+f.name)
	return nil
}

// TestComponentsStopInReverse: what started is stopped last first, the
// one that failed to start included; what never started is not stopped.
func TestComponentsStopInReverse(t *testing.T) {
	var log []string
	var cs components
	ctx := context.Background()
	cs.add(role{"db", &fakeComponent{name: "db", log: &log}})
	var err error
	for _, r := range []role{
		{"a", &fakeComponent{name: "a", log: &log}},
		{"b", &fakeComponent{name: "b", log: &log, failing: true}},
		{"c", &fakeComponent{name: "c", log: &log}},
	} {
		if err = cs.start(ctx, r); err != nil {
			break
		}
	}
	if err == nil || err.Error() != "no" {
		t.Fatalf("start error %v, want b's", err)
	}
	cs.stop(ctx, quietLog)
	cs.stop(ctx, quietLog) // a second stop has nothing left to stop
	want := []string{"start a", "start b", "stop b", "stop a", "stop db"}
	if !reflect.DeepEqual(log, want) {
		t.Errorf("log %q, want %q", log, want)
	}
}

// TestHTTPServerShutdownWaitsForServe: Shutdown returns once the server's
// goroutine has, and the listener is closed.
func TestHTTPServerShutdownWaitsForServe(t *testing.T) {
	errs := make(chan error, 1)
	h := &httpServer{listen: "127.0.0.1:0", errs: errs,
		handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + h.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.served:
	default:
		t.Fatal("Shutdown returned before Serve did")
	}
	if _, err := http.Get("http://" + h.addr + "/"); err == nil {
		t.Error("the listener still answers after Shutdown")
	}
	select {
	case err := <-errs:
		t.Errorf("server error %v", err)
	default:
	}
	if err := (&httpServer{}).Shutdown(ctx); err != nil {
		t.Errorf("Shutdown of a server never started: %v", err)
	}
}
