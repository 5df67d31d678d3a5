package compute

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// quotaAPI is the Compute API on a bare API cell database (no cells: the
// builds it sends go nowhere), for quota checks on every engine.
func quotaAPI(t *testing.T, d *db.DB, q quota.Defaults) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, imagedb.MigrationSet, imagedb.Migrations); err != nil {
		t.Fatal(err)
	}
	// Servers are bound to security groups (the Networking API's).
	if err := d.Migrate(ctx, netdb.MigrationSet, netdb.Migrations); err != nil {
		t.Fatal(err)
	}
	if err := apidb.SeedFlavors(ctx, d); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.NewFromRules(slices.Concat(policy.Base, Rules, image.Rules), nil)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := image.New(image.Config{DB: d, StoreDir: filepath.Join(t.TempDir(), "images"), Auth: authn.NoAuth{}, Policy: pol,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := imgs.Seed(ctx, image.Cirros()); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Cell: "api", DB: d, Sender: noSender{}, Caller: noCaller{}, Auth: authn.NoAuth{}, Policy: pol, Quota: q,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv
}

func gopherClient(url, token string) *gophercloud.ServiceClient {
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{}}
	pc.SetToken(token)
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: url + "/v2.1/", Type: "compute", Microversion: "2.60"}
}

// TestQuotaHoldsUnderConcurrentCreates: with a quota of N instances, 120
// creates from 8 goroutines at once end with exactly N servers (the cells
// have room for all), the rest refused with Nova's 403; on SQLite and on
// PostgreSQL, where the checks of one project are serialised by a row lock.
func TestQuotaHoldsUnderConcurrentCreates(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		const limit, workers, each = 7, 8, 15
		srv := quotaAPI(t, d, quota.Defaults{Instances: limit, Cores: quota.Unlimited, RAM: quota.Unlimited})
		client := gopherClient(srv.URL, "demo:demo")
		var mu sync.Mutex
		ok, refused := 0, 0
		var other []error
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					_, err := servers.Create(context.Background(), client, servers.CreateOpts{Name: "q", FlavorRef: "1", ImageRef: image.CirrosID, Networks: "none"}, nil).Extract()
					mu.Lock()
					switch {
					case err == nil:
						ok++
					case gophercloud.ResponseCodeIs(err, http.StatusForbidden) && strings.Contains(err.Error(), "Quota exceeded for instances"):
						refused++
					default:
						other = append(other, fmt.Errorf("worker %d create %d: %w", w, i, err))
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("unexpected errors: %v", other)
		}
		if ok != limit || refused != workers*each-limit {
			t.Errorf("%d creates accepted and %d refused, want %d and %d", ok, refused, limit, workers*each-limit)
		}
		var n int
		if err := d.QueryRow(context.Background(), `SELECT COUNT(*) FROM instances WHERE project_id = 'demo' AND deleted = 0`).Scan(&n); err != nil || n != limit {
			t.Errorf("%d instances in the API cell (%v), want %d", n, err, limit)
		}
	})
}

// TestQuotaMinMaxCount: a multi-create builds as many as fit when
// min_count does, and refuses when min_count does not; cores count too.
func TestQuotaMinMaxCount(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		srv := quotaAPI(t, d, quota.Defaults{Instances: 5, Cores: 6, RAM: quota.Unlimited})
		client := gopherClient(srv.URL, "demo:demo")
		create := func(flavor string, min, max int) error {
			_, err := servers.Create(context.Background(), client, servers.CreateOpts{Name: "m", FlavorRef: flavor, ImageRef: image.CirrosID,
				Networks: "none", Min: min, Max: max}, nil).Extract()
			return err
		}
		count := func() int {
			var n int
			if err := d.QueryRow(context.Background(), `SELECT COUNT(*) FROM instances WHERE project_id = 'demo'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		// m1.tiny (1 vCPU): 3 of 2..3.
		if err := create("1", 2, 3); err != nil || count() != 3 {
			t.Fatalf("2..3 tiny: %v, %d instances", err, count())
		}
		// Two more fit (5 instances, 6 cores); 3..4 do not: refused with
		// every resource over named, as Nova does, and nothing written.
		err := create("1", 3, 4)
		if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) ||
			!strings.Contains(err.Error(), "Quota exceeded for cores, instances: Requested 4, 3-4, but already used 3, 3 of 6, 5 cores, instances") {
			t.Errorf("3..4 over quota: %v", err)
		}
		if count() != 3 {
			t.Errorf("a refused create wrote instances: %d", count())
		}
		// m1.small has 1 vCPU, m1.medium 2: 3+2*2 cores > 6 refuses 2
		// mediums, 1 fits.
		if err := create("3", 1, 2); err != nil || count() != 4 {
			t.Errorf("1..2 medium: %v, %d instances", err, count())
		}
	})
}
