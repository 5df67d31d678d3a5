package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
)

// leftDeadPhase turns on the phase that leaves a compute cell dead for
// longer than its parent waits for it to take a build, so that the builds
// sent to it are placed elsewhere, and delivered to it too when it
// returns (where they must be fenced: no instance twice): issue 12 item 4,
// with cells.build_accept_timeout (3 s here) shorter than the 8 s the cell
// stays dead. Off, it is one more crash.
const leftDeadPhase = true

// TestFault is the fault suite (issue 12): a tree of processes — the API
// cell, a compute cell, a routing cell with a compute cell below it (depth
// 3) — under a steady load of creates, actions and deletes, while a driver
// SIGKILLs each of them in turn, restarts one with its broker, partitions a
// cell from its parent through proxies in front of the brokers, and every
// cell's relay duplicates, delays and reorders messages. Afterwards,
// against each cell's own database: every acknowledged create is ACTIVE,
// SHUTOFF (when it was stopped) or ERROR with a fault; no instance lives
// twice; every acknowledged delete is gone everywhere; no claim or address
// is held by nothing; the API copy equals the cells' truth; no build or
// task is left hanging.
//
// One pass of the faults runs by default (about a minute and a half);
// CELLCLOUD_FAULT_SOAK=10m repeats them for that long.
func TestFault(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes and kills them")
	}
	var soak time.Duration
	if v := os.Getenv("CELLCLOUD_FAULT_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CELLCLOUD_FAULT_SOAK=%q: %v", v, err)
		}
		soak = d
	}
	faults := map[string]any{"duplicate": 0.05, "reorder": 0.2, "delay": 0.1, "max_delay": "200ms"}
	// api!c2's broker is a nats-server process of its own when this
	// machine has one, so that it can be restarted alone.
	natsServer, err := exec.LookPath("nats-server")
	if err != nil {
		t.Logf("no nats-server (%v): every broker is embedded, and the phase that restarts a broker alone is skipped", err)
	}
	tr := startTree(t, []cellSpec{
		{path: "api", faults: faults, cells: map[string]any{"build_accept_timeout": "3s"}},
		{path: "api!c2", hosts: 4, parent: "api", faults: faults, natsServer: natsServer},
		{path: "api!r1", hosts: 1, parent: "api", proxied: true, faults: faults, cells: map[string]any{"build_accept_timeout": "3s"}},
		{path: "api!r1!c1", hosts: 3, parent: "api!r1", proxied: true, faults: faults},
	})
	all := []string{"api", "api!c2", "api!r1", "api!r1!c1"}
	// CELLCLOUD_FAULT_LOGS=DIR keeps every cell's log there.
	if dir := os.Getenv("CELLCLOUD_FAULT_LOGS"); dir != "" {
		t.Cleanup(func() {
			for _, p := range all {
				b, _ := os.ReadFile(tr.procs[p].log)
				_ = os.WriteFile(filepath.Join(dir, strings.ReplaceAll(p, "!", "_")+".log"), b, 0o644)
			}
			t.Logf("the cells' logs are in %s", dir)
		})
	}
	tr.waitReady(map[string]int{"api!c2": 4, "api!r1": 4})
	apiDB := tr.openDB("api")
	cellDBs := map[string]*db.DB{}
	for _, c := range tr.cells {
		cellDBs[c] = tr.openDB(c)
	}

	// Host aggregates (issue 15): a zone over a host of each compute
	// cell, made before the load; then an operator changes another
	// aggregate all through the faults.
	admin := tr.client("admin:admin")
	admin.Microversion = "2.41"
	aggOp := &aggOperator{c: admin, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 99)),
		hosts: []string{"api!c2@c2-host001", "api!c2@c2-host002", "api!c2@c2-host003", "api!r1@r1-host001",
			"api!r1!c1@c1-host001", "api!r1!c1@c1-host002"}}
	if err := aggOp.setup(context.Background(), []string{"api!c2@c2-host004", "api!r1!c1@c1-host003"}); err != nil {
		t.Fatalf("aggregates: %v", err)
	}

	// Volumes (issue 16): a user makes, attaches, detaches and deletes
	// volumes all through the faults.
	volOp := newVolOperator(tr.api, "vol:vol", uint64(time.Now().UnixNano()))
	if err := volOp.setup(context.Background(), "admin:admin", 2); err != nil {
		t.Fatalf("volumes: %v", err)
	}
	testpoll.Eventually(t, time.Minute, "the volume user's servers ACTIVE", func() (bool, string) {
		return volOp.active(context.Background())
	})

	load := newFaultLoad()
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); aggOp.run(ctx, 300*time.Millisecond) }()
	wg.Add(1)
	go func() { defer wg.Done(); volOp.run(ctx, 250*time.Millisecond) }()
	for i := range 3 {
		w := &faultWorker{name: fmt.Sprintf("w%d", i), load: load, c: tr.client("demo:demo"), apiDB: apiDB,
			rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))}
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx, 150*time.Millisecond) }()
	}

	d := &faultDriver{t: tr.t, tr: tr}
	d.hold(3 * time.Second) // the load gets going
	started := time.Now()
	for pass := 1; ; pass++ {
		for _, c := range all {
			d.crash(tr.procs[c], &d.kills, 2*time.Second)
		}
		d.restart("api!c2")
		if b := tr.brokers["api!c2"]; b != nil {
			d.crash(b, &d.brokerKills, 2*time.Second)
		}
		if leftDeadPhase {
			d.crash(tr.procs["api!c2"], &d.kills, 8*time.Second)
		} else if pass == 1 {
			t.Log("skipped: a compute cell left dead past cells.build_accept_timeout, its builds placed elsewhere " +
				"and fenced in it when it returns — needs issue 12 item 4 (branch i12-replace)")
		}
		d.cut("api!r1")
		d.cut("api!r1!c1")
		if time.Since(started) >= soak {
			t.Logf("%d passes of the faults", pass)
			break
		}
	}
	d.hold(3 * time.Second) // the load goes on over the healed tree
	stopLoad()
	wg.Wait()
	loadStopped := time.Now()

	// The tree settles: the API copy equals the cells' truth, nothing is
	// building or in a task, nothing waits in an outbox.
	truth := func() map[string]map[string]cellInstance {
		out := map[string]map[string]cellInstance{}
		for c, d := range cellDBs {
			out[c] = cellInstances(t, c, d)
		}
		return out
	}
	// What the tree was still waiting for, the first time each was seen:
	// logged, to explain the time it took.
	waited := map[string]time.Duration{}
	var waitedFor []string
	settled := func() (bool, string) {
		tru := truth()
		for c, insts := range tru {
			for u, in := range insts {
				if !in.deleted && (in.vmState == "building" || in.taskState != "") {
					return false, fmt.Sprintf("%s: instance %s is %s/%s", c, u, in.vmState, in.taskState)
				}
			}
		}
		if diff := converged(t, apiInstances(t, apiDB), tru); diff != "" {
			return false, diff
		}
		for _, c := range all {
			dbc := apiDB
			if c != "api" {
				dbc = cellDBs[c]
			}
			q, err := outbox.Neighbours(context.Background(), dbc)
			if err != nil {
				return false, err.Error()
			}
			if len(q) > 0 {
				return false, fmt.Sprintf("%s still queues %v", c, q)
			}
		}
		return true, ""
	}
	testpoll.Eventually(t, 3*time.Minute, "the tree to converge", func() (bool, string) {
		ok, why := settled()
		if _, seen := waited[why]; !ok && !seen && len(waitedFor) < 20 {
			waited[why] = time.Since(loadStopped)
			waitedFor = append(waitedFor, why)
		}
		return ok, why
	})
	convergeTime := time.Since(loadStopped)
	for _, why := range waitedFor {
		t.Logf("converging, at %s: %s", waited[why].Round(100*time.Millisecond), why)
	}
	// Security groups (issue 14): every server of the load is in its
	// project's default group, whose rules name the group itself, so its
	// member set changed with every create and delete, in every cell,
	// while the faults duplicated, delayed and reordered the deltas. Each
	// cell holds every group its live instances need, and each group it
	// holds is the root's: at its revision, with its member set.
	testpoll.Eventually(t, time.Minute, "every cell's security groups to be the root's", func() (bool, string) {
		return sgConverged(t, apiDB, cellDBs, truth())
	})
	t.Logf("security groups: every cell's held groups equal the root's after %s", time.Since(loadStopped).Round(100*time.Millisecond))
	testpoll.Eventually(t, time.Minute, "every cell's aggregates to be the root's", func() (bool, string) {
		return aggConverged(apiDB, cellDBs)
	})
	t.Logf("aggregates: %d changes made through the faults; every cell holds the root's after %s", aggOp.changes.Load(),
		time.Since(loadStopped).Round(100*time.Millisecond))
	volumeDirs := map[string]string{}
	for _, c := range tr.cells {
		volumeDirs[c] = filepath.Join(tr.dir, strings.ReplaceAll(c, "!", "_"), "volumes")
	}
	testpoll.Eventually(t, 2*time.Minute, "the volumes to settle and agree", func() (bool, string) {
		return volConverged(apiDB, cellDBs, volumeDirs)
	})
	volProblems, err := volOp.problems(context.Background(), apiDB)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range volProblems {
		t.Error(p)
	}
	volOp.mu.Lock()
	t.Logf("volumes: %d operations, acknowledged %d creates, %d attaches, %d detaches, %d deletes; settled and equal in the API copy, the cells and their backends after %s",
		volOp.ops, len(volOp.created), volOp.attached, volOp.detached, len(volOp.deleted), time.Since(loadStopped).Round(100*time.Millisecond))
	volOp.mu.Unlock()

	// The checks, against each cell's own database.
	tru := truth()
	api := apiInstances(t, apiDB)
	faultsOf := map[string]string{}
	for c, dbc := range cellDBs {
		for u, f := range instanceFaults(t, c, dbc) {
			faultsOf[u] = f
		}
	}
	liveIn := map[string][]string{}
	for c, insts := range tru {
		for u, in := range insts {
			if !in.deleted {
				liveIn[u] = append(liveIn[u], c)
			}
		}
	}
	lost, twice, leaked := 0, 0, 0
	for u, cs := range liveIn {
		if len(cs) > 1 {
			twice++
			t.Errorf("instance %s is live in %v", u, cs)
		}
	}
	load.mu.Lock()
	for u := range load.created {
		cs := liveIn[u]
		switch {
		case load.deleted[u]:
			if len(cs) > 0 || !api[u].deleted {
				t.Errorf("instance %s: its delete was acknowledged, but it is live in %v (API copy deleted: %v)", u, cs, api[u].deleted)
			}
		case len(cs) == 0 && load.deleteTried[u]:
			// A delete whose answer was lost did its work.
			if !api[u].deleted {
				t.Errorf("instance %s is gone from the cells but not deleted in the API copy", u)
			}
		case len(cs) == 0:
			lost++
			t.Errorf("instance %s: its create was acknowledged, it was never deleted, and it is live in no cell", u)
		default:
			in := tru[cs[0]][u]
			switch {
			case in.vmState == "active", in.vmState == "stopped" && load.stopTried[u]:
			case in.vmState == "error" && faultsOf[u] != "":
				t.Logf("instance %s in %s is ERROR with fault %q", u, cs[0], faultsOf[u])
			default:
				t.Errorf("instance %s in %s is %s (fault %q)", u, cs[0], in.vmState, faultsOf[u])
			}
		}
	}
	bad := load.bad
	load.mu.Unlock()
	for _, b := range bad {
		t.Errorf("an answer no client should get: %s", b)
	}
	for c, dbc := range cellDBs {
		ps := claimProblems(t, c, dbc)
		leaked += len(ps)
		for _, p := range ps {
			t.Error(p)
		}
	}

	// Where the acknowledged creates were built (deleted or not), and how
	// many ended in ERROR.
	placed := map[string]int{}
	errored := 0
	load.mu.Lock()
	for u := range load.created {
		for c, insts := range tru {
			if _, ok := insts[u]; ok {
				placed[c]++
			}
		}
		if faultsOf[u] != "" {
			errored++
		}
	}
	load.mu.Unlock()
	t.Logf("acknowledged creates by cell: %v; in ERROR at the end: %d", placed, errored)
	sent, acked := load.operations()
	dups, repeats := d.injected(all)
	load.mu.Lock()
	creates, deletes := len(load.created), len(load.deleted)
	load.mu.Unlock()
	t.Logf("fault suite figures: operations=%d acknowledged=%d (creates=%d deletes=%d) kills=%d broker_kills=%d restarts=%d partitions=%d "+
		"injected_duplicates=%d repeats_ignored=%d lost=%d duplicated=%d leaked=%d slowest_recovery=%s time_to_converge=%s",
		sent, acked, creates, deletes, d.kills, d.brokerKills, d.restarts, d.partitions, dups, repeats, lost, twice, leaked, d.slowest.Round(100*time.Millisecond), convergeTime.Round(100*time.Millisecond))
	t.Logf("answers: %s", load.summary())
}

// memberDiff names the members ("PORT ADDRESS") of a that b lacks, each
// with what the root's database says of its port and address, to tell
// why a cell and the root disagree.
func memberDiff(ctx context.Context, apiDB *db.DB, a, b []string) string {
	var out []string
	for _, m := range a {
		if slices.Contains(b, m) {
			continue
		}
		port, addr, _ := strings.Cut(m, " ")
		var device, madeBy, owner string
		portState := "no port"
		if err := apiDB.QueryRow(ctx, `SELECT device_id, made_by FROM ports WHERE id = ?`, port).Scan(&device, &madeBy); err == nil {
			portState = fmt.Sprintf("port of %q made by %s", device, madeBy)
		}
		addrState := "address not recorded"
		if err := apiDB.QueryRow(ctx, `SELECT port_id FROM port_fixed_ips WHERE ip_address = ?`, addr).Scan(&owner); err == nil {
			addrState = "address on port " + owner
		}
		inst := ""
		if device != "" {
			var deleted int
			var cell, vm string
			if err := apiDB.QueryRow(ctx, `SELECT deleted, cell_path, vm_state FROM instances WHERE uuid = ?`, device).Scan(&deleted, &cell, &vm); err == nil {
				inst = fmt.Sprintf(", server deleted=%d cell=%s %s", deleted, cell, vm)
			}
		}
		out = append(out, fmt.Sprintf("[%s: %s, %s%s]", m, portState, addrState, inst))
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, " ")
}

// sgConverged says whether every group each cell holds is at the root's
// revision with the root's members (read from the cell's own database),
// and every cell with a live instance holds at least one group (the
// load's servers are all in their project's default group).
func sgConverged(t *testing.T, apiDB *db.DB, cellDBs map[string]*db.DB, truth map[string]map[string]cellInstance) (bool, string) {
	t.Helper()
	ctx := context.Background()
	for c, dbc := range cellDBs {
		type held struct {
			id       string
			rev, seq int64
		}
		hs, err := db.Collect(ctx, dbc, func(r db.Scanner) (held, error) {
			var h held
			return h, r.Scan(&h.id, &h.rev, &h.seq)
		}, `SELECT id, revision, member_seq FROM sg_groups ORDER BY id`)
		if err != nil {
			return false, fmt.Sprintf("%s: %v", c, err)
		}
		live := 0
		for _, in := range truth[c] {
			if !in.deleted {
				live++
			}
		}
		if live > 0 && len(hs) == 0 {
			return false, fmt.Sprintf("%s has %d live instances and holds no security group", c, live)
		}
		for _, h := range hs {
			st, err := netdb.GroupStates(ctx, apiDB, []string{h.id})
			if err != nil {
				return false, err.Error()
			}
			root, ok := st[h.id]
			switch {
			case !ok:
				return false, fmt.Sprintf("%s holds group %s, which the root does not have", c, h.id)
			case h.rev != root.RevisionNumber:
				return false, fmt.Sprintf("%s holds group %s at revision %d, the root's is %d", c, h.id, h.rev, root.RevisionNumber)
			}
			want, err := netdb.GroupMembers(ctx, apiDB, h.id)
			if err != nil {
				return false, err.Error()
			}
			got, err := db.Collect(ctx, dbc, func(r db.Scanner) (string, error) {
				var port, addr string
				err := r.Scan(&port, &addr)
				return port + " " + addr, err
			}, `SELECT port_id, address FROM sg_members WHERE group_id = ? ORDER BY port_id, address`, h.id)
			if err != nil {
				return false, err.Error()
			}
			var wantS []string
			for _, m := range want {
				wantS = append(wantS, m.PortID+" "+m.Address)
			}
			slices.Sort(wantS)
			slices.Sort(got)
			if !slices.Equal(got, wantS) {
				return false, fmt.Sprintf("%s holds group %s at member sequence %d (root %d) with %d members, the root has %d; only the cell has %s; only the root has %s",
					c, h.id, h.seq, root.MemberSeq, len(got), len(wantS), memberDiff(ctx, apiDB, got, wantS), memberDiff(ctx, apiDB, wantS, got))
			}
		}
	}
	return true, ""
}

// faultDriver injects the faults, one at a time, and counts them.
type faultDriver struct {
	t                           *testing.T
	tr                          *tree
	kills, restarts, partitions int
	brokerKills                 int
	// slowest is the longest a fault's end (a restart, a healed link)
	// took to give a whole tree again: the API answering, every cell up.
	slowest time.Duration
}

// hold lets the load run over the tree as it is for d: how long a fault
// lasts, not a wait for anything to happen.
func (d *faultDriver) hold(dur time.Duration) {
	tm := time.NewTimer(dur)
	defer tm.Stop()
	<-tm.C
}

// crash SIGKILLs a process — a cell's (with its embedded broker) or an
// external broker's (the cell's process keeps running and reconnects) —
// leaves it down for a moment, starts it again, and counts it.
func (d *faultDriver) crash(p *cellProc, count *int, down time.Duration) {
	d.t.Logf("fault: SIGKILL %s, down for %s", p.path, down)
	p.kill()
	*count++
	d.hold(down)
	p.start()
	d.recovered()
}

// restart stops a cell's process (and its broker, when embedded) with
// SIGTERM, and starts it again.
func (d *faultDriver) restart(path string) {
	d.t.Logf("fault: SIGTERM and restart %s", path)
	d.tr.procs[path].stop()
	d.restarts++
	d.tr.procs[path].start()
	d.recovered()
}

// cut partitions a cell from its parent for long enough that the parent
// counts it down, then heals the partition.
func (d *faultDriver) cut(path string) {
	d.t.Logf("fault: partition %s from its parent", path)
	p := d.tr.partitions[path]
	p.setCut(true)
	d.partitions++
	d.hold(5 * time.Second)
	p.setCut(false)
	d.recovered()
}

// recovered waits until the API answers and counts every cell of the tree
// up again, so that each fault starts from a whole tree.
func (d *faultDriver) recovered() {
	ended := time.Now()
	defer func() {
		took := time.Since(ended)
		d.slowest = max(d.slowest, took)
		d.t.Logf("fault: the tree was whole again %s after the fault ended", took.Round(100*time.Millisecond))
	}()
	testpoll.Eventually(d.t, 90*time.Second, "the Compute API to answer", d.tr.apiAnswers)
	testpoll.Eventually(d.t, 90*time.Second, "every cell up in os-cells", func() (bool, string) {
		req, _ := http.NewRequest("GET", strings.TrimSuffix(d.tr.api, "/")+"/os-cells", nil)
		req.Header.Set("X-Auth-Token", "admin:admin")
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var body struct {
			Cells []struct{ Name, State string } `json:"cells"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return false, fmt.Sprintf("%s: %v", resp.Status, err)
		}
		up := 0
		for _, c := range body.Cells {
			if c.State == "up" {
				up++
			}
		}
		return up == len(d.tr.cells), fmt.Sprint(body.Cells)
	})
}

var (
	injectedDup = regexp.MustCompile(`fault=duplicate .*messages=(\d+)`)
	repeatLine  = regexp.MustCompile(`message already applied; ignoring the repeat`)
)

// injected counts, from the cells' logs, the messages their relays
// published twice and the repeats their inboxes recognised.
func (d *faultDriver) injected(paths []string) (dups, repeats int) {
	for _, p := range paths {
		b, err := os.ReadFile(d.tr.procs[p].log)
		if err != nil {
			d.t.Fatal(err)
		}
		for _, m := range injectedDup.FindAllSubmatch(b, -1) {
			n, _ := strconv.Atoi(string(m[1]))
			dups += n
		}
		repeats += len(repeatLine.FindAll(b, -1))
	}
	return dups, repeats
}

// instanceFaults reads the faults of a cell's live instances in ERROR.
func instanceFaults(t *testing.T, cell string, d *db.DB) map[string]string {
	t.Helper()
	rows, err := d.Query(context.Background(), `SELECT uuid, fault FROM instances WHERE deleted = 0 AND vm_state = 'error'`)
	if err != nil {
		t.Fatalf("read %s faults: %v", cell, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var u, f string
		if err := rows.Scan(&u, &f); err != nil {
			t.Fatal(err)
		}
		out[u] = f
	}
	return out
}
