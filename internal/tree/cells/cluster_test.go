package cells_test

import (
	"context"
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
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// natsCluster is a JetStream cluster of in-process NATS servers on
// loopback ports, as a tree's external broker.
type natsCluster struct {
	t       testing.TB
	mu      sync.Mutex
	servers map[string]*server.Server // by server name; stopped ones removed
	urls    []string
}

// freePorts reserves n free loopback ports (released before returning,
// for the servers to take; none is 4222's NATS).
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

// startNATSCluster starts n servers with JetStream, routed to one another,
// and waits until JetStream has a leader.
func startNATSCluster(t testing.TB, n int) *natsCluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	client, routes := ports[:n], ports[n:]
	var routeURLs []string
	for _, p := range routes {
		routeURLs = append(routeURLs, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	c := &natsCluster{t: t, servers: map[string]*server.Server{}}
	dir := t.TempDir()
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		opts := &server.Options{
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
			Routes:             server.RoutesFromStr(strings.Join(routeURLs, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		c.servers[name] = s
		c.urls = append(c.urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
	}
	t.Cleanup(c.shutdown)
	for _, s := range c.servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("server %s not ready", s.Name())
		}
	}
	nc, err := nats.Connect(c.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 30*time.Second, "the JetStream cluster to elect a leader", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil, fmt.Sprint(err)
	})
	return c
}

// url is every server's client URL, separated by commas.
func (c *natsCluster) url() string { return strings.Join(c.urls, ",") }

// stop shuts one server down.
func (c *natsCluster) stop(name string) {
	c.mu.Lock()
	s := c.servers[name]
	delete(c.servers, name)
	c.mu.Unlock()
	if s == nil {
		c.t.Fatalf("no running server %q", name)
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

// TestThreeNodeClusterLosesANodeUnderLoad: a tree of three cells on one
// three-server NATS cluster, every inbox stream on three replicas, under a
// prefix of its own. Notes flow down and up; midway the server that leads
// a child's inbox stream is stopped. Every note is applied exactly once:
//
//   - the receiver's stream is down for the election: publishes not
//     acknowledged stay in the senders' outboxes and are sent again;
//   - a note arrives twice (a publish stored whose acknowledgement was
//     lost with the server, or a delivery acknowledged to the stopped
//     server): the broker's message id, or else the applied id, drops it;
//   - the senders keep sending throughout.
func TestThreeNodeClusterLosesANodeUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server NATS cluster: not in -short")
	}
	cl := startNATSCluster(t, 3)
	const cell2 = "api!cell2"
	onCluster := func(c *cells.Config) {
		c.Prefix = "clustered"
		c.Stream = cells.StreamSettings{Replicas: 3}
	}
	tr := newTreeOn(t, cl.url(), map[string]func(*cells.Config){api: onCluster, cell1: onCluster, cell2: onCluster}, nil, api, cell1, cell2)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	js, err := jetstream.New(tr.cell(api).conn())
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "clustered_CELLIN_api_cell1")
	if err != nil {
		t.Fatal(err)
	}
	info := stream.CachedInfo()
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("cell1's inbox: replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	leader := info.Cluster.Leader

	const perRoute = 150
	routes := [][2]string{{api, cell1}, {api, cell2}, {cell1, api}, {cell2, api}}
	n := 0
	sent := map[string][]int{} // by receiver
	send := func(count int) {
		for range count {
			for _, r := range routes {
				n++
				tr.cell(r[0]).send(r[1], n)
				sent[r[1]] = append(sent[r[1]], n)
			}
		}
	}
	send(perRoute / 2)
	t.Logf("stopping %s, the leader of cell1's inbox stream, with notes in flight", leader)
	cl.stop(leader)
	stopped := time.Now()
	send(perRoute / 2)

	for _, to := range []string{api, cell1, cell2} {
		testpoll.Eventually(t, 45*time.Second, "every note applied at "+to, func() (bool, string) {
			got := map[int]bool{}
			for _, a := range tr.appliedAt(to) {
				got[a.N] = true
			}
			return len(got) == len(sent[to]), fmt.Sprintf("%d of %d; %s", len(got), len(sent[to]), inboxState(js, to))
		})
	}
	t.Logf("every note applied %s after the stop", time.Since(stopped).Round(time.Millisecond))
	tr.waitOutboxesEmpty(wait)
	for _, to := range []string{api, cell1, cell2} {
		runs := map[int]int{}
		for _, a := range tr.appliedAt(to) {
			runs[a.N]++
		}
		for _, k := range sent[to] {
			if runs[k] != 1 {
				t.Errorf("note %d applied %d times at %s, want once", k, runs[k], to)
			}
		}
		if len(runs) != len(sent[to]) {
			t.Errorf("%d notes applied at %s, %d sent", len(runs), to, len(sent[to]))
		}
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), wait)
	defer cancel2()
	info2, err := stream.Info(ctx2)
	if err != nil {
		t.Fatal(err)
	}
	if info2.Cluster == nil || info2.Cluster.Leader == leader || info2.Cluster.Leader == "" {
		t.Errorf("cell1's inbox after the stop: cluster %+v", info2.Cluster)
	}
}

// inboxState describes cell path's inbox stream and consumer, for a
// failure message.
func inboxState(js jetstream.JetStream, path string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, cells.Names{Prefix: "clustered"}.Stream(path))
	if err != nil {
		return err.Error()
	}
	c, err := s.Consumer(ctx, "cells")
	if err != nil {
		return err.Error()
	}
	ci := c.CachedInfo()
	return fmt.Sprintf("stream %d messages; consumer pending %d, ack pending %d, redelivered %d, waiting %d, leader %s",
		s.CachedInfo().State.Msgs, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.Cluster.Leader)
}
