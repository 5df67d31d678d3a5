package compute

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The operator APIs name what lives in a cell (hosts, services,
// hypervisors) as Nova's cells v1 did: "PATH@ITEM", the cell's path and
// the item's name or id in that cell, e.g. "api!cell1@7". Such a name says
// where to route a request, so it goes to that cell alone.

// cellItemSep separates the cell path from the item (Nova's CELL_ITEM_SEP).
const cellItemSep = "@"

// qualify names an item of a cell.
func qualify(cell, item string) string { return cell + cellItemSep + item }

// missingCellsHeader names, on a gathered answer, the cells that did not
// answer in time: the answer holds what the others said.
const missingCellsHeader = "X-Cellcloud-Missing-Cells"

// decodeList decodes a cell's JSON list answer.
func decodeList[T any](raw json.RawMessage) ([]T, error) {
	var out []T
	if len(raw) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, wire.Errorf(wire.CodeBadMessage, "a cell's answer: %v", err)
	}
	return out, nil
}

// downCells reads which cells are down now.
func (h *base) downCells(r *http.Request) (downSet, error) {
	if h.cfg.DownCells == nil {
		return nil, nil
	}
	return h.cfg.DownCells.Down(r.Context())
}

// downSet is the cells below that are down.
type downSet []string

// holds reports whether the instance's cell is down (or below one that
// is), and names the down cell.
func (d downSet) holds(in *apidb.Instance) (string, bool) {
	return d.under(in.Cell)
}

// under reports whether cell is down (or below one that is), and names
// the down cell.
func (d downSet) under(cell string) (string, bool) {
	if cell == "" {
		return "", false
	}
	for _, c := range d {
		if cellpath.Contains(c, cell) {
			return c, true
		}
	}
	return "", false
}

// splitQualified splits "PATH@ITEM" at its last "@" and checks that PATH
// is a cell below this API cell; ok is false for anything else.
func (h *base) splitQualified(s string) (cell, item string, ok bool) {
	i := strings.LastIndex(s, cellItemSep)
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	cell, item = s[:i], s[i+1:]
	if cellpath.Validate(cell) != nil || !cellpath.IsAncestor(h.cfg.Cell, cell) {
		return "", "", false
	}
	return cell, item, true
}

// knownCell reports whether a cell has told the API cell of its hosts.
func (h *base) knownCell(r *http.Request, cell string) (bool, error) {
	var n int
	err := h.cfg.DB.QueryRow(r.Context(), `SELECT COUNT(*) FROM host_mappings WHERE cell = ?`, cell).Scan(&n)
	return n > 0, err
}

// gather asks every cell below and decodes each cell's answer (a JSON
// list) with each. Cells that did not answer, or answered with an error,
// are returned as missing (and logged); the caller answers with the rest.
func (h *base) gather(w http.ResponseWriter, r *http.Request, method string, payload any, each func(cell string, raw json.RawMessage) error) ([]string, error) {
	ctx := r.Context()
	results, missing, err := h.cfg.Caller.Gather(ctx, method, httpkit.RequestID(ctx), payload)
	if err != nil {
		return nil, err
	}
	for _, res := range results {
		if res.Cell == h.cfg.Cell {
			continue // the API cell has no hosts
		}
		if res.Error != nil {
			if !errors.Is(res.Error, wire.ErrUnknownMethod) {
				h.log.Warn("a cell answered with an error", "request_id", httpkit.RequestID(ctx), "method", method, "from", res.Cell, "err", res.Error)
				missing = append(missing, res.Cell)
			}
			continue
		}
		if err := each(res.Cell, res.Payload); err != nil {
			return nil, err
		}
	}
	slices.Sort(missing)
	missing = slices.Compact(missing)
	if len(missing) > 0 {
		h.log.Warn("cells missing from an answer", "request_id", httpkit.RequestID(ctx), "method", method, "missing", missing)
		w.Header().Set(missingCellsHeader, strings.Join(missing, ","))
	}
	return missing, nil
}

// callCell makes a call to the cell that holds an item; a cell's error
// becomes the API's by the one table (fromCell), and a cell that does not
// answer a 503 naming it. A cell known to be down (or below one that is)
// is not asked: the 503 naming it comes at once, not at the call's
// deadline.
func (h *base) callCell(r *http.Request, cell, method string, payload, out any) error {
	if err := h.refuseDown(r, cell, func(down string) string {
		return "Cell " + down + " is not responding; try again later."
	}); err != nil {
		return err
	}
	ctx := r.Context()
	err := h.cfg.Caller.Call(ctx, cell, method, httpkit.RequestID(ctx), payload, out)
	return fromCell(err, func(*wire.Error) string { return "Cell " + cell + " did not answer; try again later." })
}

// callInstanceCell makes a call to the cell of an instance: callCell, but
// the 503 speaks of the instance's cell.
func (h *base) callInstanceCell(r *http.Request, in *apidb.Instance, method string, payload, out any) error {
	if err := h.refuseDown(r, in.Cell, func(down string) string {
		return "Cell " + down + " is not responding, hence the information of server " + in.UUID + " held there is not available; try again later."
	}); err != nil {
		return err
	}
	ctx := r.Context()
	err := h.cfg.Caller.Call(ctx, in.Cell, method, httpkit.RequestID(ctx), payload, out)
	return fromCell(err, func(we *wire.Error) string { return "The cell of this instance did not answer: " + we.Message })
}

// refuseDown is the 503 of a call to cell when cell is down, or below a
// cell that is (message names the down cell); nil when it is up.
func (h *base) refuseDown(r *http.Request, cell string, message func(down string) string) error {
	down, err := h.downCells(r)
	if err != nil {
		return err
	}
	if c, ok := down.under(cell); ok {
		return fault(http.StatusServiceUnavailable, message(c))
	}
	return nil
}

// mappingCell finds the cell of a service or hypervisor UUID.
func (h *base) mappingCell(r *http.Request, uuid, kind string) (string, bool, error) {
	m, err := apidb.GetHostMapping(r.Context(), h.cfg.DB, uuid, kind)
	if errors.Is(err, apidb.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return m.Cell, true, nil
}

// hostCell resolves a host name as os-services takes it: "PATH@HOST", or
// a bare host name that only one cell has.
func (h *base) hostCell(r *http.Request, host string) (cell, bare string, err error) {
	if c, bare, ok := h.splitQualified(host); ok {
		return c, bare, nil
	}
	cells, err := apidb.HostCells(r.Context(), h.cfg.DB, host)
	if err != nil {
		return "", "", err
	}
	switch len(cells) {
	case 0:
		return "", "", notFound("Host '%s' is not mapped to any cell", host)
	case 1:
		return cells[0], host, nil
	}
	return "", "", bad("Host '%s' is in more than one cell (%s): name it PATH@HOST, as os-services lists it.", host, strings.Join(cells, ", "))
}
