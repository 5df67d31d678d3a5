package cells_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/natstest"
)

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
	cl := natstest.StartCluster(t, 3, "", "")
	const cell2 = "api!cell2"
	onCluster := func(c *cells.Config) {
		c.Prefix = "clustered"
		c.Stream = cells.StreamSettings{Replicas: 3}
	}
	tr := newTreeOn(t, cl.URL(), map[string]func(*cells.Config){api: onCluster, cell1: onCluster, cell2: onCluster}, nil, api, cell1, cell2)

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
	cl.Stop(leader)
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
