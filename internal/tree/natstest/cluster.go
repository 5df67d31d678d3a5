// Package natstest runs a JetStream cluster of in-process NATS servers on
// loopback ports for tests: a tree's external broker as operators run it
// (docs/operations.md, "On a NATS cluster"). A stopped server may be
// started again on its ports and store.
package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// Cluster is n NATS servers with JetStream, routed to one another.
type Cluster struct {
	t       testing.TB
	routes  string // every server's route URL, separated by commas
	names   []string
	urls    []string // client URLs (with the user), in the order of names
	mu      sync.Mutex
	opts    map[string]*server.Options // by server name
	servers map[string]*server.Server  // running ones
}

// StartCluster starts n servers, named n1…nN, each accepting user and
// password when user is not empty, and waits until the cluster is ready
// (Ready). The servers are shut down when the test ends.
func StartCluster(t testing.TB, n int, user, password string) *Cluster {
	t.Helper()
	c := NewCluster(t, n, user, password)
	for _, name := range c.names {
		c.Start(name)
	}
	c.Ready()
	return c
}

// NewCluster is a cluster of n servers, none started yet: a test starts
// them (Start), and may leave some down as a cluster still forming has.
func NewCluster(t testing.TB, n int, user, password string) *Cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	client, routes := ports[:n], ports[n:]
	var routeURLs []string
	for _, p := range routes {
		routeURLs = append(routeURLs, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	c := &Cluster{t: t, routes: strings.Join(routeURLs, ","), opts: map[string]*server.Options{}, servers: map[string]*server.Server{}}
	auth := ""
	if user != "" {
		auth = user + ":" + password + "@"
	}
	dir := t.TempDir()
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		o := &server.Options{
			ServerName:         name,
			Host:               "127.0.0.1",
			Port:               client[i],
			JetStream:          true,
			StoreDir:           filepath.Join(dir, name),
			JetStreamMaxMemory: 64 << 20,
			JetStreamMaxStore:  1 << 30,
			NoSigs:             true,
			NoLog:              true,
			Cluster:            server.ClusterOpts{Name: "cellcloud-test", Host: "127.0.0.1", Port: routes[i]},
		}
		if user != "" {
			o.Users = []*server.User{{Username: user, Password: password}}
		}
		c.opts[name] = o
		c.names = append(c.names, name)
		c.urls = append(c.urls, fmt.Sprintf("nats://%s127.0.0.1:%d", auth, client[i]))
	}
	t.Cleanup(c.shutdown)
	return c
}

// freePorts reserves n distinct free loopback ports (released before
// returning, for the servers to take; none is 4222's NATS).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var out []int
	for len(out) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		if p := l.Addr().(*net.TCPAddr).Port; p != 4222 {
			out = append(out, p)
		}
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return out
}

// URL is every server's client URL, separated by commas.
func (c *Cluster) URL() string { return strings.Join(c.urls, ",") }

// Names are the servers' names, in the order of URL.
func (c *Cluster) Names() []string { return append([]string(nil), c.names...) }

// Start starts (or starts again) server name and waits until it accepts
// clients.
func (c *Cluster) Start(name string) {
	c.t.Helper()
	o := *c.opts[name]
	o.Routes = server.RoutesFromStr(c.routes) // fresh for each server started: it keeps them
	s, err := server.NewServer(&o)
	if err != nil {
		c.t.Fatalf("nats-server %s: %v", name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		c.t.Fatalf("nats-server %s not ready", name)
	}
	c.mu.Lock()
	c.servers[name] = s
	c.mu.Unlock()
}

// Stop shuts server name down, as losing its machine would (its clients
// see their connection close).
func (c *Cluster) Stop(name string) {
	c.t.Helper()
	c.mu.Lock()
	s := c.servers[name]
	delete(c.servers, name)
	c.mu.Unlock()
	if s == nil {
		c.t.Fatalf("no running nats-server %q", name)
	}
	s.Shutdown()
	s.WaitForShutdown()
}

func (c *Cluster) shutdown() {
	c.mu.Lock()
	ss := c.servers
	c.servers = map[string]*server.Server{}
	c.mu.Unlock()
	for _, s := range ss {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// JetStream is a JetStream client of the cluster, closed when the test
// ends.
func (c *Cluster) JetStream() jetstream.JetStream {
	c.t.Helper()
	nc, err := nats.Connect(c.URL())
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return js
}

// readyStream is the stream Ready places and removes.
const readyStream = "NATSTEST_READY"

// Ready waits until every running server is a JetStream peer the meta
// leader counts online: a stream with one replica on each can be placed.
// A cluster that merely answers (has a meta leader) may not yet know all
// its servers, and refuses such a stream with "no suitable peers".
func (c *Cluster) Ready() {
	c.t.Helper()
	c.mu.Lock()
	n := len(c.servers)
	c.mu.Unlock()
	js := c.JetStream()
	testpoll.Eventually(c.t, 30*time.Second, fmt.Sprintf("the JetStream cluster to place a stream on all %d servers", n), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: readyStream, Subjects: []string{"natstest.ready"}, Storage: jetstream.MemoryStorage, Replicas: n})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return false, err.Error()
		}
		if err := js.DeleteStream(ctx, readyStream); err != nil {
			return false, "deleting the probe stream: " + err.Error()
		}
		return true, ""
	})
}

// Leaders counts, by server name, the streams whose names begin with
// prefix that each server leads, and returns the streams' replica count as
// well (the smallest seen).
func (c *Cluster) Leaders(prefix string) (map[string]int, int) {
	c.t.Helper()
	js := c.JetStream()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]int{}
	replicas := 0
	l := js.ListStreams(ctx)
	for info := range l.Info() {
		if !strings.HasPrefix(info.Config.Name, prefix) {
			continue
		}
		if replicas == 0 || info.Config.Replicas < replicas {
			replicas = info.Config.Replicas
		}
		if info.Cluster != nil {
			out[info.Cluster.Leader]++
		}
	}
	if err := l.Err(); err != nil {
		c.t.Fatalf("list the streams: %v", err)
	}
	return out, replicas
}
