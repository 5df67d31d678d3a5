package broker

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCredentialsAreMadeOnceAndKeptPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "broker-credentials.json")
	var wg sync.WaitGroup
	got := make([]*Credentials, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = LoadOrCreateCredentials(path)
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if *got[i] != *got[0] {
			t.Fatalf("two processes creating the file at once got different credentials")
		}
	}
	c := got[0]
	if c.Cell.Name == c.Link.Name || len(c.Cell.Password) < 32 || c.Cell.Password == c.Link.Password {
		t.Errorf("credentials %+v", c)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("credentials file: %v, want mode 0600", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := os.WriteFile(path, []byte(`{"cell": {"name": "cell"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCredentials(path); err == nil {
		t.Error("a credentials file without passwords was accepted")
	}
}

func TestURLsWithUsers(t *testing.T) {
	u, err := WithUser("tls://127.0.0.1:14999", User{Name: "link", Password: "s3cret/+"})
	if err != nil || !HasUser(u) || HasUser("nats://h:1") {
		t.Fatalf("WithUser: %q %v", u, err)
	}
	if r := Redact(u); strings.Contains(r, "s3cret") || !strings.Contains(r, "link:") || !strings.Contains(r, "127.0.0.1:14999") {
		t.Errorf("Redact(%q) = %q", u, r)
	}
	if r := Redact("nats://h:1"); r != "nats://h:1" {
		t.Errorf("Redact of a URL without a user = %q", r)
	}
}

// TestConnectWithTheUserInTheURL: the external-broker path, a user and
// password in broker.url, reaches a broker that requires them.
func TestConnectWithTheUserInTheURL(t *testing.T) {
	c, err := NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	e, err := StartEmbedded(EmbeddedConfig{Name: "api", StoreDir: t.TempDir(), Auth: &Auth{Credentials: *c}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	u, err := WithUser(e.URL(), c.Cell)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := Connect(ctx, u, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := WaitConnected(ctx, nc); err != nil {
		t.Fatal(err)
	}
}

// A NATS cluster's URL list (as nats.Connect and broker.url take it) is
// redacted URL by URL: a listing or a log line shows no password.
func TestRedactClusterList(t *testing.T) {
	got := Redact("nats://u:secret1@n1:4222,nats://u:secret2@n2:4222, nats://n3:4222")
	if want := "nats://u:xxxxx@n1:4222,nats://u:xxxxx@n2:4222,nats://n3:4222"; got != want {
		t.Fatalf("Redact = %q, want %q", got, want)
	}
	if !HasUser("nats://u:p@n1:4222,nats://u:p@n2:4222") || HasUser("nats://n1:4222,nats://u:p@n2:4222") {
		t.Error("HasUser of a list reads the first URL")
	}
}
