package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/db"
)

// faultLoad is the record of a steady load of creates, actions and deletes:
// what the Compute API acknowledged, and how every other answer went.
type faultLoad struct {
	mu sync.Mutex
	// created holds the acknowledged creates: a single create's 202 with
	// its id, or a multi-create's 202 with its reservation (its instances
	// read from the API cell's database, where the 202 says they are).
	created map[string]bool
	// deleted holds the acknowledged deletes (204); deleteTried every
	// instance a delete was sent for, answered or not.
	deleted, deleteTried map[string]bool
	// stopTried holds the instances a stop was sent for: they may end
	// SHUTOFF.
	stopTried map[string]bool
	// answers counts the answers by operation and outcome ("create 202",
	// "stop 409", "delete unreachable").
	answers map[string]int
	// bad are the answers a client must never get: a 5xx other than 503,
	// a request that hung until the client's timeout, a 404 for an
	// acknowledged instance never deleted, a reservation short of
	// instances.
	bad []string
}

func newFaultLoad() *faultLoad {
	return &faultLoad{created: map[string]bool{}, deleted: map[string]bool{}, deleteTried: map[string]bool{},
		stopTried: map[string]bool{}, answers: map[string]int{}}
}

// outcome classifies a request's error: "ok", the HTTP status, or
// "unreachable" (the API's process is down or died mid-request). A
// timeout is "hang".
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		return fmt.Sprint(code.Actual)
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Timeout() {
		return "hang"
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, context.Canceled) {
		return "unreachable"
	}
	return "error: " + err.Error()
}

// record counts an answer and reports whether it was a success; an
// answer no client should get goes to bad.
func (l *faultLoad) record(op string, err error) bool {
	o := outcome(err)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers[op+" "+o]++
	switch {
	case o == "ok", o == "unreachable", o == "503", len(o) == 3 && o[0] == '4':
	default:
		l.bad = append(l.bad, fmt.Sprintf("%s: %s (%v)", op, o, err))
	}
	return o == "ok"
}

func (l *faultLoad) badf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bad = append(l.bad, fmt.Sprintf(format, args...))
}

func (l *faultLoad) mark(set map[string]bool, ids ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		set[id] = true
	}
}

// operations is how many requests were sent, and how many of them were
// acknowledged.
func (l *faultLoad) operations() (sent, acked int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, n := range l.answers {
		sent += n
		if strings.HasSuffix(k, " ok") {
			acked += n
		}
	}
	return sent, acked
}

func (l *faultLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]string, 0, len(l.answers))
	for k := range l.answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, l.answers[k])
	}
	return strings.TrimSpace(b.String())
}

// faultWorker is one client of the load: it keeps a few servers of its own
// and creates, acts on and deletes them, one request at a time.
type faultWorker struct {
	name  string
	load  *faultLoad
	c     *gophercloud.ServiceClient
	apiDB *db.DB
	rng   *rand.Rand
	seq   int
	mine  []string
}

// run sends requests, one every pace, until ctx ends.
func (w *faultWorker) run(ctx context.Context, pace time.Duration) {
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		switch r := w.rng.Float64(); {
		case len(w.mine) < 2 || (len(w.mine) < 4 && r < 0.4):
			w.create()
		case r < 0.75:
			w.act()
		default:
			w.delete()
		}
	}
}

// The requests run to their end (or the client's timeout) even when the
// load stops: an answer cut off by the test would be counted as unknown.

func (w *faultWorker) create() {
	w.seq++
	name := fmt.Sprintf("%s-%d", w.name, w.seq)
	ctx := context.Background()
	if w.rng.Float64() < 0.75 {
		s, err := servers.Create(ctx, w.c, servers.CreateOpts{Name: name, FlavorRef: "1", ImageRef: imageID}, nil).Extract()
		if w.load.record("create", err) {
			w.load.mark(w.load.created, s.ID)
			w.mine = append(w.mine, s.ID)
		}
		return
	}
	opts := servers.CreateOpts{Name: name, FlavorRef: "1", ImageRef: imageID, Min: 2, Max: 2}
	r := servers.Create(ctx, w.c, reservationCreate{opts}, nil)
	if !w.load.record("multi-create", r.Err) {
		return
	}
	body, _ := r.Body.(map[string]any)
	rid, _ := body["reservation_id"].(string)
	ids, err := reservationInstances(ctx, w.apiDB, rid)
	if err != nil || len(ids) != 2 {
		w.load.badf("multi-create %s acknowledged with reservation %q, the API cell holds %v (%v)", name, rid, ids, err)
	}
	w.load.mark(w.load.created, ids...)
	w.mine = append(w.mine, ids...)
}

func (w *faultWorker) pick() string { return w.mine[w.rng.IntN(len(w.mine))] }

func (w *faultWorker) act() {
	if len(w.mine) == 0 {
		return
	}
	id := w.pick()
	ctx := context.Background()
	switch w.rng.IntN(4) {
	case 0:
		w.load.mark(w.load.stopTried, id)
		w.load.record("stop", servers.Stop(ctx, w.c, id).ExtractErr())
	case 1:
		w.load.record("start", servers.Start(ctx, w.c, id).ExtractErr())
	case 2:
		w.load.record("reboot", servers.Reboot(ctx, w.c, id, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr())
	default:
		w.load.record("hard-reboot", servers.Reboot(ctx, w.c, id, servers.RebootOpts{Type: servers.HardReboot}).ExtractErr())
	}
}

func (w *faultWorker) delete() {
	if len(w.mine) == 0 {
		return
	}
	id := w.pick()
	w.load.mu.Lock()
	tried := w.load.deleteTried[id]
	w.load.deleteTried[id] = true
	w.load.mu.Unlock()
	err := servers.Delete(context.Background(), w.c, id).ExtractErr()
	gone := w.load.record("delete", err)
	if gone {
		w.load.mark(w.load.deleted, id)
	} else if gophercloud.ResponseCodeIs(err, 404) {
		// Gone: an earlier delete whose answer was lost did its work.
		gone = true
		if !tried {
			w.load.badf("delete %s: 404 for an acknowledged instance never deleted", id)
		}
	}
	if gone {
		w.mine = slices.DeleteFunc(w.mine, func(m string) bool { return m == id })
	}
}

// reservationCreate asks a multi-create for its reservation id.
type reservationCreate struct{ servers.CreateOptsBuilder }

func (r reservationCreate) ToServerCreateMap() (map[string]any, error) {
	m, err := r.CreateOptsBuilder.ToServerCreateMap()
	if err != nil {
		return nil, err
	}
	m["server"].(map[string]any)["return_reservation_id"] = true
	return m, nil
}

// reservationInstances reads the instances of a reservation from the API
// cell's database.
func reservationInstances(ctx context.Context, apiDB *db.DB, rid string) ([]string, error) {
	if rid == "" {
		return nil, errors.New("no reservation id in the answer")
	}
	rows, err := apiDB.Query(ctx, `SELECT uuid FROM instances WHERE reservation_id = ? ORDER BY launch_index`, rid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
