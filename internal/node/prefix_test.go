package node

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
)

// TestBrokerPrefixNamesTheCellsSubjectsAndStream: a cell with
// broker.prefix keeps its inbox in <prefix>_CELLIN_<cell> on subject
// <prefix>.<cell>.in, and its neighbours' user may publish there (and to
// its call subject) but not under the default prefix.
func TestBrokerPrefixNamesTheCellsSubjectsAndStream(t *testing.T) {
	cfg := &config.Config{Cell: "api!mid", DataDir: t.TempDir(), Roles: []string{config.RoleCells}, Broker: config.Broker{Prefix: "tree-b"}}
	n, err := New(cfg, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	js := ownJetStream(t, n)
	s, err := js.Stream(ctx5(t), "tree-b_CELLIN_api_mid")
	if err != nil {
		t.Fatalf("the inbox stream under the prefix: %v", err)
	}
	if subj := s.CachedInfo().Config.Subjects; len(subj) != 1 || subj[0] != "tree-b.api!mid.in" {
		t.Errorf("inbox subjects %v", subj)
	}
	if _, err := js.Stream(ctx5(t), "CELLIN_api_mid"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("a stream under the default name: %v", err)
	}

	violations := make(chan error, 4)
	link, err := connectOnce(t, n.LinkURL(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatal(err)
	}
	// The relay's publish: stored, and acknowledged on the link inbox.
	lnc, err := connectOnce(t, n.LinkURL(), nats.CustomInboxPrefix("_LINK"))
	if err != nil {
		t.Fatal(err)
	}
	ljs, err := jetstream.New(lnc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ljs.Publish(ctx5(t), "tree-b.api!mid.in", []byte(`{}`)); err != nil {
		t.Fatalf("a neighbour publishing into the inbox under the prefix: %v", err)
	}
	if err := link.Publish("cellcloud.api!mid.in", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := link.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-violations:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("publishing under the default prefix: %v, want a permissions violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("a neighbour published under the default prefix without a violation")
	}
}

// TestRefusedBrokerUserFailsTheStartAtOnce: a broker.url whose user the
// broker refuses stops the start with the URL (password hidden) and the
// reason, without waiting out the 30 s connect deadline.
func TestRefusedBrokerUserFailsTheStartAtOnce(t *testing.T) {
	first := startRoutingCell(t)
	u, err := url.Parse(first.BrokerURL())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("cell", "not-the-password")
	cfg := &config.Config{Cell: "api!mid", DataDir: t.TempDir(), Roles: []string{config.RoleCells}, Broker: config.Broker{URL: u.String()}}
	n, err := New(cfg, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = n.Start(ctx5(t))
	n.Shutdown(context.Background())
	if err == nil {
		t.Fatal("started with a refused user")
	}
	msg := err.Error()
	if !strings.Contains(strings.ToLower(msg), "authorization violation") || !strings.Contains(msg, u.Host) || strings.Contains(msg, "not-the-password") {
		t.Errorf("start: %q, want the URL without its password and the reason", msg)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the refusal was waited out (%s): %v", time.Since(start), err)
	}
}

// TestInboxAckWaitSetsTheInboxConsumer: cells.inbox_ack_wait is the ack
// wait of the cell's inbox consumer, and a restart with another value
// updates the consumer in place (60s when unset).
func TestInboxAckWaitSetsTheInboxConsumer(t *testing.T) {
	dir := t.TempDir()
	ackWait := func(set time.Duration) time.Duration {
		t.Helper()
		cfg := &config.Config{Cell: "api!mid", DataDir: dir, Roles: []string{config.RoleCells}, Cells: config.Cells{InboxAckWait: config.Duration(set)}}
		n, err := New(cfg, quietLog)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(ctx5(t)); err != nil {
			t.Fatal(err)
		}
		defer n.Shutdown(context.Background())
		js := ownJetStream(t, n)
		defer js.Conn().Close()
		c, err := js.Consumer(ctx5(t), "CELLIN_api_mid", "cells")
		if err != nil {
			t.Fatal(err)
		}
		return c.CachedInfo().Config.AckWait
	}
	if got := ackWait(2 * time.Minute); got != 2*time.Minute {
		t.Errorf("ack wait %v, want 2m", got)
	}
	if got := ackWait(90 * time.Second); got != 90*time.Second {
		t.Errorf("after a restart with 90s: ack wait %v", got)
	}
	if got := ackWait(0); got != time.Minute {
		t.Errorf("unset: ack wait %v, want 1m", got)
	}
}

// ownJetStream connects to a started cell's broker as the cell's own user.
func ownJetStream(t *testing.T, n *Node) jetstream.JetStream {
	t.Helper()
	creds, err := broker.LoadCredentials(n.Config().Broker.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := connectOnce(t, n.BrokerURL(), nats.UserInfo(creds.Cell.Name, creds.Cell.Password))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
