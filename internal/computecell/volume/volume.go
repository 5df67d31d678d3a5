package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/volume/backend"
	"github.com/cellcloud/cellcloud/internal/computecell/workpool"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Sender sends a durable message from this cell inside a transaction (the
// cells service's outbox).
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, target, method, requestID string, payload any) error
}

// Images reaches the API cell's image store: ReadImage is the call
// image_read (a chunk of at most n bytes of the image from off), WriteImage
// the call image_write (a chunk of an image being uploaded from a volume).
type Images interface {
	ReadImage(ctx context.Context, imageID string, off int64, n int) (wire.ImageChunk, error)
	WriteImage(ctx context.Context, w *wire.ImageWrite) (wire.ImageWritten, error)
}

// CapacityNotifier is told that the cell's volume room changed (a volume
// or snapshot made or deleted), so that the cell reports it up soon (the
// cells service's ReportSoon).
type CapacityNotifier interface {
	ReportSoon()
}

// Config configures a Manager.
type Config struct {
	// Cell is this cell's path (required).
	Cell string
	// DB is the cell database, migrated with celldb.Migrations (required).
	DB *db.DB
	// Backend holds the volumes' bytes (required).
	Backend backend.Backend
	// Sender sends volume_update to the root (required).
	Sender Sender
	// Images reads the images of volumes made from one and writes the
	// images uploaded from a volume (required).
	Images Images
	// Zone is the storage availability zone of the cell's volumes
	// (Cinder's storage_availability_zone; default "nova").
	Zone string
	// MaxOverSubscription is Cinder's max_over_subscription_ratio: the
	// GiB the cell may provision are this many times the backend's total
	// (default 20).
	MaxOverSubscription float64
	// HealInterval and HealWindow: every HealInterval the volumes and
	// snapshots changed in the last HealWindow are sent up again
	// (defaults 60 s and 10 min).
	HealInterval time.Duration
	HealWindow   time.Duration
	// Workers bounds the volumes worked on at once (default 8); the
	// operations on one volume and its snapshots run one at a time.
	Workers int
	// PollInterval is how often pending work is looked for without a
	// wake-up (default 1 s).
	PollInterval time.Duration
	// Capacity is told when the room changed (optional).
	Capacity CapacityNotifier
	// Hosts does the attachments' host work: the compute agent of an
	// instance's host (optional: none, and an attach or a detach needs
	// no host work).
	Hosts Hosts
	// Peers reaches the other compute cells' volume roles, for the moves
	// of volumes to this cell (optional: none, and a volume of another
	// cell is not attached: its import fails and the move is given up).
	Peers Peers
	// MaxDiskDevices is Nova's max_disk_devices_to_attach: the most disk
	// devices an instance may have, its root counted (0: no limit).
	MaxDiskDevices int
	Logger         *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Manager is a compute cell's volume role: it keeps the cell's volumes and
// snapshots (their rows in the cell database and their bytes in the
// backend) and tells the API cell of every change.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	pool *workpool.Pool
	// retry is when each import whose exporting cell did not answer is
	// tried again (move.go).
	retry importRetries
}

// New validates cfg and fills its defaults. The manager does no work until
// Start; its handlers may be called before.
func New(cfg Config) (*Manager, error) {
	if cfg.DB == nil || cfg.Backend == nil || cfg.Sender == nil || cfg.Images == nil {
		return nil, errors.New("volume: database, backend, sender and images are required")
	}
	if err := cellpath.Validate(cfg.Cell); err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	if cfg.Zone == "" {
		cfg.Zone = "nova"
	}
	if cfg.MaxOverSubscription == 0 {
		cfg.MaxOverSubscription = 20
	}
	if cfg.MaxOverSubscription < 1 || math.IsNaN(cfg.MaxOverSubscription) || math.IsInf(cfg.MaxOverSubscription, 0) {
		return nil, fmt.Errorf("volume: max over-subscription ratio %v must be at least 1", cfg.MaxOverSubscription)
	}
	if cfg.HealInterval <= 0 {
		cfg.HealInterval = time.Minute
	}
	if cfg.HealWindow <= 0 {
		cfg.HealWindow = 10 * time.Minute
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "volume")}
	m.pool = workpool.New(workpool.Config{Workers: cfg.Workers, PollInterval: cfg.PollInterval, Poll: m.poll})
	return m, nil
}

// Start records the backings the attachments made before celldb
// migration 14 lack, then runs the worker loop, which first finishes the
// work a previous process left pending, and the heal loop.
func (m *Manager) Start(ctx context.Context) error {
	if err := m.fillBackings(ctx); err != nil {
		return err
	}
	m.pool.Start(m.healLoop)
	return nil
}

// Shutdown stops the loops and waits for the work in flight, which stops
// where it is: its row stays pending and the next start does it again.
// It may be called more than once.
func (m *Manager) Shutdown(context.Context) error {
	m.pool.Shutdown()
	return nil
}

// Wake makes the worker look for pending work now.
func (m *Manager) Wake() { m.pool.Wake() }

// Capacity is the room for volumes in the cell's storage zone, for its
// capacity report: FreeGB is Cinder's thin-provisioning virtual free,
// floor(total × MaxOverSubscription) − provisioned, not below zero, where
// provisioned is the larger of what the backend holds and what the cell
// database has promised (volumes being made count before their bytes
// exist). The cell has one backend, so MaxFreeGB is FreeGB.
func (m *Manager) Capacity(ctx context.Context) (zone string, room capacity.VolumeRoom, err error) {
	bc, err := m.cfg.Backend.Capacity(ctx)
	if err != nil {
		return "", room, fmt.Errorf("volume capacity: %w", err)
	}
	promised, err := celldb.ProvisionedVolumeGB(ctx, m.cfg.DB)
	if err != nil {
		return "", room, fmt.Errorf("volume capacity: %w", err)
	}
	provisioned := max(bc.ProvisionedGiB, promised)
	free := max(int64(math.Floor(float64(bc.TotalGiB)*m.cfg.MaxOverSubscription))-provisioned, 0)
	return m.cfg.Zone, capacity.VolumeRoom{TotalGB: bc.TotalGiB, FreeGB: free, MaxFreeGB: free}, nil
}

// send is the one place a volume_update leaves the cell.
func (m *Manager) send(ctx context.Context, tx *db.Tx, requestID string, u *wire.VolumeUpdate) error {
	return m.cfg.Sender.Send(ctx, tx, cellpath.Root(m.cfg.Cell), wire.MethodVolumeUpdate, requestID, u)
}

// sendVolume sends one volume's state, with its attachments as they are
// in tx.
func (m *Manager) sendVolume(ctx context.Context, tx *db.Tx, requestID string, v *celldb.Volume, snaps ...*celldb.VolumeSnapshot) error {
	return m.sendVolumeWith(ctx, tx, requestID, v, nil, snaps...)
}

// sendVolumeWith is sendVolume with the state changed by edit (when not
// nil) before it goes.
func (m *Manager) sendVolumeWith(ctx context.Context, tx *db.Tx, requestID string, v *celldb.Volume, edit func(*wire.VolumeState), snaps ...*celldb.VolumeSnapshot) error {
	st, err := m.volumeState(ctx, tx, v)
	if err != nil {
		return err
	}
	if edit != nil {
		edit(&st)
	}
	u := &wire.VolumeUpdate{Volumes: []wire.VolumeState{st}}
	for _, s := range snaps {
		u.Snapshots = append(u.Snapshots, s.State(m.cfg.Cell))
	}
	return m.send(ctx, tx, requestID, u)
}

// volumeState is the volume's state as volume_update carries it, with
// its attachments as they are in tx.
func (m *Manager) volumeState(ctx context.Context, tx *db.Tx, v *celldb.Volume) (wire.VolumeState, error) {
	st := v.State(m.cfg.Cell)
	atts, err := celldb.AttachmentStates(ctx, tx, v.ID)
	if err != nil {
		return st, err
	}
	st.Attachments = atts[v.ID]
	return st, nil
}

// sendSnapshot sends one snapshot's state.
func (m *Manager) sendSnapshot(ctx context.Context, tx *db.Tx, requestID string, s *celldb.VolumeSnapshot) error {
	return m.send(ctx, tx, requestID, &wire.VolumeUpdate{Snapshots: []wire.SnapshotState{s.State(m.cfg.Cell)}})
}

// roomChanged tells the capacity notifier, once tx commits.
func (m *Manager) roomChanged(tx *db.Tx) {
	if m.cfg.Capacity != nil {
		tx.AfterCommit(m.cfg.Capacity.ReportSoon)
	}
}

// The statuses (Cinder's).
const (
	statusCreating       = "creating"
	statusAvailable      = "available"
	statusInUse          = "in-use"
	statusError          = "error"
	statusDeleting       = "deleting"
	statusErrorDeleting  = "error_deleting"
	statusExtending      = "extending"
	statusErrorExtending = "error_extending"
	statusUploading      = "uploading"
	statusDeleted        = "deleted"
)

// The pending operations of a row: a volume's Action is "create" or one
// of the wire actions (delete, extend, upload_image); a snapshot's
// Pending is one of these two.
const (
	pendingCreate = "create"
	pendingDelete = "delete"
)

// progress is a snapshot's progress in Cinder's form.
func progress(status string) string {
	if status == statusAvailable {
		return "100%"
	}
	return "0%"
}

func ptr[T any](v T) *T { return &v }
