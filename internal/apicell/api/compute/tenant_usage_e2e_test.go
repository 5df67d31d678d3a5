package compute_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/usage"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// TestSimpleTenantUsage: usage gathered from every cell's instances, a
// deleted one included as terminated; a project member sees its own
// project, not another's; paging at 2.40 walks the instances; bad dates
// are refused with Nova's messages.
func TestSimpleTenantUsage(t *testing.T) {
	tr := operatorTree(t)
	ctx := ctxT(t)
	start := time.Now().UTC().Add(-time.Hour)
	var ids []string
	for _, c := range []struct{ token, name string }{{demo, "u1"}, {demo, "u2"}, {other, "o1"}} {
		id := create(t, tr, c.token, map[string]any{"name": c.name, "flavorRef": "1", "imageRef": imageID})
		waitStatus(t, tr.Compute(c.token), id, "ACTIVE")
		ids = append(ids, id)
	}
	if err := servers.Delete(ctx, tr.Compute(demo), ids[1]).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, tr.Compute(demo), ids[1])

	end := time.Now().UTC().Add(time.Minute)
	pages, err := usage.AllTenants(adminAt(tr, "2.1"), usage.AllTenantsOpts{Detailed: true, Start: &start, End: &end}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := usage.ExtractAllTenants(pages)
	if err != nil {
		t.Fatal(err)
	}
	byTenant := map[string]usage.TenantUsage{}
	for _, u := range all {
		byTenant[u.TenantID] = u
	}
	d := byTenant["demo"]
	if len(all) != 2 || len(d.ServerUsages) != 2 || len(byTenant["other"].ServerUsages) != 1 || d.TotalHours <= 0 {
		t.Fatalf("usage of all tenants: %+v", all)
	}
	for _, s := range d.ServerUsages {
		switch s.InstanceID {
		case ids[0]:
			if s.State != "active" || !s.EndedAt.IsZero() || s.VCPUs != 1 || s.Flavor != "m1.tiny" || s.Hours <= 0 {
				t.Errorf("live server usage %+v", s)
			}
		case ids[1]:
			if s.State != "terminated" || s.EndedAt.IsZero() {
				t.Errorf("deleted server usage %+v", s)
			}
		default:
			t.Errorf("demo's usage has %s", s.InstanceID)
		}
	}

	var mine *usage.TenantUsage
	err = usage.SingleTenant(tr.Compute(demo), "demo", usage.SingleTenantOpts{Start: &start, End: &end}).EachPage(ctx,
		func(_ context.Context, p pagination.Page) (bool, error) {
			mine, err = usage.ExtractSingleTenant(p)
			return false, err
		})
	if err != nil || mine == nil {
		t.Fatalf("a member's own usage: %v", err)
	}
	if mine.TenantID != "demo" || len(mine.ServerUsages) != 2 {
		t.Errorf("demo's own usage: %+v", mine)
	}
	if r := tr.Do(t, "GET", "/v2.1/os-simple-tenant-usage/other", demo, nil); r.Status != http.StatusForbidden {
		t.Errorf("another project's usage: %d %s", r.Status, r.Body)
	}
	if r := tr.Do(t, "GET", "/v2.1/os-simple-tenant-usage", demo, nil); r.Status != http.StatusForbidden {
		t.Errorf("a member's all-tenant usage: %d", r.Status)
	}

	// 2.40: a page per instance, three in all.
	q := "start=" + start.Format("2006-01-02T15:04:05") + "&end=" + end.Format("2006-01-02T15:04:05") + "&limit=1"
	seen := 0
	path := "/v2.1/os-simple-tenant-usage?" + q
	for range 5 {
		r := tr.Do(t, "GET", path, admin, nil, "X-OpenStack-Nova-API-Version", "2.40")
		var page struct {
			Usages []any `json:"tenant_usages"`
			Links  []struct {
				Href string `json:"href"`
			} `json:"tenant_usages_links"`
		}
		r.JSON(t, &page)
		seen += len(page.Usages)
		if len(page.Links) == 0 {
			break
		}
		path = page.Links[0].Href[strings.Index(page.Links[0].Href, "/v2.1/"):]
	}
	if seen != 3 {
		t.Errorf("paged tenant usage: %d entries over the pages, want 3 (one per instance)", seen)
	}

	for _, c := range []struct{ query, msg string }{
		{"start=yesterday", "Invalid datetime string: Datetime is in invalid format"},
		{"start=2026-01-01 10:00:00", "Invalid datetime string: Datetime is in invalid format"},
		{"start=2026-01-02T00:00:00&end=2026-01-01T00:00:00", "Invalid start time. The start time cannot occur after the end time."},
	} {
		r := tr.Do(t, "GET", "/v2.1/os-simple-tenant-usage?"+strings.ReplaceAll(c.query, " ", "%20"), admin, nil)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("%s: %d %s", c.query, r.Status, r.Body)
		}
	}
	if r := tr.Do(t, "GET", "/v2.1/os-simple-tenant-usage/nobody?start=2020-01-01T00:00:00", admin, nil); r.Status != http.StatusOK ||
		!strings.Contains(string(r.Body), `{"tenant_usage":{}}`) {
		t.Errorf("a tenant without instances: %d %s", r.Status, r.Body)
	}
}
