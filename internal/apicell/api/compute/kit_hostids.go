package compute

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
)

// Services and hypervisors are identified as Nova identifies them: below
// microversion 2.53 by an integer, from 2.53 by a UUID. Each cell numbers
// its own services from 1, so the integers a client sees are the API
// cell's instead: it numbers every service and compute node as its host
// mapping arrives, uniquely in the whole cloud. On input, below 2.53, the
// cell-qualified "PATH@ID" of the cell's own number is taken too.

// hostIDs renders the ids of services and hypervisors at a microversion.
type hostIDs struct {
	v    Version
	nums map[string]int64
}

// hostIDs reads the numbers of the services or hypervisors with these
// UUIDs, when the request's microversion shows numbers.
func (h *base) hostIDs(r *http.Request, uuids []string) (hostIDs, error) {
	v := apiVersion(r.Context())
	if v.AtLeast(v253) || len(uuids) == 0 {
		return hostIDs{v: v}, nil
	}
	nums, err := apidb.HostMappingNums(r.Context(), h.cfg.DB, uuids)
	return hostIDs{v: v, nums: nums}, err
}

// of is the id of the service or hypervisor with this cell, number in its
// cell and UUID: its UUID from 2.53; below, the API cell's number, or,
// until its mapping has arrived, the cell-qualified "PATH@ID".
func (ids hostIDs) of(cell string, id int64, uuid string) any {
	if ids.v.AtLeast(v253) {
		return uuid
	}
	if n := ids.nums[uuid]; n > 0 {
		return n
	}
	return qualify(cell, strconv.FormatInt(id, 10))
}

// str is of as a string (a marker, a link).
func (ids hostIDs) str(cell string, id int64, uuid string) string {
	switch x := ids.of(cell, id, uuid).(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	default:
		return x.(string)
	}
}

// oldHostID is a service or hypervisor named by an id below 2.53: its cell
// and, to ask the cell with, its UUID (an integer id) or its number in the
// cell (a cell-qualified id).
type oldHostID struct {
	cell string
	uuid string
	id   int64
}

// errNotAnID is resolveOldHostID's answer to an id that is neither an
// integer nor cell-qualified.
var errNotAnID = errors.New("not an integer id")

// resolveOldHostID resolves an id given below 2.53; ok is false when no
// service or hypervisor of the kind has it.
func (h *base) resolveOldHostID(r *http.Request, id, kind string) (oldHostID, bool, error) {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		if n <= 0 {
			return oldHostID{}, false, nil
		}
		m, err := apidb.GetHostMappingByNum(r.Context(), h.cfg.DB, n, kind)
		if errors.Is(err, apidb.ErrNotFound) {
			return oldHostID{}, false, nil
		}
		if err != nil {
			return oldHostID{}, false, err
		}
		return oldHostID{cell: m.Cell, uuid: m.UUID}, true, nil
	}
	c, item, ok := h.splitQualified(id)
	if !ok {
		return oldHostID{}, false, errNotAnID
	}
	n, err := strconv.ParseInt(item, 10, 64)
	if err != nil {
		return oldHostID{}, false, errNotAnID
	}
	if n <= 0 {
		return oldHostID{}, false, nil
	}
	known, err := h.knownCell(r, c)
	if err != nil || !known {
		return oldHostID{}, false, err
	}
	return oldHostID{cell: c, id: n}, true, nil
}
