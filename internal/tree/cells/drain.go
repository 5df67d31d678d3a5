package cells

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DrainInbox moves what is left in cell path's inbox stream on a broker the
// cell has left (from) to its inbox on the broker it now uses (to), then
// deletes the old stream. The cell must run on the new broker already (its
// inbox stream there exists). It returns how many messages it moved.
//
// Nothing is lost, and nothing is applied twice:
//
//   - First the old stream stops taking messages (its subject is changed
//     to one nobody publishes to): a neighbour whose cells table still
//     names the old broker then fails to publish, keeps the message in
//     its outbox and sends it to the new broker once its table names it.
//   - Each message is published to the new broker, under its own message
//     id, before it is deleted from the old stream. A drain that dies in
//     between publishes it again when run again: the new broker's
//     duplicate window, or else the cell's applied ids, drop the copy.
//   - The old stream is deleted only once it is empty. Run again on a
//     broker without the stream, the drain does nothing.
//
// A stream that belongs to another tree or cell (its metadata) is refused.
func DrainInbox(ctx context.Context, from, to jetstream.JetStream, names Names, path string, log *slog.Logger) (int, error) {
	name := names.Stream(path)
	old, err := from.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		log.Info("no inbox stream on the old broker: nothing to drain", "stream", name)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cells: drain: the old broker's stream %s: %w", name, err)
	}
	oldInfo := old.CachedInfo()
	want := streamConfig(names, path, StreamSettings{})
	for _, k := range []string{metaPrefix, metaCell} {
		if v, ok := oldInfo.Config.Metadata[k]; ok && v != want.Metadata[k] {
			return 0, &StreamConflictError{Stream: name, Setting: "metadata " + k + " on the old broker", Have: v, Want: want.Metadata[k], Hint: "the stream is not this cell's: not drained"}
		}
	}
	cur, err := to.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, fmt.Errorf("cells: drain: no inbox stream %s on the new broker: start the cell on it first", name)
	}
	if err != nil {
		return 0, fmt.Errorf("cells: drain: the new broker's stream %s: %w", name, err)
	}
	if cur.CachedInfo().Created.Equal(oldInfo.Created) {
		return 0, fmt.Errorf("cells: drain: the old and the new broker hold the same stream %s: give the broker the cell left as the old one", name)
	}

	// Seal: the old stream takes no more messages, and no consumer of an
	// old process takes any (the messages stay in the stream).
	if err := old.DeleteConsumer(ctx, inboxConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, fmt.Errorf("cells: drain: the old stream %s's consumer: %w", name, err)
	}
	if drained := names.In(path) + ".drained"; len(oldInfo.Config.Subjects) != 1 || oldInfo.Config.Subjects[0] != drained {
		cfg := oldInfo.Config
		cfg.Subjects = []string{drained}
		if _, err := from.UpdateStream(ctx, cfg); err != nil {
			return 0, fmt.Errorf("cells: drain: closing the old stream %s to new messages: %w", name, err)
		}
		log.Info("old inbox stream closed to new messages", "stream", name, "subject", drained)
	}

	moved := 0
	for {
		info, err := old.Info(ctx)
		if err != nil {
			return moved, fmt.Errorf("cells: drain: the old stream %s: %w", name, err)
		}
		if info.State.Msgs == 0 {
			break
		}
		// The next message at or after seq, whatever its subject: an
		// inbox has gaps where messages were acknowledged out of order.
		for seq := info.State.FirstSeq; ; {
			raw, err := old.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return moved, fmt.Errorf("cells: drain: reading message %d of %s: %w", seq, name, err)
			}
			seq = raw.Sequence + 1
			m := nats.NewMsg(names.In(path))
			m.Data = raw.Data
			id := raw.Header.Get(jetstream.MsgIDHeader)
			if id == "" {
				id = name + "-" + strconv.FormatUint(raw.Sequence, 10)
			}
			m.Header.Set(jetstream.MsgIDHeader, id)
			if _, err := to.PublishMsg(ctx, m); err != nil {
				return moved, fmt.Errorf("cells: drain: publishing message %d of %s to the new broker: %w", raw.Sequence, name, err)
			}
			if err := old.DeleteMsg(ctx, raw.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				return moved, fmt.Errorf("cells: drain: deleting message %d of %s from the old broker: %w", raw.Sequence, name, err)
			}
			moved++
		}
	}
	if err := from.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return moved, fmt.Errorf("cells: drain: deleting the old stream %s: %w", name, err)
	}
	log.Info("old inbox stream drained and deleted", "stream", name, "moved", moved)
	return moved, nil
}
