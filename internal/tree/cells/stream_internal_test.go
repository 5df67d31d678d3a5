package cells

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/natstest"
)

// testJS starts an embedded broker and returns a JetStream handle on it.
func testJS(t *testing.T) (jetstream.JetStream, *nats.Conn) {
	t.Helper()
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: "test", StoreDir: filepath.Join(t.TempDir(), "broker")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := nats.Connect(e.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js, nc
}

// logBuf is a log sink a test may read while it is written.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) Len() int { return len(l.String()) }

func (l *logBuf) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

func (l *logBuf) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

func TestStreamNamesKeepTheirDefault(t *testing.T) {
	n := Names{}
	if n.Stream("api!cell1") != "CELLIN_api_cell1" || n.In("api!cell1") != "cellcloud.api!cell1.in" || n.Call("api") != "cellcloud.api.call" || n.Nudge("api") != "cellcloud.api.nudge" {
		t.Errorf("the default prefix changed a name: %s %s %s %s", n.Stream("api!cell1"), n.In("api!cell1"), n.Call("api"), n.Nudge("api"))
	}
	b := Names{"tree-b"}
	if b.Stream("api!cell1") != "tree-b_CELLIN_api_cell1" || b.In("api!cell1") != "tree-b.api!cell1.in" {
		t.Errorf("prefix tree-b: %s %s", b.Stream("api!cell1"), b.In("api!cell1"))
	}
	pub, _ := LinkPermissions("tree-b", "api!cell1")
	if strings.Join(pub, " ") != "tree-b.api!cell1.in tree-b.api!cell1.call" {
		t.Errorf("link may publish %v", pub)
	}
	for _, p := range []string{"", "a.b", "a*", "a>", "a b", strings.Repeat("x", 33)} {
		if cellpath.ValidPrefix(p) == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}

// TestInboxStreamIsCreatedOnceAndUpdatedInPlace: a start creates the
// stream; the next, with the same settings, leaves it alone (its messages
// and creation time kept); one with other bounds updates it in place,
// logging old and new, messages kept; one with another storage is an
// error naming the stream, the setting and both values, and the stream is
// untouched.
func TestInboxStreamIsCreatedOnceAndUpdatedInPlace(t *testing.T) {
	js, _ := testJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const path = "api!cell1"
	var logs logBuf
	names := Names{}

	s1, err := ensureStream(ctx, js, names, path, StreamSettings{}, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	created := s1.CachedInfo().Created
	if cfg := s1.CachedInfo().Config; cfg.Replicas != 1 || cfg.Storage != jetstream.FileStorage || cfg.Metadata[metaPrefix] != "cellcloud" || cfg.Metadata[metaCell] != path {
		t.Errorf("created %+v", cfg)
	}
	if _, err := js.Publish(ctx, names.In(path), []byte("kept")); err != nil {
		t.Fatal(err)
	}

	logs.Reset()
	s2, err := ensureStream(ctx, js, names, path, StreamSettings{}, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	if !s2.CachedInfo().Created.Equal(created) || s2.CachedInfo().State.Msgs != 1 {
		t.Errorf("second start: created %v (was %v), %d messages", s2.CachedInfo().Created, created, s2.CachedInfo().State.Msgs)
	}
	if logs.Len() != 0 {
		t.Errorf("a start with the same settings logged %q", logs.String())
	}

	logs.Reset()
	s3, err := ensureStream(ctx, js, names, path, StreamSettings{MaxMsgs: 1000, MaxBytes: 1 << 20, MaxAge: time.Hour}, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s3.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Created.Equal(created) || info.State.Msgs != 1 || info.Config.MaxMsgs != 1000 || info.Config.MaxBytes != 1<<20 || info.Config.MaxAge != time.Hour || info.Config.Discard != jetstream.DiscardNew {
		t.Errorf("after the update: %+v, %d messages", info.Config, info.State.Msgs)
	}
	if l := logs.String(); !strings.Contains(l, "inbox stream updated in place") || !strings.Contains(l, "max_msgs -1 -> 1000") || !strings.Contains(l, "max_age 0s -> 1h0m0s") {
		t.Errorf("update logged %q", l)
	}

	_, err = ensureStream(ctx, js, names, path, StreamSettings{Memory: true}, logs.logger())
	var conflict *StreamConflictError
	if !errors.As(err, &conflict) || conflict.Stream != "CELLIN_api_cell1" || !strings.Contains(conflict.Setting, "storage") || conflict.Have != "File" || conflict.Want != "Memory" {
		t.Fatalf("storage change: %v", err)
	}
	t.Log(err)
	info, err = s3.Info(ctx)
	if err != nil || !info.Created.Equal(created) || info.State.Msgs != 1 {
		t.Errorf("the stream was touched by a refused start: %v %+v", err, info)
	}

	// More replicas than a single server holds: an error that names the
	// stream and the replicas, at once.
	_, err = ensureStream(ctx, js, names, "api!cell2", StreamSettings{Replicas: 3}, logs.logger())
	if err == nil || !strings.Contains(err.Error(), "CELLIN_api_cell2") || !strings.Contains(err.Error(), "replicas 3") {
		t.Errorf("replicas 3 on one server: %v", err)
	}
}

// TestInboxStreamOfAnotherTreeIsRefused: a stream of the same name whose
// metadata names another tree, or a stream of another name that owns the
// cell's subject, is an error at start naming both; a stream made before
// streams carried metadata is adopted.
func TestInboxStreamOfAnotherTreeIsRefused(t *testing.T) {
	js, _ := testJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs logBuf

	// The same name, another tree's metadata ("a_b" and "a" + "_b" ...).
	other := streamConfig(Names{}, "api!cell1", StreamSettings{})
	other.Metadata[metaPrefix] = "tree-b"
	if _, err := js.CreateStream(ctx, other); err != nil {
		t.Fatal(err)
	}
	_, err := ensureStream(ctx, js, Names{}, "api!cell1", StreamSettings{}, logs.logger())
	var conflict *StreamConflictError
	if !errors.As(err, &conflict) || conflict.Have != "tree-b" || conflict.Want != "cellcloud" || !strings.Contains(err.Error(), "broker.prefix") {
		t.Fatalf("another tree's stream: %v", err)
	}

	// The subject owned by a stream of another name.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "HANDMADE", Subjects: []string{"cellcloud.api!cell2.in"}}); err != nil {
		t.Fatal(err)
	}
	_, err = ensureStream(ctx, js, Names{}, "api!cell2", StreamSettings{}, logs.logger())
	if !errors.As(err, &conflict) || conflict.Have != "stream HANDMADE" || conflict.Stream != "CELLIN_api_cell2" {
		t.Fatalf("a subject owned by another stream: %v", err)
	}

	// Under its own prefix the other tree's cell of the same path has its
	// own stream and subject.
	if _, err := ensureStream(ctx, js, Names{"tree-b"}, "api!cell2", StreamSettings{}, logs.logger()); err != nil {
		t.Fatalf("tree-b's stream: %v", err)
	}

	// A stream from before metadata (as every earlier release made it).
	old := jetstream.StreamConfig{Name: "CELLIN_api_cell3", Subjects: []string{"cellcloud.api!cell3.in"}, Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy, Duplicates: 2 * time.Minute}
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	s, err := ensureStream(ctx, js, Names{}, "api!cell3", StreamSettings{}, logs.logger())
	if err != nil {
		t.Fatalf("an earlier release's stream: %v", err)
	}
	if md := s.CachedInfo().Config.Metadata; md[metaPrefix] != "cellcloud" || md[metaCell] != "api!cell3" {
		t.Errorf("metadata after adoption: %v", md)
	}
	if !strings.Contains(logs.String(), "metadata cellcloud_prefix") {
		t.Errorf("adoption logged %q", logs.String())
	}
}

// TestInboxStreamWaitsForTheClusterToPlaceIt: on a three-server cluster
// whose third server has not joined yet, an inbox stream of three
// replicas cannot be placed. A cell starting then says so at once and
// keeps trying, and makes the stream when the server is back; one that
// waits longer than allowed fails naming the stream and the setting. An
// error that waiting cannot cure (three replicas on a lone server) fails
// the start at once.
func TestInboxStreamWaitsForTheClusterToPlaceIt(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server NATS cluster: not in -short")
	}
	// A cluster still forming: two of its three servers are up, and
	// JetStream answers "temporarily unavailable" or "no suitable peers".
	cl := natstest.NewCluster(t, 3, "", "")
	cl.Start("n1")
	cl.Start("n2")
	js := cl.JetStream()
	const path = "api!cell1"
	names := Names{Prefix: "waiting"}
	st := StreamSettings{Replicas: 3}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var quick logBuf
	_, err := ensureStreamWait(ctx, js, names, path, st, 500*time.Millisecond, quick.logger())
	if err == nil || !strings.Contains(err.Error(), "waiting_CELLIN_api_cell1") || !strings.Contains(err.Error(), "broker.stream.replicas = 3") {
		t.Fatalf("gave up with %v", err)
	}
	t.Log(err)

	var logs logBuf
	log := logs.logger()
	type result struct {
		s   jetstream.Stream
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := ensureStreamWait(ctx, js, names, path, st, time.Minute, log)
		done <- result{s, err}
	}()
	testpoll.Eventually(t, 30*time.Second, "the start to say it is waiting for the cluster", func() (bool, string) {
		return strings.Contains(logs.String(), "cannot place the inbox stream yet"), logs.String()
	})
	cl.Start("n3")
	r := <-done
	if r.err != nil {
		t.Fatalf("after n3 came back: %v", r.err)
	}
	if cfg := r.s.CachedInfo().Config; cfg.Replicas != 3 || cfg.Name != "waiting_CELLIN_api_cell1" {
		t.Errorf("made %+v", cfg)
	}
	if !strings.Contains(logs.String(), "the broker placed the inbox stream") {
		t.Errorf("the end of the wait was not logged: %q", logs.String())
	}

	lone, _ := testJS(t)
	_, err = ensureStreamWait(ctx, lone, names, path, st, time.Hour, quick.logger())
	if err == nil || strings.Contains(err.Error(), "waited") || ctx.Err() != nil {
		t.Errorf("three replicas on a lone server: %v (context %v)", err, ctx.Err())
	}
}
