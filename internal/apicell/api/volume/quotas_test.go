package volume_test

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
)

// TestQuotaSets: a project reads its quota set, with and without usage,
// and the defaults: Cinder's default quotas, nothing used (there are no
// volumes yet); a member reading another project's is a 403, an admin
// reads any.
func TestQuotaSets(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client("demo", "pw-demo", "demo")
	q, err := quotasets.Get(ctx, c, e.demoProject).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if q.ID != e.demoProject || q.Volumes != 10 || q.Snapshots != 10 || q.Gigabytes != 1000 || q.Backups != 10 || q.PerVolumeGigabytes != -1 {
		t.Errorf("quota set %+v", q)
	}
	u, err := quotasets.GetUsage(ctx, c, e.demoProject).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if u.Volumes.Limit != 10 || u.Volumes.InUse != 0 || u.Gigabytes.Limit != 1000 {
		t.Errorf("quota usage %+v", u)
	}
	d, err := quotasets.GetDefaults(ctx, c, e.demoProject).Extract()
	if err != nil || d.Volumes != 10 {
		t.Errorf("defaults %+v, %v", d, err)
	}
	if _, err := quotasets.Get(ctx, c, e.adminProject).Extract(); !gophercloud.ResponseCodeIs(err, 403) {
		t.Errorf("a member reading another project's quotas: %v, want a 403", err)
	}
	admin := e.client("admin", "pw-admin", "admin")
	if q, err := quotasets.Get(ctx, admin, e.demoProject).Extract(); err != nil || q.Volumes != 10 {
		t.Errorf("an admin reading demo's quotas: %+v, %v", q, err)
	}
	e.do("GET", "/volume/v3/"+e.demoProject+"/os-quota-sets/"+e.demoProject+"?usage=maybe", e.demo).json(t, 400)
}
