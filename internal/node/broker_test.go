package node

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
)

// startRoutingCell starts a cell process with only the cells role (a
// routing cell): the smallest node with an embedded broker.
func startRoutingCell(t *testing.T) *Node {
	t.Helper()
	cfg := &config.Config{Cell: "api!mid", DataDir: t.TempDir(), Roles: []string{config.RoleCells}}
	n, err := New(cfg, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// connectOnce connects without retrying, so a refusal is an error.
func connectOnce(t *testing.T, u string, opts ...nats.Option) (*nats.Conn, error) {
	t.Helper()
	nc, err := nats.Connect(u, opts...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

func TestEmbeddedBrokerRefusesAnonymousClientsAndListensOnLoopback(t *testing.T) {
	n := startRoutingCell(t)
	u, err := url.Parse(n.BrokerURL())
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		t.Errorf("the embedded broker listens on %s, not on loopback", u.Host)
	}
	if _, err := connectOnce(t, n.BrokerURL()); err == nil {
		t.Fatal("a client without credentials connected to the cell's broker")
	} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("connecting without credentials: %v, want an authorization error", err)
	}
	if _, err := connectOnce(t, n.BrokerURL(), nats.UserInfo("cell", "guess")); err == nil {
		t.Fatal("a client with a guessed password connected to the cell's broker")
	}
}

func TestEmbeddedBrokerUsersAndTheirPermissions(t *testing.T) {
	n := startRoutingCell(t)
	credFile := n.Config().Broker.Credentials
	st, err := os.Stat(credFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || filepath.Dir(credFile) != n.Config().DataDir {
		t.Errorf("credentials file %s mode %v, want 0600 in the data dir", credFile, st.Mode().Perm())
	}
	creds, err := broker.LoadCredentials(credFile)
	if err != nil {
		t.Fatal(err)
	}

	// The cell's own user may do anything: another process of the cell
	// subscribes to every subject.
	own, err := connectOnce(t, n.BrokerURL(), nats.UserInfo(creds.Cell.Name, creds.Cell.Password))
	if err != nil {
		t.Fatalf("the cell's own user: %v", err)
	}
	if _, err := own.SubscribeSync(">"); err != nil {
		t.Fatal(err)
	}
	allowed, denied := []string{"cellcloud.api!mid.call", "cellcloud.api!mid.in"}, []string{"cellcloud.api!mid.nudge", "cellcloud.api!other.in", "$JS.API.STREAM.DELETE.NOSUCH"}
	subs := map[string]*nats.Subscription{}
	for _, subj := range append(allowed, denied...) {
		if subs[subj], err = own.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	}
	if err := own.Flush(); err != nil || own.LastError() != nil {
		t.Fatalf("the cell's own user subscribing: %v %v", err, own.LastError())
	}

	// A neighbour, with the URL the cells tables record, may send to the
	// cell's inbox and call subject, and nothing else.
	if !strings.Contains(n.LinkURL(), creds.Link.Name+":") || strings.Contains(n.BrokerURL(), creds.Link.Password) {
		t.Fatalf("link URL %s, broker URL %s", broker.Redact(n.LinkURL()), n.BrokerURL())
	}
	var violations = make(chan error, 10)
	link, err := connectOnce(t, n.LinkURL(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatalf("the neighbours' user: %v", err)
	}
	for _, subj := range allowed {
		if err := link.Publish(subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := link.Flush(); err != nil || link.LastError() != nil {
			t.Fatalf("a neighbour publishing on %s: %v %v", subj, err, link.LastError())
		}
		if m, err := subs[subj].NextMsg(5 * time.Second); err != nil || m.Subject != subj {
			t.Fatalf("the cell received %v, %v; want a message on %s", m, err, subj)
		}
	}
	for _, subj := range denied {
		if err := link.Publish(subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := link.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := link.LastError(); err == nil || !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("a neighbour publishing on %s: last error %v, want a permissions violation", subj, err)
		}
		<-violations
	}
	for _, subj := range []string{">", "cellcloud.api!mid.in", "_INBOX.>"} {
		if _, err := link.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		if err := link.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := <-violations; !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "Subscription") {
			t.Fatalf("a neighbour subscribing to %s: %v, want a permissions violation", subj, err)
		}
	}
	// What the neighbour was denied never reached the cell: the cell's own
	// marker, published after them, arrives first on each subject.
	for _, subj := range denied {
		if err := own.Publish(subj, []byte("own")); err != nil {
			t.Fatal(err)
		}
		if m, err := subs[subj].NextMsg(5 * time.Second); err != nil || string(m.Data) != "own" {
			t.Fatalf("on %s the cell received %v, %v; want only its own marker", subj, m, err)
		}
	}
}

// TestEmbeddedBrokerServesTLSFromItsConfig: broker.tls_cert, tls_key and ca
// (as cellcloud cell cert writes them) make the broker take only TLS
// clients that trust the tree CA; the cell's own processes do.
func TestEmbeddedBrokerServesTLSFromItsConfig(t *testing.T) {
	dir := t.TempDir()
	ca, err := broker.LoadOrCreateCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"), "api")
	if err != nil {
		t.Fatal(err)
	}
	other, err := broker.LoadOrCreateCA(filepath.Join(dir, "other.pem"), filepath.Join(dir, "other-key.pem"), "api")
	if err != nil {
		t.Fatal(err)
	}
	b := config.Broker{TLSCert: filepath.Join(dir, "cell", "cert.pem"), TLSKey: filepath.Join(dir, "cell", "key.pem"), CA: ca.CertFile}
	if err := ca.Issue(b.TLSCert, b.TLSKey, "api!mid", nil); err != nil {
		t.Fatal(err)
	}
	n, err := New(&config.Config{Cell: "api!mid", DataDir: filepath.Join(dir, "cell"), Roles: []string{config.RoleCells}, Broker: b}, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	if !strings.HasPrefix(n.BrokerURL(), "tls://") || !strings.HasPrefix(n.LinkURL(), "tls://link:") {
		t.Errorf("broker URL %s, link URL %s: want tls://", n.BrokerURL(), broker.Redact(n.LinkURL()))
	}
	if _, err := connectOnce(t, n.LinkURL()); err == nil {
		t.Error("a client without the tree CA connected")
	}
	if _, err := connectOnce(t, n.LinkURL(), nats.RootCAs(other.CertFile)); err == nil {
		t.Error("a client trusting another CA connected")
	}
	plain := strings.Replace(n.LinkURL(), "tls://", "nats://", 1)
	if _, err := connectOnce(t, plain); err == nil {
		t.Error("a client asking for plain nats:// connected")
	}
	if _, err := connectOnce(t, n.LinkURL(), nats.RootCAs(ca.CertFile)); err != nil {
		t.Errorf("a neighbour with the tree CA: %v", err)
	}
}
