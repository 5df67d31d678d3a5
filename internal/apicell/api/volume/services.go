package volume

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Gatherer asks every cell below the API cell and says which did not
// answer before the deadline.
type Gatherer interface {
	Gather(ctx context.Context, method, requestID string, payload any) (results []wire.Result, missing []string, err error)
}

// servicesHandler is os-services for admins: the API cell's
// cinder-scheduler (its cells service places the volumes) and the
// cinder-volume of each compute cell with a volume role, as the cells
// answer volume_services. A cell that does not answer in time is listed
// down, under the host its service has (cell@file).
type servicesHandler struct{ *base }

func (h *servicesHandler) register(rt *router) {
	rt.handle("GET /v3/{project_id}/os-services", ruleServicesIndex, h.index)
}

// backendName is the one backend of every cell (volume.backend).
const backendName = "file"

// VolumeHost is Cinder's host@backend of the cinder-volume of cell.
func VolumeHost(cell string) string {
	return cell[strings.LastIndex(cell, cellpath.Sep)+1:] + "@" + backendName
}

func (h *servicesHandler) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	host, binary := q.Get("host"), q.Get("binary")
	if binary == "" {
		binary = q.Get("service") // deprecated, binary wins
	}
	now := time.Now().UTC()
	svcs := []wire.VolumeService{{Binary: "cinder-scheduler", Host: h.cfg.Host, Zone: h.cfg.StorageZone, Up: true, UpdatedAt: now}}
	if h.cfg.Cells != nil {
		results, missing, err := h.cfg.Cells.Gather(ctx, wire.MethodVolumeServices, httpkit.RequestID(ctx), struct{}{})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for _, res := range results {
			if res.Cell == h.cfg.Cell {
				continue
			}
			if res.Error != nil {
				if !errors.Is(res.Error, wire.ErrUnknownMethod) {
					missing = append(missing, res.Cell)
				}
				continue
			}
			var got []wire.VolumeService
			if err := json.Unmarshal(res.Payload, &got); err != nil {
				h.log.Warn("a cell's volume services are not readable", "request_id", httpkit.RequestID(ctx), "from", res.Cell, "err", err)
				missing = append(missing, res.Cell)
				continue
			}
			svcs = append(svcs, got...)
		}
		slices.Sort(missing)
		for _, c := range slices.Compact(missing) {
			svcs = append(svcs, wire.VolumeService{Binary: "cinder-volume", Host: VolumeHost(c), Zone: h.cfg.StorageZone})
		}
	}
	v := requestVersion(ctx)
	out := []map[string]any{}
	for _, s := range svcs {
		if (host != "" && s.Host != host) || (binary != "" && s.Binary != binary) {
			continue
		}
		status, state := "enabled", "down"
		if s.Disabled {
			status = "disabled"
		}
		if s.Up {
			state = "up"
		}
		var updated any
		if !s.UpdatedAt.IsZero() {
			updated = s.UpdatedAt.UTC().Format("2006-01-02T15:04:05.000000")
		}
		m := map[string]any{"binary": s.Binary, "host": s.Host, "zone": s.Zone, "status": status, "state": state,
			"updated_at": updated, "disabled_reason": nil}
		if s.Binary == "cinder-volume" {
			m["replication_status"], m["active_backend_id"], m["frozen"] = "disabled", nil, false
			if !v.less(version{3, 49}) {
				m["backend_state"] = map[bool]string{true: "up", false: "down"}[s.BackendUp]
			}
		}
		if !v.less(version{3, 7}) {
			m["cluster"] = nil
		}
		out = append(out, m)
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"services": out})
}
