package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"

	"github.com/cellcloud/cellcloud/internal/db"
)

// volOperator is a user of volumes while the faults run: it makes
// volumes (half of them in its servers' cells, by Cinder's
// local_to_instance hint), attaches them to its servers, detaches and
// deletes them, as cells, brokers and links die. Answers are not judged
// (the API cell is killed now and then); what it was told it got is
// checked at the end: an acknowledged create exists unless a delete was
// tried, an acknowledged delete is gone.
type volOperator struct {
	cc, vc  *gophercloud.ServiceClient
	project string
	rng     *rand.Rand
	servers []string

	mu          sync.Mutex
	created     map[string]bool
	deleted     map[string]bool
	deleteTried map[string]bool
	ops         int
	// attached and detached count the attaches and detaches acknowledged.
	attached, detached int
}

func newVolOperator(api, token string, seed uint64) *volOperator {
	root := strings.TrimSuffix(api, "v2.1/")
	project := token[strings.Index(token, ":")+1:]
	client := func(endpoint, typ string) *gophercloud.ServiceClient {
		pc := &gophercloud.ProviderClient{HTTPClient: http.Client{Timeout: 30 * time.Second}}
		pc.SetToken(token)
		return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: endpoint, ResourceBase: endpoint, Type: typ}
	}
	o := &volOperator{cc: client(api, "compute"), vc: client(root+"volume/v3/"+project+"/", "block-storage"), project: project,
		rng: rand.New(rand.NewPCG(seed, 7)), created: map[string]bool{}, deleted: map[string]bool{}, deleteTried: map[string]bool{}}
	o.cc.Microversion = "2.79"
	o.vc.Microversion = "3.60"
	return o
}

// setup lifts the project's volume quotas (the operator keeps more than
// Cinder's default 10) with admin, and boots n servers; the caller waits
// for them to be ACTIVE (active).
func (o *volOperator) setup(ctx context.Context, admin string, n int) error {
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{Timeout: 30 * time.Second}}
	pc.SetToken(admin)
	adminProject := admin[strings.Index(admin, ":")+1:]
	base := strings.Replace(o.vc.Endpoint, "/v3/"+o.project+"/", "/v3/"+adminProject+"/", 1)
	ac := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: base, ResourceBase: base, Type: "block-storage"}
	_, err := ac.Put(ctx, ac.ServiceURL("os-quota-sets", o.project), map[string]any{"quota_set": map[string]any{"volumes": -1, "gigabytes": -1}}, nil,
		&gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		return fmt.Errorf("volume quotas: %w", err)
	}
	for i := range n {
		s, err := servers.Create(ctx, o.cc, servers.CreateOpts{Name: fmt.Sprintf("vol-vm%d", i), FlavorRef: "1",
			ImageRef: "5f5c1b7e-6c2a-4e43-9a57-0d8c1c0c1c0c", Networks: "auto"}, nil).Extract()
		if err != nil {
			return err
		}
		o.servers = append(o.servers, s.ID)
	}
	return nil
}

// active says whether the operator's servers are all ACTIVE.
func (o *volOperator) active(ctx context.Context) (bool, string) {
	for _, id := range o.servers {
		s, err := servers.Get(ctx, o.cc, id).Extract()
		if err != nil {
			return false, err.Error()
		}
		if s.Status != "ACTIVE" {
			return false, "server " + id + " is " + s.Status
		}
	}
	return true, ""
}

// run does one volume operation every pace until ctx ends.
func (o *volOperator) run(ctx context.Context, pace time.Duration) {
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		o.step(rctx)
		cancel()
	}
}

func (o *volOperator) step(ctx context.Context) {
	o.mu.Lock()
	o.ops++
	var live []string
	for id := range o.created {
		if !o.deleteTried[id] {
			live = append(live, id)
		}
	}
	o.mu.Unlock()
	slices.Sort(live)
	server := o.servers[o.rng.IntN(len(o.servers))]
	switch p := o.rng.Float64(); {
	case p < 0.4 || len(live) == 0:
		var hints volumes.SchedulerHintOptsBuilder
		if o.rng.IntN(2) == 0 {
			hints = volumes.SchedulerHintOpts{LocalToInstance: server}
		}
		v, err := volumes.Create(ctx, o.vc, volumes.CreateOpts{Size: 1}, hints).Extract()
		if err == nil {
			o.mu.Lock()
			o.created[v.ID] = true
			o.mu.Unlock()
		}
	case p < 0.65:
		id := live[o.rng.IntN(len(live))]
		if _, err := volumeattach.Create(ctx, o.cc, server, volumeattach.CreateOpts{VolumeID: id}).Extract(); err == nil {
			o.mu.Lock()
			o.attached++
			o.mu.Unlock()
		}
	case p < 0.85:
		id := live[o.rng.IntN(len(live))]
		for _, s := range o.servers {
			if volumeattach.Delete(ctx, o.cc, s, id).ExtractErr() == nil {
				o.mu.Lock()
				o.detached++
				o.mu.Unlock()
			}
		}
	default:
		id := live[o.rng.IntN(len(live))]
		o.mu.Lock()
		o.deleteTried[id] = true
		o.mu.Unlock()
		if err := volumes.Delete(ctx, o.vc, id, volumes.DeleteOpts{}).ExtractErr(); err == nil {
			o.mu.Lock()
			o.deleted[id] = true
			o.mu.Unlock()
		} else if !gophercloud.ResponseCodeIs(err, 400) {
			return // the answer was lost: the delete may have been done
		} else {
			o.mu.Lock()
			delete(o.deleteTried, id) // refused (attached, or busy): still live
			o.mu.Unlock()
		}
	}
}

// apiVolume and cellVolume are a volume's rows in the API copy and in
// its cell.
type apiVolume struct {
	status, cell string
	size         int
	deleted      bool
	attachments  []string // "instance device status", sorted
}

type cellVolume struct {
	status, action string
	size           int
	deleted        bool
	attachments    []string
}

// transitional are the statuses a volume is in only while something
// is being done to it.
var transitional = []string{"creating", "deleting", "attaching", "detaching", "extending", "uploading", "reserved", "downloading"}

func apiVolumes(ctx context.Context, d *db.DB) (map[string]apiVolume, error) {
	out := map[string]apiVolume{}
	rows, err := d.Query(ctx, `SELECT id, status, cell_path, size_gb, deleted FROM volumes`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var v apiVolume
		var deleted int
		if err := rows.Scan(&id, &v.status, &v.cell, &v.size, &deleted); err != nil {
			rows.Close()
			return nil, err
		}
		v.deleted = deleted != 0
		out[id] = v
	}
	rows.Close()
	rows, err = d.Query(ctx, `SELECT volume_id, instance_uuid, device, attach_status FROM volume_attachments`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var vol, inst, dev, st string
		if err := rows.Scan(&vol, &inst, &dev, &st); err != nil {
			return nil, err
		}
		v := out[vol]
		v.attachments = append(v.attachments, inst+" "+dev+" "+st)
		slices.Sort(v.attachments)
		out[vol] = v
	}
	return out, rows.Err()
}

func cellVolumes(ctx context.Context, d *db.DB) (map[string]cellVolume, error) {
	out := map[string]cellVolume{}
	rows, err := d.Query(ctx, `SELECT id, status, action, size_gb, deleted FROM volumes`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var v cellVolume
		var deleted int
		if err := rows.Scan(&id, &v.status, &v.action, &v.size, &deleted); err != nil {
			rows.Close()
			return nil, err
		}
		v.deleted = deleted != 0
		out[id] = v
	}
	rows.Close()
	rows, err = d.Query(ctx, `SELECT volume_id, instance_uuid, mountpoint, attach_status FROM volume_attachments WHERE deleted = 0`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var vol, inst, dev, st string
		if err := rows.Scan(&vol, &inst, &dev, &st); err != nil {
			return nil, err
		}
		v := out[vol]
		v.attachments = append(v.attachments, inst+" "+dev+" "+st)
		slices.Sort(v.attachments)
		out[vol] = v
	}
	return out, rows.Err()
}

// volConverged says whether the volumes have settled and agree: no
// volume is in a transitional status or has work pending, in the API
// copy or its cell; every live copy is its cell's row (status, size,
// attachments) and every live cell row has its copy; each cell's backend
// holds exactly the files of its live volumes.
func volConverged(apiDB *db.DB, cellDBs map[string]*db.DB, volumeDirs map[string]string) (bool, string) {
	ctx := context.Background()
	api, err := apiVolumes(ctx, apiDB)
	if err != nil {
		return false, err.Error()
	}
	for id, v := range api {
		if !v.deleted && slices.Contains(transitional, v.status) {
			return false, fmt.Sprintf("volume %s is %s in the API copy (cell %q)", id, v.status, v.cell)
		}
	}
	for c, d := range cellDBs {
		cv, err := cellVolumes(ctx, d)
		if err != nil {
			return false, fmt.Sprintf("%s: %v", c, err)
		}
		for id, v := range cv {
			if v.deleted {
				if a, ok := api[id]; ok && !a.deleted && a.cell == c {
					return false, fmt.Sprintf("volume %s is deleted in %s but live in the API copy (%s)", id, c, a.status)
				}
				continue
			}
			if slices.Contains(transitional, v.status) || v.action != "" {
				return false, fmt.Sprintf("volume %s is %s (pending %q) in %s", id, v.status, v.action, c)
			}
			a, ok := api[id]
			switch {
			case !ok || a.deleted:
				return false, fmt.Sprintf("volume %s is live in %s but not in the API copy", id, c)
			case a.cell != c:
				return false, fmt.Sprintf("volume %s is live in %s, the API copy puts it in %q", id, c, a.cell)
			case a.status != v.status || a.size != v.size:
				return false, fmt.Sprintf("volume %s: %s %d GiB in %s, %s %d GiB in the API copy", id, v.status, v.size, c, a.status, a.size)
			case !slices.Equal(a.attachments, v.attachments):
				return false, fmt.Sprintf("volume %s: attachments %v in %s, %v in the API copy", id, v.attachments, c, a.attachments)
			}
		}
		for id, a := range api {
			if !a.deleted && a.cell == c {
				if v, ok := cv[id]; !ok || v.deleted {
					return false, fmt.Sprintf("volume %s is live in the API copy in %s, which does not have it", id, c)
				}
			}
		}
		if dir := volumeDirs[c]; dir != "" {
			files, _ := filepath.Glob(filepath.Join(dir, "volumes", "*.raw"))
			var have, want []string
			for _, f := range files {
				have = append(have, strings.TrimSuffix(filepath.Base(f), ".raw"))
			}
			for id, v := range cv {
				if !v.deleted && v.status != "error" {
					want = append(want, id)
				}
			}
			slices.Sort(have)
			slices.Sort(want)
			for _, id := range have {
				if !slices.Contains(want, id) {
					if v, ok := cv[id]; !ok || v.deleted {
						return false, fmt.Sprintf("%s: the file of volume %s is left (%v)", c, id, os.ErrExist)
					}
				}
			}
			for _, id := range want {
				if !slices.Contains(have, id) {
					return false, fmt.Sprintf("%s: volume %s has no file", c, id)
				}
			}
		}
	}
	return true, ""
}

// lostVolumes are the operator's acknowledged creates that are gone
// although no delete was tried, and acknowledged deletes that are still
// live in the API copy.
func (o *volOperator) problems(ctx context.Context, apiDB *db.DB) ([]string, error) {
	api, err := apiVolumes(ctx, apiDB)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for id := range o.created {
		v, ok := api[id]
		switch {
		case o.deleted[id] && ok && !v.deleted:
			out = append(out, fmt.Sprintf("volume %s: its delete was acknowledged, it is %s in %q", id, v.status, v.cell))
		case !o.deleteTried[id] && (!ok || v.deleted):
			out = append(out, fmt.Sprintf("volume %s: its create was acknowledged, no delete was tried, and it is gone", id))
		}
	}
	return out, nil
}
