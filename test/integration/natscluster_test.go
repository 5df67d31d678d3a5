package integration

import (
	"context"
	"fmt"
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

// natsCluster is a JetStream cluster of in-process NATS servers on
// loopback ports with a user, as a production tree's external broker
// (docs/operations.md, step 3). A stopped server may be started again on
// its ports and store.
type natsCluster struct {
	t       *testing.T
	user    string // "name:password"
	routes  string // every server's route URL, separated by commas
	mu      sync.Mutex
	opts    map[string]*server.Options // by server name
	servers map[string]*server.Server  // running ones
	names   []string                   // in the order of urls
	urls    []string                   // client URLs with the user
}

// startNATSCluster starts n servers with JetStream, routed to one another,
// each accepting user/password, and waits until JetStream has a leader.
func startNATSCluster(t *testing.T, n int, user, password string) *natsCluster {
	t.Helper()
	seen := map[int]bool{}
	var ports []int
	for len(ports) < 2*n {
		if p := freePort(t); !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	client, routes := ports[:n], ports[n:]
	var routeURLs []string
	for _, p := range routes {
		routeURLs = append(routeURLs, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	c := &natsCluster{t: t, user: user + ":" + password, routes: strings.Join(routeURLs, ","), opts: map[string]*server.Options{}, servers: map[string]*server.Server{}}
	dir := t.TempDir()
	for i := range n {
		name := fmt.Sprintf("nats%d", i+1)
		c.opts[name] = &server.Options{
			ServerName:         name,
			Host:               "127.0.0.1",
			Port:               client[i],
			JetStream:          true,
			StoreDir:           filepath.Join(dir, name),
			JetStreamMaxMemory: 64 << 20,
			JetStreamMaxStore:  1 << 30,
			NoSigs:             true,
			NoLog:              true,
			Users:              []*server.User{{Username: user, Password: password}},
			Cluster:            server.ClusterOpts{Name: "cellcloud", Host: "127.0.0.1", Port: routes[i]},
		}
		c.names = append(c.names, name)
		c.urls = append(c.urls, fmt.Sprintf("nats://%s@127.0.0.1:%d", c.user, client[i]))
	}
	t.Cleanup(c.shutdown)
	for _, name := range c.names {
		c.start(name)
	}
	c.waitLeader()
	return c
}

// start starts (or starts again) one server and waits until it accepts
// clients.
func (c *natsCluster) start(name string) {
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

// waitLeader waits until the JetStream cluster answers (has a meta leader).
func (c *natsCluster) waitLeader() {
	c.t.Helper()
	nc, err := nats.Connect(c.url())
	if err != nil {
		c.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	testpoll.Eventually(c.t, 30*time.Second, "the JetStream cluster to elect a leader", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil, fmt.Sprint(err)
	})
}

// url is every server's client URL, with the user, separated by commas.
func (c *natsCluster) url() string { return strings.Join(c.urls, ",") }

// leaders counts, by server name, the streams whose names begin with
// prefix that each server leads, and returns the streams' replica count
// as well (the smallest seen).
func (c *natsCluster) leaders(prefix string) (map[string]int, int) {
	c.t.Helper()
	nc, err := nats.Connect(c.url())
	if err != nil {
		c.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
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

// stop shuts one server down, as losing its machine would (its clients
// see their connection close).
func (c *natsCluster) stop(name string) {
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

func (c *natsCluster) shutdown() {
	c.mu.Lock()
	ss := c.servers
	c.servers = map[string]*server.Server{}
	c.mu.Unlock()
	for _, s := range ss {
		s.Shutdown()
		s.WaitForShutdown()
	}
}
