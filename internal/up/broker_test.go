package up_test

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/up"
)

// TestTreeBrokersServeTLSOfTheTreeCA: up makes a tree CA, every cell's
// broker serves TLS on loopback with a certificate of it and requires a
// user; the tree's links (its cells reported their hosts) go over them.
func TestTreeBrokersServeTLSOfTheTreeCA(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr, err := up.Start(ctx, up.Options{DataDir: dir, Cells: 1, HostsPerCell: 1, Listen: "127.0.0.1:0", ReportInterval: 200 * time.Millisecond},
		testtree.Logger(t, slog.LevelWarn))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	ca := filepath.Join(dir, "tree-ca.pem")
	for _, key := range []string{filepath.Join(dir, "tree-ca-key.pem"), filepath.Join(dir, "api", "broker-key.pem"), filepath.Join(dir, "cell1", "broker-key.pem")} {
		if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("key %s: %v, want mode 0600", key, err)
		}
	}
	for _, n := range tr.Nodes() {
		u, err := url.Parse(n.BrokerURL())
		if err != nil {
			t.Fatal(err)
		}
		if ip := net.ParseIP(u.Hostname()); u.Scheme != "tls" || ip == nil || !ip.IsLoopback() {
			t.Errorf("cell %s broker at %s, want tls:// on loopback", n.Config().Cell, n.BrokerURL())
		}
		creds, err := broker.LoadCredentials(n.Config().Broker.Credentials)
		if err != nil {
			t.Fatal(err)
		}
		user := nats.UserInfo(creds.Cell.Name, creds.Cell.Password)
		if nc, err := nats.Connect(n.BrokerURL(), user); err == nil {
			nc.Close()
			t.Errorf("cell %s: a client without the tree CA connected", n.Config().Cell)
		}
		if nc, err := nats.Connect(n.BrokerURL(), nats.RootCAs(ca)); err == nil {
			nc.Close()
			t.Errorf("cell %s: a client without a user connected", n.Config().Cell)
		}
		nc, err := nats.Connect(n.BrokerURL(), user, nats.RootCAs(ca))
		if err != nil {
			t.Fatalf("cell %s: the cell's user with the tree CA: %v", n.Config().Cell, err)
		}
		nc.Close()
	}
}
