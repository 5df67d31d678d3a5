package compute

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// os-cells, for operators, in the shape of Nova's cells v1 API (which
// named a cell by its name; here the name is the cell's path): every cell
// of the tree, whether it is up, its capabilities and its capacity.

// cellsHandler is os-cells: the tree of cells below and their capacities.
type cellsHandler struct {
	*base
}

// treeCell is what the API knows of a cell of the tree.
type treeCell struct {
	info wire.CellInfo
	up   bool
}

func cellView(c *treeCell, detail bool) map[string]any {
	v := map[string]any{"name": c.info.Path, "path": c.info.Path, "type": "child", "username": nil, "rpc_host": nil, "rpc_port": nil,
		"state": "down"}
	if c.up {
		v["state"] = "up"
	}
	// A NATS cluster's broker URL is a comma-separated list: the first
	// server's host and port.
	first, _, _ := strings.Cut(c.info.BrokerURL, ",")
	if u, err := url.Parse(first); err == nil && u.Host != "" {
		v["rpc_host"] = u.Hostname()
		if p, err := strconv.Atoi(u.Port()); err == nil {
			v["rpc_port"] = p
		}
	}
	if detail {
		caps := map[string]any{}
		if c.info.Capacity != nil {
			for k, vs := range c.info.Capacity.Capabilities {
				caps[k] = vs
			}
			if len(c.info.Capacity.AvailabilityZones) > 0 {
				caps["availability_zones"] = c.info.Capacity.AvailabilityZones
			}
		}
		v["capabilities"] = caps
		v["hosts"] = c.info.Hosts
		v["instances"] = c.info.Instances
		v["children"] = c.info.Children
		if c.info.Children == nil {
			v["children"] = []string{}
		}
	}
	return v
}

func sortedCells(tree map[string]*treeCell) []*treeCell {
	out := make([]*treeCell, 0, len(tree))
	for _, c := range tree {
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y *treeCell) int {
		switch {
		case x.info.Path < y.info.Path:
			return -1
		case x.info.Path > y.info.Path:
			return 1
		}
		return 0
	})
	return out
}

func (h *cellsHandler) register(rt *router) {
	rule := "os_compute_api:os-cells"
	rt.handle("GET /v2.1/os-cells", rule, h.listCells(false))
	rt.handle("GET /v2.1/os-cells/detail", rule, h.listCells(true))
	rt.handle("GET /v2.1/os-cells/info", rule, h.cellInfo)
	rt.handle("GET /v2.1/os-cells/capacities", rule, h.cellCapacities)
	rt.handle("GET /v2.1/os-cells/{cell}", rule, h.showCell)
	rt.handle("GET /v2.1/os-cells/{cell}/capacities", rule, h.cellCapacities)
}

// gatherCells asks every cell what it is; the cells that did not answer,
// or that their parents say are down, are listed as down.
func (h *cellsHandler) gatherCells(w http.ResponseWriter, r *http.Request) (map[string]*treeCell, error) {
	tree := map[string]*treeCell{}
	missing, err := h.gather(w, r, wire.MethodCellInfo, struct{}{}, func(cell string, raw json.RawMessage) error {
		var info wire.CellInfo
		if err := json.Unmarshal(raw, &info); err != nil {
			return wire.Errorf(wire.CodeBadMessage, "cell_info of %s: %v", cell, err)
		}
		tree[cell] = &treeCell{info: info, up: true}
		return nil
	})
	if err != nil {
		return nil, err
	}
	down := missing
	more, err := h.downCells(r)
	if err != nil {
		return nil, err
	}
	down = append(down, more...)
	// The API cell's own children, with their last reports.
	ns, err := h.childCells(r)
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		if tree[n.Path] == nil {
			tree[n.Path] = &treeCell{info: wire.CellInfo{Path: n.Path, BrokerURL: n.BrokerURL, Capacity: n.Report}, up: true}
		}
		if tree[n.Path].info.BrokerURL == "" {
			tree[n.Path].info.BrokerURL = n.BrokerURL
		}
	}
	for _, c := range tree {
		for _, ch := range c.info.Children {
			if tree[ch] == nil {
				tree[ch] = &treeCell{info: wire.CellInfo{Path: ch}, up: false}
			}
		}
	}
	for _, p := range down {
		if p == h.cfg.Cell {
			continue
		}
		if tree[p] == nil {
			tree[p] = &treeCell{info: wire.CellInfo{Path: p}}
		}
		tree[p].up = false
	}
	delete(tree, h.cfg.Cell)
	return tree, nil
}

// childCells are the API cell's children, from its own cells table, with
// their last capacity reports.
func (h *cellsHandler) childCells(r *http.Request) ([]cells.Neighbour, error) {
	ns, err := cells.ListNeighbours(r.Context(), h.cfg.DB)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ns, func(n cells.Neighbour) bool { return n.Relation != cells.Child }), nil
}

func (h *cellsHandler) listCells(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tree, err := h.gatherCells(w, r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		list := []map[string]any{}
		for _, c := range sortedCells(tree) {
			list = append(list, cellView(c, detail))
		}
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"cells": list})
	}
}

// cellInfo is GET /os-cells/info: the API cell itself.
func (h *cellsHandler) cellInfo(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"cell": map[string]any{"name": h.cfg.Cell, "path": h.cfg.Cell, "type": "self",
		"rpc_host": nil, "rpc_port": 0, "username": nil, "capabilities": map[string]any{}}})
}

// findCell asks a cell what it is; a cell below that does not answer is
// shown down, with what its parent last heard.
func (h *cellsHandler) findCell(w http.ResponseWriter, r *http.Request, path string) (*treeCell, error) {
	if cellpath.Validate(path) != nil || !cellpath.IsAncestor(h.cfg.Cell, path) {
		return nil, notFound("Cell %s doesn't exist.", path)
	}
	tree, err := h.gatherCells(w, r)
	if err != nil {
		return nil, err
	}
	c := tree[path]
	if c == nil {
		return nil, notFound("Cell %s doesn't exist.", path)
	}
	return c, nil
}

// showCell is GET /os-cells/{cell}: the cell, its capabilities and its
// last capacity.
func (h *cellsHandler) showCell(w http.ResponseWriter, r *http.Request) {
	c, err := h.findCell(w, r, r.PathValue("cell"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v := cellView(c, true)
	if c.info.Capacity != nil {
		v["capacity"] = c.info.Capacity
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"cell": v})
}

// cellCapacities is GET /os-cells/capacities (the whole tree) and
// /os-cells/{cell}/capacities: free RAM and disk, and how many of each
// flavor's size still fit, in cells v1's format.
func (h *cellsHandler) cellCapacities(w http.ResponseWriter, r *http.Request) {
	var rep capacity.Report
	if path := r.PathValue("cell"); path != "" && path != h.cfg.Cell {
		c, err := h.findCell(w, r, path)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if c.info.Capacity != nil {
			rep = *c.info.Capacity
		}
	} else {
		ns, err := h.childCells(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		var parts []capacity.Report
		for _, n := range ns {
			if n.Report != nil {
				parts = append(parts, *n.Report)
			}
		}
		rep = capacity.Merge(parts...)
	}
	flavors, err := apidb.ListFlavors(r.Context(), h.cfg.DB)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ram, disk := map[string]int{}, map[string]int{}
	for _, f := range flavors {
		ram[strconv.FormatInt(f.RAMMB, 10)] = rep.Fits(capacity.Flavor{RAMMB: f.RAMMB})
		d := f.RootGB + f.EphemeralGB
		disk[strconv.FormatInt(d*1024, 10)] = rep.Fits(capacity.Flavor{DiskGB: d})
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"cell": map[string]any{"capacities": map[string]any{
		"ram_free":  map[string]any{"total_mb": rep.FreeRAMMB, "units_by_mb": ram},
		"disk_free": map[string]any{"total_mb": rep.FreeDiskGB * 1024, "units_by_mb": disk},
	}}})
}
