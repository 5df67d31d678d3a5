package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/tree/broker"
)

// TestBrokerDrain: a cell moved from broker A to broker B; its inbox on A
// holds three messages. "broker drain" moves them to B and deletes A's
// stream; run again it does nothing; with a password A refuses it says so
// at once.
func TestBrokerDrain(t *testing.T) {
	dir := t.TempDir()
	creds, err := broker.NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	a, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: "a", StoreDir: filepath.Join(dir, "a"), Auth: &broker.Auth{Credentials: *creds}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown()
	b, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: "b", StoreDir: filepath.Join(dir, "b")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	fromURL, err := broker.WithUser(a.URL(), creds.Cell)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inbox := jetstream.StreamConfig{Name: "CELLIN_api_cell1", Subjects: []string{"cellcloud.api!cell1.in"}, Retention: jetstream.WorkQueuePolicy,
		Duplicates: 2 * time.Minute, Metadata: map[string]string{"cellcloud_prefix": "cellcloud", "cellcloud_cell": "api!cell1"}}
	js := func(url string) jetstream.JetStream {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateStream(ctx, inbox); err != nil {
			t.Fatal(err)
		}
		return js
	}
	jsA, jsB := js(fromURL), js(b.URL())
	for i := range 3 {
		m := nats.NewMsg("cellcloud.api!cell1.in")
		m.Data = fmt.Appendf(nil, `{"n": %d}`, i)
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprint("msg-", i))
		if _, err := jsA.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "cell1.json")
	if err := os.WriteFile(cfg, []byte(`{"cell": "api!cell1", "data_dir": "data", "broker": {"url": "`+b.URL()+`"}}`), 0o644); err != nil {
		t.Fatal(err)
	}

	bad, err := broker.WithUser(a.URL(), broker.User{Name: creds.Cell.Name, Password: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd("broker", "drain", "--config", cfg, "--from", bad)
	if code != 1 || !strings.Contains(stderr, "authorization violation") || !strings.Contains(stderr, broker.Redact(bad)) || strings.Contains(stderr, "wrong") {
		t.Errorf("a refused user: exit %d, stderr %q", code, stderr)
	}

	code, out, stderr := runCmd("broker", "drain", "--config", cfg, "--from", fromURL)
	if code != 0 || !strings.Contains(out, "moved 3 messages") || strings.Contains(out, creds.Cell.Password) {
		t.Fatalf("drain: exit %d, out %q, err %q", code, out, stderr)
	}
	if _, err := jsA.Stream(ctx, "CELLIN_api_cell1"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the old stream is still on A: %v", err)
	}
	s, err := jsB.Stream(ctx, "CELLIN_api_cell1")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 3 {
		t.Errorf("B's stream: %v, %+v", err, info)
	}
	code, out, _ = runCmd("broker", "drain", "--config", cfg, "--from", fromURL)
	if code != 0 || !strings.Contains(out, "moved 0 messages") {
		t.Errorf("second drain: exit %d, out %q", code, out)
	}
}

// TestBrokerDrainFromAStore: a cell that embedded its broker moved to an
// external one; the old broker's store (DATA_DIR/broker) still holds two
// messages. "broker drain --from-store" runs a broker on it and moves them.
func TestBrokerDrainFromAStore(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "old-broker")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inbox := jetstream.StreamConfig{Name: "CELLIN_api_cell1", Subjects: []string{"cellcloud.api!cell1.in"}, Retention: jetstream.WorkQueuePolicy, Duplicates: 2 * time.Minute}
	connect := func(url string) jetstream.JetStream {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateStream(ctx, inbox); err != nil {
			t.Fatal(err)
		}
		return js
	}
	old, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: "api!cell1", StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	jsOld := connect(old.URL())
	for i := range 2 {
		if _, err := jsOld.Publish(ctx, "cellcloud.api!cell1.in", fmt.Appendf(nil, `{"n": %d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	old.Shutdown()
	b, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: "b", StoreDir: filepath.Join(dir, "b")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	jsB := connect(b.URL())
	cfg := filepath.Join(dir, "cell1.json")
	if err := os.WriteFile(cfg, []byte(`{"cell": "api!cell1", "data_dir": "data", "broker": {"url": "`+b.URL()+`"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCmd("broker", "drain", "--config", cfg, "--from-store", store)
	if code != 0 || !strings.Contains(out, "moved 2 messages") {
		t.Fatalf("drain: exit %d, out %q, err %q", code, out, stderr)
	}
	s, err := jsB.Stream(ctx, "CELLIN_api_cell1")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 2 {
		t.Errorf("B's stream: %v, %+v", err, info)
	}
	if code, _, stderr := runCmd("broker", "drain", "--config", cfg, "--from-store", filepath.Join(dir, "nothing")); code != 1 || !strings.Contains(stderr, "no JetStream store") {
		t.Errorf("a directory without a store: exit %d, %q", code, stderr)
	}
}
