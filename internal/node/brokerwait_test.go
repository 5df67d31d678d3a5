package node

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// syncBuffer is a log sink the test reads while the node writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeAddr is a loopback address where nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// A process whose broker is not there says so at once, naming the URL and
// the reason, keeps trying, and gives up after its wait with an error
// that names the URL (it was "not connected to : context deadline
// exceeded" after 30 s of silence).
func TestStartNamesAnUnreachableBrokerAtOnceAndGivesUpNamingIt(t *testing.T) {
	u := "nats://" + freeAddr(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	n, err := New(&config.Config{Cell: "api!mid", DataDir: t.TempDir(), Roles: []string{config.RoleCells},
		Broker: config.Broker{URL: u}}, log)
	if err != nil {
		t.Fatal(err)
	}
	n.brokerWait = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Start(ctx) }()
	testpoll.Eventually(t, 20*time.Second, "a log line naming the broker while the start waits", func() (bool, string) {
		l := logs.String()
		return strings.Contains(l, "cannot reach the cell's broker") && strings.Contains(l, u) && strings.Contains(l, "connection refused"), l
	})
	select {
	case err := <-done:
		t.Fatalf("the start ended while the broker's wait (1 min) was not over: %v", err)
	default:
	}
	cancel() // the operator stops it: the error still names the URL
	if err := <-done; err == nil || !strings.Contains(err.Error(), u) {
		t.Fatalf("start cancelled while waiting for the broker: %v, want an error naming %s", err, u)
	}

	// With a short wait, it gives up on its own, naming the URL and the
	// last reason.
	n2, err := New(&config.Config{Cell: "api!mid", DataDir: t.TempDir(), Roles: []string{config.RoleCells},
		Broker: config.Broker{URL: u}}, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	n2.brokerWait = 500 * time.Millisecond
	err = n2.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), u) || !strings.Contains(err.Error(), "not reached in") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("start with no broker: %v, want an error naming %s, the wait and the reason", err, u)
	}
}

// A broker that refuses the credentials fails the start at once, naming
// the URL (without the password): waiting does not make them right.
func TestStartFailsAtOnceWhenTheBrokerRefusesTheCredentials(t *testing.T) {
	other := startRoutingCell(t) // a broker that wants its users
	p, err := url.Parse(other.BrokerURL())
	if err != nil {
		t.Fatal(err)
	}
	p.User = url.UserPassword("cell", "wrong-secret")
	n, err := New(&config.Config{Cell: "api!mid2", DataDir: t.TempDir(), Roles: []string{config.RoleCells},
		Broker: config.Broker{URL: p.String()}}, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	// Far longer than the test's deadline: only the refusal can end it.
	n.brokerWait = time.Hour
	err = n.Start(ctx5(t))
	if err == nil || !strings.Contains(err.Error(), "refused this cell's credentials") || !strings.Contains(err.Error(), p.Host) {
		t.Fatalf("start with a wrong password: %v, want a refusal naming %s", err, p.Host)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("the error shows the password: %v", err)
	}
}
