package volume

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/volume/backend"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Volume moves (wire/volume_move.go, docs/architecture.md §3.11). A server
// attaches only volumes of its own cell; the attach of an available volume
// of another cell (A) moves it to the server's cell (B) first:
//
//   - B's attach_volume (attachMoving) records, in its one transaction,
//     the volume's row (status attaching, its import pending, at the
//     version of the API cell's copy plus one), the mapping and the
//     attachment (attaching, their host attach waiting for the import),
//     and answers the device. B sends nothing yet: the copy is A's.
//   - B's worker (runImport) asks A to begin (volume_export Begin: A
//     checks its row and locks it, pending move_out, or refuses), then
//     claims the copy: its row at a version above A's, sent with
//     MovedFrom A, which makes the copy B's. A sends nothing while it is
//     locked, so the claim is newer than anything A sent.
//   - B reads the bytes from A in chunks (zero chunks skipped: the copy
//     stays sparse) into its backend, then in one transaction ends the
//     import (the volume takes the status its attachments give it, the
//     attach's host work follows as for any attach) and sends the durable
//     volume_move_done to A, which deletes its bytes and its row, sending
//     nothing.
//   - A refusal (or a backend failure in B) gives the move up: B removes
//     the attachment, the mapping and its row and sends volume_move_done
//     Failed to A, which unlocks its row and, if it had locked it, sends
//     it at a version above B's with MovedFrom B: the copy is A's again.
//
// While A does not answer, B tries again with a growing delay (up to
// maxImportDelay); the volume stays attaching and nothing is lost. B
// stopped halfway does it again from its row (Begin is idempotent by the
// move's id, the attachment's). The rows of a move's both ends are
// removed for good (no deleted row stays to be healed).

// pendingImport is the pending action of a volume moving in.
const pendingImport = "import"

// Peers reaches the volume roles of the other compute cells.
type Peers interface {
	// ExportVolume is the call volume_export to cell, for request
	// requestID.
	ExportVolume(ctx context.Context, cell, requestID string, req *wire.VolumeExport) (wire.VolumeExportAnswer, error)
}

// moveParams are the parameters of a pending import (in B) or move_out
// (in A).
type moveParams struct {
	// MoveID is the move's id (the attachment's).
	MoveID string `json:"move_id"`
	// From (import) is the exporting cell, To (move_out) the importing one.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Claimed (import): the API cell's copy was claimed.
	Claimed bool `json:"claimed,omitempty"`
}

func readMoveParams(v *celldb.Volume) (moveParams, error) {
	var p moveParams
	if err := json.Unmarshal(v.ActionParams, &p); err != nil {
		return p, fmt.Errorf("volume %s: parameters of %s: %w", v.ID, v.Action, err)
	}
	return p, nil
}

// The delays between tries of an import whose exporting cell does not
// answer.
const (
	minImportDelay = time.Second
	maxImportDelay = 30 * time.Second
)

// importRetries is when each waiting import is tried again.
type importRetries struct {
	mu   sync.Mutex
	next map[string]importRetry
}

type importRetry struct {
	at    time.Time
	delay time.Duration
}

// due reports whether the import of id may be tried now.
func (r *importRetries) due(id string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return now.After(r.next[id].at)
}

// failed puts the next try of id off, twice as long as the last time.
func (r *importRetries) failed(id string, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		r.next = map[string]importRetry{}
	}
	d := min(max(2*r.next[id].delay, minImportDelay), maxImportDelay)
	r.next[id] = importRetry{at: now.Add(d), delay: d}
	return d
}

func (r *importRetries) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.next, id)
}

// attachMoving is attach_volume's transaction for a volume this cell does
// not have and req.Move names: it records the volume to import, the
// mapping and the attachment, and answers the device.
func (m *Manager) attachMoving(ctx context.Context, tx *db.Tx, env *wire.Envelope, req *wire.AttachVolume,
	in *celldb.Instance, log *slog.Logger) (string, error) {
	mv := req.Move
	switch {
	case mv.From == "" || mv.From == m.cfg.Cell:
		return "", wire.Errorf(wire.CodeBadMessage, "attach_volume: a move from %q to %q", mv.From, m.cfg.Cell)
	case mv.SizeGB < 1 || mv.SizeGB > backend.MaxSizeGiB:
		return "", wire.Errorf(wire.CodeBadMessage, "attach_volume: a move of %d GiB", mv.SizeGB)
	case mv.AvailabilityZone != m.cfg.Zone:
		return "", refuseAttach(log, wire.AttachReasonVolumeZone,
			fmt.Sprintf("the volume is in storage zone %q, this cell serves %q", mv.AvailabilityZone, m.cfg.Zone))
	}
	log = log.With("moved_from", mv.From)
	device, err := m.pickDevice(ctx, tx, in.UUID, req.Device, log)
	if err != nil {
		return "", err
	}
	backing, err := m.backing(req.VolumeID)
	if err != nil {
		return "", err
	}
	params, err := json.Marshal(moveParams{MoveID: req.AttachmentID, From: mv.From})
	if err != nil {
		return "", err
	}
	now := m.cfg.Now()
	v := &celldb.Volume{ID: req.VolumeID, ProjectID: mv.ProjectID, UserID: mv.UserID, SizeGB: mv.SizeGB,
		Status: statusAttaching, Version: mv.Version + 1, TypeID: mv.TypeID, TypeName: mv.TypeName,
		AvailabilityZone: mv.AvailabilityZone, Action: pendingImport, ActionParams: params, RequestID: env.RequestID,
		CreatedAt: now, UpdatedAt: now}
	if ok, err := celldb.InsertVolume(ctx, tx, v); err != nil {
		return "", err
	} else if !ok {
		return "", refuseAttach(log, wire.AttachReasonVolumeStatus, "the volume is being recorded by another request")
	}
	if err := celldb.InsertBDM(ctx, tx, &celldb.BDM{UUID: req.BDMUUID, InstanceUUID: in.UUID, VolumeID: v.ID,
		AttachmentID: req.AttachmentID, DeviceName: device, BootIndex: -1, SourceType: "volume", DestinationType: "volume",
		DeleteOnTermination: req.DeleteOnTermination, Tag: req.Tag, VolumeSize: v.SizeGB, CreatedAt: now}); err != nil {
		return "", err
	}
	if err := celldb.InsertAttachment(ctx, tx, &celldb.VolumeAttachment{ID: req.AttachmentID, VolumeID: v.ID,
		InstanceUUID: in.UUID, Status: attachAttaching, Mode: "rw", Mountpoint: device, Pending: pendingAttach,
		RequestID: env.RequestID, Backing: backing}); err != nil {
		return "", err
	}
	record := wire.ActionRecord{UUID: in.UUID, Action: "attach_volume", RequestID: env.RequestID, UserID: req.UserID,
		ProjectID: req.ProjectID, StartTime: now}
	if err := celldb.StartActionWithEvent(ctx, tx, record, "compute_attach_volume", in.Host, now); err != nil {
		return "", err
	}
	m.roomChanged(tx)
	tx.AfterCommit(m.Wake)
	log.Info("volume attach accepted: the volume moves to this cell first", "device", device)
	return device, nil
}

// stepImport is the worker's step of a volume moving in: the import, now
// or, after the exporting cell did not answer, when its delay is over.
func (m *Manager) stepImport(ctx context.Context, v *celldb.Volume) (bool, error) {
	if !m.retry.due(v.ID, m.cfg.Now()) {
		return false, nil
	}
	err := m.runImport(ctx, v)
	var unreachable *exportUnreachable
	if errors.As(err, &unreachable) && ctx.Err() == nil {
		d := m.retry.failed(v.ID, m.cfg.Now())
		m.log.Warn("volume import: the exporting cell did not answer; tried again later", "request_id", v.RequestID,
			"volume", v.ID, "retry_in", d, "err", err)
		return false, nil
	}
	if err == nil {
		m.retry.forget(v.ID)
	}
	return err == nil, err
}

// exportUnreachable is a volume_export call that did not get an answer.
type exportUnreachable struct{ err error }

func (e *exportUnreachable) Error() string { return "volume_export: " + e.err.Error() }
func (e *exportUnreachable) Unwrap() error { return e.err }

// export calls volume_export at the exporting cell.
func (m *Manager) export(ctx context.Context, from, requestID string, req *wire.VolumeExport) (wire.VolumeExportAnswer, error) {
	if m.cfg.Peers == nil {
		return wire.VolumeExportAnswer{Refused: "this cell reaches no other cell"}, nil
	}
	ans, err := m.cfg.Peers.ExportVolume(ctx, from, requestID, req)
	if err != nil {
		return ans, &exportUnreachable{err: err}
	}
	return ans, nil
}

// runImport moves volume v's bytes from the exporting cell, claiming the
// API cell's copy once the exporting cell has locked its row.
func (m *Manager) runImport(ctx context.Context, v *celldb.Volume) error {
	p, err := readMoveParams(v)
	if err != nil {
		return err
	}
	log := m.log.With("request_id", v.RequestID, "volume", v.ID, "moved_from", p.From, "move", p.MoveID)
	begin, err := m.export(ctx, p.From, v.RequestID, &wire.VolumeExport{VolumeID: v.ID, MoveID: p.MoveID, To: m.cfg.Cell, Begin: true})
	if err != nil {
		return err
	}
	if begin.Refused != "" {
		return m.abortImport(ctx, v, p, begin.Refused, log)
	}
	if !p.Claimed {
		if v, err = m.claimImport(ctx, v, p, begin); err != nil {
			return err
		}
		log.Info("volume import begun: the API cell's copy claimed", "version", v.Version)
	}
	if err := m.cfg.Backend.Delete(ctx, v.ID); err != nil && !errors.Is(err, backend.ErrNotFound) {
		return err // a copy left by a run that stopped before its end
	}
	r := &exportReader{ctx: ctx, m: m, from: p.From, requestID: v.RequestID, req: wire.VolumeExport{VolumeID: v.ID, MoveID: p.MoveID, To: m.cfg.Cell},
		size: begin.Size}
	err = m.cfg.Backend.CreateFromImage(ctx, v.ID, begin.SizeGB, r, begin.Size)
	var unreachable *exportUnreachable
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case r.refused != "":
		return m.abortImport(ctx, v, p, r.refused, log)
	case errors.As(err, &unreachable):
		return err
	case err != nil:
		return m.abortImport(ctx, v, p, err.Error(), log)
	}
	return m.finishImport(ctx, v, p, log)
}

// claimImport raises the row's version above the exporting cell's, takes
// its size, and sends it with MovedFrom: the API cell's copy becomes this
// cell's.
func (m *Manager) claimImport(ctx context.Context, v *celldb.Volume, p moveParams, begin wire.VolumeExportAnswer) (*celldb.Volume, error) {
	p.Claimed = true
	params, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var nv *celldb.Volume
	err = m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := celldb.RaiseVolumeVersion(ctx, tx, v.ID, begin.Version); err != nil {
			return err
		}
		var err error
		nv, err = celldb.UpdateVolume(ctx, tx, v.ID, &celldb.VolumeExpect{Action: pendingImport, RequestID: v.RequestID},
			celldb.VolumeChange{SizeGB: &begin.SizeGB, Pending: &celldb.VolumePending{Action: pendingImport, Params: params,
				RequestID: v.RequestID}}, m.cfg.Now())
		if err != nil {
			return err
		}
		return m.sendMoved(ctx, tx, v.RequestID, nv, p.From)
	})
	if err != nil {
		return nil, fmt.Errorf("claiming volume %s from %s: %w", v.ID, p.From, err)
	}
	return nv, nil
}

// finishImport ends the import: the volume takes the status its
// attachments give it (attaching, its host attach next; available when
// its instance went meanwhile), is sent with MovedFrom, and the
// exporting cell is told (durably) to let its copy go.
func (m *Manager) finishImport(ctx context.Context, v *celldb.Volume, p moveParams, log *slog.Logger) error {
	var nv *celldb.Volume
	err := m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		atts, err := celldb.VolumeAttachments(ctx, tx, v.ID)
		if err != nil {
			return err
		}
		nv, err = celldb.UpdateVolume(ctx, tx, v.ID, &celldb.VolumeExpect{Action: pendingImport, RequestID: v.RequestID},
			celldb.VolumeChange{Status: ptr(statusOf(atts)), Fault: ptr(""), ClearPending: true}, m.cfg.Now())
		if err != nil {
			return err
		}
		if err := m.sendMoved(ctx, tx, v.RequestID, nv, p.From); err != nil {
			return err
		}
		return m.cfg.Sender.Send(ctx, tx, p.From, wire.MethodVolumeMoveDone, v.RequestID,
			&wire.VolumeMoveDone{VolumeID: v.ID, MoveID: p.MoveID, To: m.cfg.Cell})
	})
	if err != nil {
		return fmt.Errorf("recording the end of the import of volume %s: %w", v.ID, err)
	}
	log.Info("volume imported", "status", nv.Status, "version", nv.Version)
	return nil
}

// abortImport gives the move up: the copy of the bytes made here goes,
// and in one transaction the volume's attachments (their instance action
// ends in error) and mappings, and its row, and the exporting cell is
// told (durably), which gives the API cell's copy back to itself.
func (m *Manager) abortImport(ctx context.Context, v *celldb.Volume, p moveParams, why string, log *slog.Logger) error {
	if err := m.cfg.Backend.Delete(ctx, v.ID); err != nil && !errors.Is(err, backend.ErrNotFound) {
		return err
	}
	err := m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := celldb.GetVolumeForUpdate(ctx, tx, v.ID)
		if err != nil {
			return err
		}
		if cur.Action != pendingImport || cur.RequestID != v.RequestID {
			return fmt.Errorf("volume %s is no longer being imported by request %s: %w", v.ID, v.RequestID, wire.ErrConflict)
		}
		atts, err := celldb.VolumeAttachments(ctx, tx, v.ID)
		if err != nil {
			return err
		}
		now := m.cfg.Now()
		for _, a := range atts {
			if _, err := celldb.UpdateAttachment(ctx, tx, a.ID, nil, "", celldb.AttachmentChange{Status: ptr(attachDetached),
				ClearPending: true, DetachedAt: &now, Deleted: true}); err != nil {
				return err
			}
			if err := celldb.DeleteBDMsOfAttachment(ctx, tx, a.ID); err != nil {
				return err
			}
			if err := celldb.FinishAction(ctx, tx, a.InstanceUUID, a.RequestID, "Error", why, "", now); err != nil {
				return err
			}
		}
		if err := celldb.DeleteVolumeRow(ctx, tx, v.ID); err != nil {
			return err
		}
		m.roomChanged(tx)
		return m.cfg.Sender.Send(ctx, tx, p.From, wire.MethodVolumeMoveDone, v.RequestID,
			&wire.VolumeMoveDone{VolumeID: v.ID, MoveID: p.MoveID, To: m.cfg.Cell, Failed: true, Version: cur.Version, Fault: why})
	})
	if err != nil {
		return fmt.Errorf("giving up the import of volume %s: %w", v.ID, err)
	}
	m.retry.forget(v.ID)
	log.Warn("volume import given up: the volume stays in its cell, the attach is undone", "why", why)
	return nil
}

// sendMoved sends a volume's state as sendVolume does, with MovedFrom.
func (m *Manager) sendMoved(ctx context.Context, tx *db.Tx, requestID string, v *celldb.Volume, from string) error {
	st := v.State(m.cfg.Cell)
	st.MovedFrom = from
	atts, err := celldb.AttachmentStates(ctx, tx, v.ID)
	if err != nil {
		return err
	}
	st.Attachments = atts[v.ID]
	return m.send(ctx, tx, requestID, &wire.VolumeUpdate{Volumes: []wire.VolumeState{st}})
}

// exportReader reads a volume's size bytes from the exporting cell with
// volume_export calls of wire.ImageChunkSize, in order; a zero chunk
// reads as zeros (the backend leaves it a hole). A refusal is kept in
// refused.
type exportReader struct {
	ctx       context.Context
	m         *Manager
	from      string
	requestID string
	req       wire.VolumeExport
	size      int64
	off       int64
	buf       []byte
	// zeroTo: the bytes up to it are zero (a hole of the source).
	zeroTo  int64
	refused string
}

func (r *exportReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 && r.off < r.zeroTo {
		n := int(min(int64(len(p)), r.zeroTo-r.off))
		clear(p[:n])
		r.off += int64(n)
		return n, nil
	}
	if len(r.buf) == 0 {
		if r.off >= r.size {
			return 0, io.EOF
		}
		n := int(min(int64(wire.ImageChunkSize), r.size-r.off))
		req := r.req
		req.Offset, req.Length = r.off, n
		c, err := r.m.export(r.ctx, r.from, r.requestID, &req)
		switch {
		case err != nil:
			return 0, fmt.Errorf("reading volume %s at %d from %s: %w", req.VolumeID, r.off, r.from, err)
		case c.Refused != "":
			r.refused = c.Refused
			return 0, fmt.Errorf("reading volume %s from %s: %s", req.VolumeID, r.from, c.Refused)
		case c.Zero:
			r.zeroTo = min(max(c.Next, r.off+int64(n)), r.size)
			return r.Read(p)
		case len(c.Data) != n:
			return 0, fmt.Errorf("volume %s: %d bytes read at %d from %s, asked for %d", req.VolumeID, len(c.Data), r.off, r.from, n)
		default:
			r.buf = c.Data
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	r.off += int64(n)
	return n, nil
}

// Export is the call handler of volume_export at the exporting cell:
// Begin checks and locks the volume for the move (in a transaction of
// its own), a chunk read needs the lock of the same move.
func (m *Manager) Export(ctx context.Context, env *wire.Envelope) (any, error) {
	var req wire.VolumeExport
	if err := json.Unmarshal(env.Payload, &req); err != nil {
		return nil, wire.Errorf(wire.CodeBadMessage, "volume_export: %v", err)
	}
	switch {
	case !backend.ValidID(req.VolumeID) || req.MoveID == "" || req.To == "" || req.To == m.cfg.Cell:
		return nil, wire.Errorf(wire.CodeBadMessage, "volume_export needs a volume, a move and another cell")
	case !req.Begin && (req.Length < 1 || req.Length > wire.ImageChunkSize || req.Offset < 0):
		return nil, wire.Errorf(wire.CodeBadMessage, "volume_export: %d bytes at %d", req.Length, req.Offset)
	}
	log := m.log.With("request_id", env.RequestID, "volume", req.VolumeID, "moved_to", req.To, "move", req.MoveID)
	if req.Begin {
		var ans wire.VolumeExportAnswer
		err := m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			var err error
			ans, err = m.beginExport(ctx, tx, env, &req, log)
			return err
		})
		return ans, err
	}
	v, err := celldb.GetVolume(ctx, m.cfg.DB, req.VolumeID)
	if errors.Is(err, celldb.ErrVolumeNotFound) {
		return wire.VolumeExportAnswer{Refused: fmt.Sprintf("Volume %s could not be found.", req.VolumeID)}, nil
	}
	if err != nil {
		return nil, err
	}
	if !lockedFor(v, req.MoveID) {
		return wire.VolumeExportAnswer{Refused: fmt.Sprintf("Volume %s is not being moved by move %s.", v.ID, req.MoveID)}, nil
	}
	return m.readChunk(ctx, v.ID, req.Offset, req.Length)
}

// lockedFor reports whether v is locked for move id.
func lockedFor(v *celldb.Volume, id string) bool {
	if v.Deleted || v.Action != celldb.ActionMoveOut {
		return false
	}
	p, err := readMoveParams(v)
	return err == nil && p.MoveID == id
}

// beginExport checks the volume and locks it for the move, or refuses.
// Its answer is the locked row's version and size.
func (m *Manager) beginExport(ctx context.Context, tx *db.Tx, env *wire.Envelope, req *wire.VolumeExport, log *slog.Logger) (wire.VolumeExportAnswer, error) {
	refuse := func(why string) (wire.VolumeExportAnswer, error) {
		log.Warn("volume move refused by its cell", "why", why)
		return wire.VolumeExportAnswer{Refused: why}, nil
	}
	v, err := celldb.GetVolumeForUpdate(ctx, tx, req.VolumeID)
	switch {
	case errors.Is(err, celldb.ErrVolumeNotFound):
		return refuse(fmt.Sprintf("Volume %s could not be found.", req.VolumeID))
	case err != nil:
		return wire.VolumeExportAnswer{}, err
	case v.Deleted:
		return refuse(fmt.Sprintf("Volume %s could not be found.", req.VolumeID))
	case lockedFor(v, req.MoveID):
		log.Info("volume_export begin repeated: locked for this move already")
		return m.exportAnswer(ctx, v)
	case v.Action != "":
		return refuse(fmt.Sprintf("Volume %s has a pending %s.", v.ID, v.Action))
	case v.Status != statusAvailable:
		return refuse(fmt.Sprintf("Volume %s status must be available, but current status is: %s.", v.ID, v.Status))
	}
	atts, err := celldb.VolumeAttachments(ctx, tx, v.ID)
	if err != nil {
		return wire.VolumeExportAnswer{}, err
	}
	if len(atts) > 0 {
		return refuse(fmt.Sprintf("Volume %s is attached to instance %s.", v.ID, atts[0].InstanceUUID))
	}
	snaps, err := celldb.SnapshotsOfVolume(ctx, tx, v.ID)
	if err != nil {
		return wire.VolumeExportAnswer{}, err
	}
	if len(snaps) > 0 {
		return refuse(fmt.Sprintf("Volume %s must not have snapshots.", v.ID))
	}
	if n, err := celldb.PendingCreatesFrom(ctx, tx, "", v.ID); err != nil {
		return wire.VolumeExportAnswer{}, err
	} else if n > 0 {
		return refuse(fmt.Sprintf("%d volumes are being made from volume %s.", n, v.ID))
	}
	params, err := json.Marshal(moveParams{MoveID: req.MoveID, To: req.To})
	if err != nil {
		return wire.VolumeExportAnswer{}, err
	}
	// Locked: every action on it is dropped until the move ends, and
	// nothing of it is sent (the copy is about to be the importer's).
	nv, err := celldb.UpdateVolume(ctx, tx, v.ID, nil, celldb.VolumeChange{Pending: &celldb.VolumePending{
		Action: celldb.ActionMoveOut, Params: params, RequestID: env.RequestID}}, m.cfg.Now())
	if err != nil {
		return wire.VolumeExportAnswer{}, err
	}
	log.Info("volume locked for its move to another cell", "version", nv.Version)
	return m.exportAnswer(ctx, nv)
}

// exportAnswer is Begin's answer for the locked row v.
func (m *Manager) exportAnswer(ctx context.Context, v *celldb.Volume) (wire.VolumeExportAnswer, error) {
	rc, err := m.cfg.Backend.Open(ctx, v.ID)
	if err != nil {
		return wire.VolumeExportAnswer{}, fmt.Errorf("volume %s to export: %w", v.ID, err)
	}
	defer rc.Close()
	size := int64(v.SizeGB) << 30
	if st, ok := rc.(interface{ Stat() (fs.FileInfo, error) }); ok {
		fi, err := st.Stat()
		if err != nil {
			return wire.VolumeExportAnswer{}, fmt.Errorf("volume %s to export: %w", v.ID, err)
		}
		size = fi.Size()
	}
	return wire.VolumeExportAnswer{Version: v.Version, SizeGB: v.SizeGB, Size: size}, nil
}

// readChunk reads n bytes of volume id at off (fewer at its end).
func (m *Manager) readChunk(ctx context.Context, id string, off int64, n int) (wire.VolumeExportAnswer, error) {
	rc, err := m.cfg.Backend.Open(ctx, id)
	if err != nil {
		return wire.VolumeExportAnswer{}, fmt.Errorf("volume %s to export: %w", id, err)
	}
	defer rc.Close()
	buf := make([]byte, n)
	var got int
	if ra, ok := rc.(io.ReaderAt); ok {
		got, err = ra.ReadAt(buf, off)
	} else if _, err = io.CopyN(io.Discard, rc, off); err == nil {
		got, err = io.ReadFull(rc, buf)
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return wire.VolumeExportAnswer{}, fmt.Errorf("reading volume %s at %d: %w", id, off, err)
	}
	buf = buf[:got]
	if got == n && bytes.Count(buf, []byte{0}) == n {
		return wire.VolumeExportAnswer{Zero: true, Next: nextData(rc, off+int64(n))}, nil
	}
	return wire.VolumeExportAnswer{Data: buf}, nil
}

// seekData is lseek's SEEK_DATA (Linux).
const seekData = 3

// nextData is where the next data at or after off may be in a volume's
// file (SEEK_DATA; a file that has none after off answers its end), or 0
// when the reader cannot tell.
func nextData(rc io.Reader, off int64) int64 {
	f, ok := rc.(interface {
		io.Seeker
		Stat() (fs.FileInfo, error)
	})
	if !ok {
		return 0
	}
	next, err := f.Seek(off, seekData)
	if err != nil {
		// ENXIO: nothing but a hole after off; any other error: unknown.
		if fi, serr := f.Stat(); serr == nil && errors.Is(err, syscall.ENXIO) {
			return fi.Size()
		}
		return 0
	}
	return next
}

// MoveDone is the durable cast handler of volume_move_done at the
// exporting cell. Done: the volume's bytes and its row go, nothing is
// sent (the API cell's copy is the importer's). Failed: the lock goes (if
// it is this move's), and the row is sent at a version above the
// importer's with MovedFrom the importer, which gives the copy back (or
// replaces the status the API cell reserved it with). A repeat of Done,
// or a Failed while the row is locked for another move, changes nothing.
func (m *Manager) MoveDone(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var req wire.VolumeMoveDone
	if err := json.Unmarshal(env.Payload, &req); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "volume_move_done: %v", err)
	}
	if !backend.ValidID(req.VolumeID) || req.MoveID == "" || req.To == "" {
		return wire.Errorf(wire.CodeBadMessage, "volume_move_done needs a volume, a move and a cell")
	}
	log := m.log.With("request_id", env.RequestID, "volume", req.VolumeID, "moved_to", req.To, "move", req.MoveID)
	v, err := celldb.GetVolumeForUpdate(ctx, tx, req.VolumeID)
	if errors.Is(err, celldb.ErrVolumeNotFound) {
		log.Info("volume_move_done for a volume this cell no longer has: nothing to do")
		return nil
	}
	if err != nil {
		return err
	}
	if !lockedFor(v, req.MoveID) {
		if !req.Failed || v.Deleted || v.Action == celldb.ActionMoveOut {
			log.Info("volume_move_done of a move the volume is not locked for: nothing to do", "pending", v.Action)
			return nil
		}
		// A move this cell refused: the API cell reserved its copy
		// (attaching) for it, and the row, sent at a new version,
		// replaces that.
		if err := celldb.RaiseVolumeVersion(ctx, tx, v.ID, req.Version); err != nil {
			return err
		}
		nv, err := celldb.UpdateVolume(ctx, tx, v.ID, nil, celldb.VolumeChange{}, m.cfg.Now())
		if err != nil {
			return err
		}
		log.Info("volume move refused here given up by the importing cell: the volume is sent as it is", "version", nv.Version)
		return m.sendMoved(ctx, tx, env.RequestID, nv, req.To)
	}
	if !req.Failed {
		// The bytes first: a crash before the commit finds them gone on
		// the repeat, and goes on.
		if err := m.cfg.Backend.Delete(ctx, v.ID); err != nil && !errors.Is(err, backend.ErrNotFound) {
			return fmt.Errorf("deleting the bytes of volume %s moved to %s: %w", v.ID, req.To, err)
		}
		if err := celldb.DeleteVolumeRow(ctx, tx, v.ID); err != nil {
			return err
		}
		m.roomChanged(tx)
		log.Info("volume moved to another cell: its bytes and row here are gone")
		return nil
	}
	if err := celldb.RaiseVolumeVersion(ctx, tx, v.ID, req.Version); err != nil {
		return err
	}
	nv, err := celldb.UpdateVolume(ctx, tx, v.ID, nil, celldb.VolumeChange{ClearPending: true}, m.cfg.Now())
	if err != nil {
		return err
	}
	if err := m.sendMoved(ctx, tx, env.RequestID, nv, req.To); err != nil {
		return err
	}
	log.Warn("volume move given up by the importing cell: the volume stays here", "fault", req.Fault, "version", nv.Version)
	return nil
}

// actionWhileMovingOut is a volume_action on a volume locked for a move:
// a snapshot is made in error (as for a volume the cell does not have);
// any other action is dropped, sending nothing (the API cell's copy is
// the importer's, whose state replaces the status the API set).
func (m *Manager) actionWhileMovingOut(ctx context.Context, tx *db.Tx, env *wire.Envelope, a wire.VolumeAction, log *slog.Logger) error {
	if a.Action == wire.SnapshotCreate {
		return m.unknownVolume(ctx, tx, env, a, log)
	}
	log.Warn("action on a volume being moved to another cell: dropped")
	return nil
}
