package compute

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// TestQuotaLimitSetWhileUnlimitedCreatesRun: a project without limits
// creates from 8 goroutines, taking the quota lock shared on PostgreSQL
// (not one at a time). While they run, an admin sets an instances limit
// just above the count it reads, retrying while the API refuses it as
// below usage. Once a limit is set, the project never holds more
// instances than it: a create that read "unlimited" either committed
// before the change counted usage (and was counted), or read the limit
// after it. Every create after the change is refused with Nova's 403 once
// the limit is reached; nothing else fails.
func TestQuotaLimitSetWhileUnlimitedCreatesRun(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		srv := quotaAPI(t, d, quota.Defaults{Instances: quota.Unlimited, Cores: quota.Unlimited, RAM: quota.Unlimited})
		client := gopherClient(srv.URL, "demo:demo")
		admin := gopherClient(srv.URL, "admin:admin")
		count := func() int {
			var n int
			if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM instances WHERE project_id = 'demo' AND deleted = 0`).Scan(&n); err != nil {
				t.Error(err)
			}
			return n
		}
		var limited atomic.Bool
		var refusedAfter atomic.Int64
		var mu sync.Mutex
		var other []error
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 8 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					_, err := servers.Create(ctx, client, servers.CreateOpts{Name: "s", FlavorRef: "1", ImageRef: image.CirrosID, Networks: "none"}, nil).Extract()
					switch {
					case err == nil:
					case gophercloud.ResponseCodeIs(err, http.StatusForbidden) && strings.Contains(err.Error(), "Quota exceeded for instances"):
						if limited.Load() {
							refusedAfter.Add(1)
						}
					default:
						mu.Lock()
						other = append(other, fmt.Errorf("worker %d create %d: %w", w, i, err))
						mu.Unlock()
					}
				}
			})
		}
		failed := func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(other) > 0
		}
		// Let the creates run unlimited a while: until some 20 exist.
		testpoll.Eventually(t, 60*time.Second, "20 unlimited creates", func() (bool, string) {
			n := count()
			return n >= 20 || failed(), fmt.Sprintf("%d instances", n)
		})
		var limit int
		for attempt := 0; ; attempt++ {
			limit = count() + 3
			_, err := quotasets.Update(ctx, admin, "demo", quotasets.UpdateOpts{Instances: &limit}).Extract()
			if err == nil {
				break
			}
			if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) || attempt > 200 {
				close(stop)
				wg.Wait()
				t.Fatalf("set the limit to %d (attempt %d): %v", limit, attempt, err)
			}
		}
		limited.Store(true)
		// The creates go on until they have been refused a few times.
		testpoll.Eventually(t, 60*time.Second, "creates refused under the new limit", func() (bool, string) {
			n := count()
			return refusedAfter.Load() >= 40 || failed() || n > limit, fmt.Sprintf("%d refused, %d instances", refusedAfter.Load(), n)
		})
		close(stop)
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("unexpected errors: %v", other)
		}
		if n := count(); n > limit {
			t.Errorf("%d instances after the limit of %d was set: a create that read no limit committed after the change counted usage", n, limit)
		}
		// The next creates were refused once the limit was reached.
		if n := count(); n != limit {
			t.Logf("%d instances under a limit of %d", n, limit)
		}
	})
}
