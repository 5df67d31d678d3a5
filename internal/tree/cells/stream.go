package cells

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultPrefix is the subject prefix of a tree that names none: the
// subjects and streams of trees made before the prefix could be set keep
// their names under it.
const DefaultPrefix = "cellcloud"

// Names are a tree's subjects and stream names on its brokers: every one
// begins with the tree's prefix (broker.prefix), so that several trees may
// share one NATS account, and carries the cell path, so that several
// cells may share one broker. Every cell of a tree has the same prefix: a
// cell publishes into its neighbours' subjects under its own.
type Names struct{ Prefix string }

func (n Names) prefix() string {
	if n.Prefix == "" {
		return DefaultPrefix
	}
	return n.Prefix
}

// In is the subject of cell path's durable inbox.
func (n Names) In(path string) string { return n.prefix() + "." + path + ".in" }

// Call is the subject of cell path's calls and their replies.
func (n Names) Call(path string) string { return n.prefix() + "." + path + ".call" }

// Nudge is where a role in another process of cell path publishes to wake
// the cells service's outbox relay after it has enqueued messages.
func (n Names) Nudge(path string) string { return n.prefix() + "." + path + ".nudge" }

// Stream is the JetStream stream that holds cell path's durable inbox:
// CELLIN_<path> under the default prefix (the name it always had),
// <prefix>_CELLIN_<path> under another. Cell names hold no "_", so the
// mapping of "!" cannot collide; a prefix with "_" in it could make
// another tree's name, which the stream's metadata tells apart.
func (n Names) Stream(path string) string {
	s := "CELLIN_" + strings.ReplaceAll(path, "!", "_")
	if p := n.prefix(); p != DefaultPrefix {
		s = p + "_" + s
	}
	return s
}

// Metadata keys of an inbox stream: whose it is.
const (
	metaPrefix = "cellcloud_prefix"
	metaCell   = "cellcloud_cell"
)

// StreamSettings are the storage settings of a cell's inbox stream
// (broker.stream); the zero value is one replica on file, unbounded.
type StreamSettings struct {
	Replicas int
	// Memory keeps the stream in memory rather than on file.
	Memory   bool
	MaxBytes int64
	MaxMsgs  int64
	MaxAge   time.Duration
}

// streamConfig is the inbox stream cell path wants.
func streamConfig(names Names, path string, st StreamSettings) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:       names.Stream(path),
		Subjects:   []string{names.In(path)},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.WorkQueuePolicy,
		Duplicates: 2 * time.Minute,
		Replicas:   max(st.Replicas, 1),
		MaxBytes:   -1,
		MaxMsgs:    -1,
		MaxAge:     st.MaxAge,
		Metadata:   map[string]string{metaPrefix: names.prefix(), metaCell: path},
	}
	if st.Memory {
		cfg.Storage = jetstream.MemoryStorage
	}
	if st.MaxBytes > 0 {
		cfg.MaxBytes = st.MaxBytes
	}
	if st.MaxMsgs > 0 {
		cfg.MaxMsgs = st.MaxMsgs
	}
	if st.MaxBytes > 0 || st.MaxMsgs > 0 {
		// A full inbox refuses new messages, which wait in the senders'
		// outboxes; the default (discard the oldest) would drop messages
		// never applied.
		cfg.Discard = jetstream.DiscardNew
	}
	return cfg
}

// StreamConflictError is an inbox stream that exists with a setting that
// cannot be changed in place, or that belongs to something else: the cell
// does not start rather than recreate it (and lose what it holds) or use
// another's.
type StreamConflictError struct {
	Stream  string
	Setting string
	Have    string
	Want    string
	Hint    string
}

func (e *StreamConflictError) Error() string {
	s := fmt.Sprintf("cells: inbox stream %s: %s is %s on the broker, the configuration wants %s", e.Stream, e.Setting, e.Have, e.Want)
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

// How long a cell waits at start for a JetStream cluster that cannot yet
// place or answer for its inbox stream, and how often it says so.
const (
	streamWait        = 30 * time.Second
	streamWaitLogEach = 5 * time.Second
	streamAttempt     = 5 * time.Second
)

// clusterNotReady says err is a JetStream cluster that cannot do it now but
// may in a moment: no meta leader yet (or an election), fewer servers
// online than the stream's replicas (a cluster still forming, or a server
// down), or no answer in time.
func clusterNotReady(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.ErrorCode == jsNoSuitablePeers || api.ErrorCode == jsClusterNotAvailable || api.Code == 503
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}

// JetStream API error codes (nats-server's errors.json) that nats.go does
// not name.
const (
	jsNoSuitablePeers     jetstream.ErrorCode = 10005 // "no suitable peers for placement"
	jsClusterNotAvailable jetstream.ErrorCode = 10008 // "JetStream system temporarily unavailable"
)

// ensureStreamWait is ensureStream, tried again while the cluster is not
// ready (clusterNotReady) for at most wait: a cell started with its
// cluster, or while one of its servers restarts, waits for it rather than
// failing. The first refusal is logged at once, then every
// streamWaitLogEach; giving up names the stream, the replicas it wants and
// the cluster's last answer.
func ensureStreamWait(ctx context.Context, js jetstream.JetStream, names Names, path string, st StreamSettings, wait time.Duration, log *slog.Logger) (jetstream.Stream, error) {
	start := time.Now()
	var logged time.Time
	for {
		actx, cancel := context.WithTimeout(ctx, streamAttempt)
		stream, err := ensureStream(actx, js, names, path, st, log)
		cancel()
		if err == nil {
			if !logged.IsZero() {
				log.Info("the broker placed the inbox stream", "stream", names.Stream(path), "after", time.Since(start).Round(time.Millisecond))
			}
			return stream, nil
		}
		if ctx.Err() != nil || !clusterNotReady(err) {
			return nil, err
		}
		waited := time.Since(start)
		if waited >= wait {
			return nil, fmt.Errorf("%w (waited %s: a NATS cluster needs at least broker.stream.replicas = %d JetStream servers online, one of them its leader)",
				err, waited.Round(time.Second), streamConfig(names, path, st).Replicas)
		}
		if logged.IsZero() || time.Since(logged) >= streamWaitLogEach {
			logged = time.Now()
			log.Warn("the broker cannot place the inbox stream yet; retrying", "stream", names.Stream(path),
				"replicas", streamConfig(names, path, st).Replicas, "err", err, "waited", waited.Round(time.Second), "gives_up_in", (wait - waited).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cells: inbox stream %s: %w", names.Stream(path), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ensureStream makes cell path's inbox stream what the settings say,
// without ever recreating it: a missing stream is created; one with these
// settings is left alone; one whose replicas, bounds or metadata differ is
// updated in place (logged with the old and new values); one whose storage
// or retention differ, or that belongs to another tree or cell, is a
// StreamConflictError. It returns the stream.
func ensureStream(ctx context.Context, js jetstream.JetStream, names Names, path string, st StreamSettings, log *slog.Logger) (jetstream.Stream, error) {
	want := streamConfig(names, path, st)
	stream, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// Another stream (another tree under the same prefix, or a
		// stream made by hand) may own the subject already.
		if other, err := js.StreamNameBySubject(ctx, want.Subjects[0]); err == nil && other != want.Name {
			return nil, &StreamConflictError{Stream: want.Name, Setting: "the owner of subject " + want.Subjects[0], Have: "stream " + other, Want: "stream " + want.Name,
				Hint: "another tree on this NATS account uses the same prefix: give each tree its own broker.prefix"}
		}
		stream, err = js.CreateStream(ctx, want)
		if err != nil {
			return nil, fmt.Errorf("cells: creating inbox stream %s (replicas %d, storage %s): %w", want.Name, want.Replicas, want.Storage, err)
		}
		log.Info("inbox stream created", "stream", want.Name, "replicas", want.Replicas, "storage", want.Storage.String())
		return stream, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cells: inbox stream %s: %w", want.Name, err)
	}
	have := stream.CachedInfo().Config
	if err := streamConflict(have, want); err != nil {
		return nil, err
	}
	changes := streamChanges(have, want)
	if len(changes) == 0 {
		return stream, nil
	}
	upd := have
	upd.Replicas, upd.MaxBytes, upd.MaxMsgs, upd.MaxAge, upd.Discard, upd.Duplicates = want.Replicas, want.MaxBytes, want.MaxMsgs, want.MaxAge, want.Discard, want.Duplicates
	upd.Metadata = maps.Clone(have.Metadata)
	if upd.Metadata == nil {
		upd.Metadata = map[string]string{}
	}
	maps.Copy(upd.Metadata, want.Metadata)
	stream, err = js.UpdateStream(ctx, upd)
	if err != nil {
		return nil, fmt.Errorf("cells: updating inbox stream %s (%s): %w", want.Name, strings.Join(changes, ", "), err)
	}
	log.Info("inbox stream updated in place", "stream", want.Name, "changes", strings.Join(changes, ", "))
	return stream, nil
}

// streamConflict is what makes an existing stream unusable as the inbox
// want describes: nil when it may be used (after an update).
func streamConflict(have, want jetstream.StreamConfig) error {
	conflict := func(setting, h, w, hint string) error {
		return &StreamConflictError{Stream: want.Name, Setting: setting, Have: h, Want: w, Hint: hint}
	}
	// A stream made before streams had metadata has none: it is this
	// cell's if its subjects are.
	if p, ok := have.Metadata[metaPrefix]; ok && p != want.Metadata[metaPrefix] {
		return conflict("the tree prefix in its metadata", p, want.Metadata[metaPrefix], "the stream belongs to another tree on this NATS account: give each tree its own broker.prefix")
	}
	if c, ok := have.Metadata[metaCell]; ok && c != want.Metadata[metaCell] {
		return conflict("the cell in its metadata", c, want.Metadata[metaCell], "the stream belongs to another cell")
	}
	if !slices.Equal(have.Subjects, want.Subjects) {
		return conflict("subjects", strings.Join(have.Subjects, ","), strings.Join(want.Subjects, ","), "the stream belongs to something else (another tree, or made by hand): give each tree its own broker.prefix")
	}
	if have.Retention != want.Retention {
		return conflict("retention", have.Retention.String(), want.Retention.String(), "retention cannot change in place: the stream was not made by cellcloud")
	}
	if have.Storage != want.Storage {
		return conflict("storage (broker.stream.storage)", have.Storage.String(), want.Storage.String(),
			"storage cannot change in place, and the stream holds the cell's messages not yet applied: set it back, or move the cell to a broker that has none (docs/operations.md, moving a cell to another broker)")
	}
	return nil
}

// streamChanges lists, as "setting old -> new", what an update in place
// changes.
func streamChanges(have, want jetstream.StreamConfig) []string {
	var out []string
	diff := func(name string, h, w any) {
		if h != w {
			out = append(out, fmt.Sprintf("%s %v -> %v", name, h, w))
		}
	}
	diff("replicas", have.Replicas, want.Replicas)
	diff("max_bytes", have.MaxBytes, want.MaxBytes)
	diff("max_msgs", have.MaxMsgs, want.MaxMsgs)
	diff("max_age", have.MaxAge, want.MaxAge)
	diff("discard", have.Discard.String(), want.Discard.String())
	diff("duplicates", have.Duplicates, want.Duplicates)
	for _, k := range []string{metaPrefix, metaCell} {
		if have.Metadata[k] != want.Metadata[k] {
			out = append(out, fmt.Sprintf("metadata %s %q -> %q", k, have.Metadata[k], want.Metadata[k]))
		}
	}
	return out
}
