package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	volumeapi "github.com/cellcloud/cellcloud/internal/apicell/api/volume"
	"github.com/cellcloud/cellcloud/internal/computecell/volume"
	"github.com/cellcloud/cellcloud/internal/computecell/volume/backend"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// volumeRole builds a compute cell's volume manager on its backend and
// hands it the volumes the cells service places on the cell, the actions
// on them, the attachments of them to the cell's instances (whose host
// work goes to hosts) and the volume_services question. It runs in the
// process of the cells role (config validates it).
func (n *Node) volumeRole(sender *cells.Sender, hosts volume.Hosts) (*volume.Manager, role, error) {
	cfg := n.cfg
	be, err := backend.NewFile(backend.FileConfig{Dir: cfg.Volume.Dir, TotalGiB: cfg.Volume.TotalGB})
	if err != nil {
		return nil, role{}, fmt.Errorf("volume backend: %w", err)
	}
	m, err := volume.New(volume.Config{Cell: cfg.Cell, DB: n.DB, Backend: be, Sender: sender,
		Images: imagesAtRoot{svc: n.Cells, root: cellpath.Root(cfg.Cell)}, Zone: cfg.Volume.AvailabilityZone,
		MaxOverSubscription: cfg.Volume.MaxOverSubscriptionRatio, HealInterval: cfg.Cells.HealInterval.D(),
		HealWindow: cfg.Cells.HealWindow.D(), Capacity: n.Cells, Hosts: hosts, Peers: volumePeers{svc: n.Cells}, Logger: n.log})
	if err != nil {
		return nil, role{}, err
	}
	n.Cells.AcceptVolumes(m)
	n.Cells.HandleCast(wire.MethodVolumeAction, 1, 0, m.Action)
	n.Cells.HandleCall(wire.MethodAttachVolume, 1, 0, m.AttachVolume)
	n.Cells.HandleCall(wire.MethodUpdateVolumeAttachment, 1, 0, m.UpdateAttachment)
	n.Cells.HandleCall(wire.MethodAttachmentWrite, 1, 0, m.AttachmentWrite)
	n.Cells.HandleCast(wire.MethodDetachVolume, 1, 0, m.DetachVolume)
	n.Cells.HandleCall(wire.MethodVolumeExport, 1, 0, m.Export)
	n.Cells.HandleCast(wire.MethodVolumeMoveDone, 1, 0, m.MoveDone)
	host := volumeapi.VolumeHost(cfg.Cell)
	n.Cells.HandleCall(wire.MethodVolumeServices, 1, 0, func(ctx context.Context, _ *wire.Envelope) (any, error) {
		// The process that answers is the service: up while it answers;
		// its backend is up when it can tell its room.
		zone, _, err := m.Capacity(ctx)
		if err != nil {
			zone = cfg.Volume.AvailabilityZone
		}
		return []wire.VolumeService{{Binary: "cinder-volume", Host: host, Zone: zone, Up: true,
			UpdatedAt: time.Now().UTC(), BackendUp: err == nil}}, nil
	})
	return m, role{"volume", m}, nil
}

// imagesAtRoot reads and writes the volumes' image data at the root's
// image store, by the calls image_read and image_write. A chunk is half
// a megabyte each way: a call gets a minute, and one the root did not
// answer in time is asked again (twice more, after a second and two):
// both calls are idempotent (the same bytes at the same offset), so a
// loaded tree slows an upload down instead of failing it.
type imagesAtRoot struct {
	svc  *cells.Service
	root string
}

// imageCallTimeout bounds one image data call.
const imageCallTimeout = time.Minute

func (i imagesAtRoot) call(ctx context.Context, method string, payload, out any) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		cctx, cancel := context.WithTimeout(ctx, imageCallTimeout)
		err = i.svc.Call(cctx, i.root, method, "", payload, out)
		cancel()
		if !errors.Is(err, wire.ErrTimeout) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (i imagesAtRoot) ReadImage(ctx context.Context, imageID string, off int64, n int) (wire.ImageChunk, error) {
	var out wire.ImageChunk
	err := i.call(ctx, wire.MethodImageRead, &wire.ImageRead{ImageID: imageID, Offset: off, Length: n}, &out)
	return out, err
}

func (i imagesAtRoot) WriteImage(ctx context.Context, w *wire.ImageWrite) (wire.ImageWritten, error) {
	var out wire.ImageWritten
	err := i.call(ctx, wire.MethodImageWrite, w, &out)
	return out, err
}

// storageZones are the storage zones the compute cells report (their
// volume roles' zones), read from the API cell's cells table: the live
// children's last reports. since is when the API cell started (a child
// never heard from counts as down DownAfter after it).
func storageZones(d *db.DB, downAfter time.Duration, since time.Time, log *slog.Logger) func(context.Context) []string {
	return func(ctx context.Context) []string {
		ns, err := cells.ListNeighbours(ctx, d)
		if err != nil {
			log.Warn("reading the cells' reports for the storage zones", "err", err)
			return nil
		}
		var out []string
		now := time.Now()
		for _, c := range ns {
			if c.Relation != cells.Child || c.Report == nil || cells.IsDown(c, now, downAfter, since) {
				continue
			}
			for z := range c.Report.VolumeZones {
				out = append(out, z)
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
}

// volumePeers reaches the other compute cells' volume roles (volume_export,
// through the cells' common ancestor). A chunk is half a megabyte; a call
// gets a minute.
type volumePeers struct {
	svc *cells.Service
}

func (p volumePeers) ExportVolume(ctx context.Context, cell, requestID string, req *wire.VolumeExport) (wire.VolumeExportAnswer, error) {
	var out wire.VolumeExportAnswer
	cctx, cancel := context.WithTimeout(ctx, imageCallTimeout)
	defer cancel()
	err := p.svc.Call(cctx, cell, wire.MethodVolumeExport, requestID, req, &out)
	return out, err
}
