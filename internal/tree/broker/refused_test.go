package broker

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A broker that refuses the credentials is an error at once, naming the
// URL (without its password) and the reason, not a wait for the deadline.
func TestRefusedCredentialsFailAtOnce(t *testing.T) {
	creds, err := NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	e, err := StartEmbedded(EmbeddedConfig{Name: "api", StoreDir: filepath.Join(t.TempDir(), "broker"), Auth: &Auth{Credentials: *creds}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	url, err := WithUser(e.URL(), User{Name: creds.Cell.Name, Password: "wrong-password"})
	if err != nil {
		t.Fatal(err)
	}
	// The deadline is long: the test fails by its own timeout if the
	// refusal is waited out.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nc, err := Connect(ctx, url, "test", slog.New(slog.DiscardHandler))
	if err == nil {
		defer nc.Close()
		err = WaitConnected(ctx, nc)
	}
	if err == nil {
		t.Fatal("connected with a wrong password")
	}
	if ctx.Err() != nil {
		t.Fatalf("the refusal was waited out: %v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "wrong-password") || !strings.Contains(msg, Redact(url)) || !strings.Contains(msg, "authorization violation") {
		t.Errorf("error %q: want the redacted URL %s and the reason", msg, Redact(url))
	}
	t.Log(msg)
}
