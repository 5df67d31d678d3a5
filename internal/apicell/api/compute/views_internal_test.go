package compute

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/api/jsonenc"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// BenchmarkServerDetailPage: the views of a page of 1,000 servers, as GET
// /servers/detail shows them to an administrator at 2.1, and their JSON.
func BenchmarkServerDetailPage(b *testing.B) {
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	insts := make([]*apidb.Instance, 1000)
	for i := range insts {
		insts[i] = &apidb.Instance{
			InstanceSpec: wire.InstanceSpec{UUID: fmt.Sprintf("%08d-1111-4222-8333-444455556666", i), Name: fmt.Sprintf("cellcloud-bench-%d", i),
				ProjectID: "demo", UserID: "demo", ImageRef: "img", AvailabilityZone: "nova", ReservationID: "r-x", CreatedAt: t0},
			FlavorID: "1", Flavor: apidb.DefaultFlavors[0], Cell: "api!cell1", Host: "cell1-host007", Node: "cell1-host007",
			VMState: "active", PowerState: 1, UpdatedAt: t0, LaunchedAt: t0,
			Addresses: []wire.Address{{Network: "private", Addr: "10.0.3.7", Version: 4, MAC: "fa:16:3e:00:00:01"}},
		}
	}
	a := &serversHandler{base: &base{}}
	r := httptest.NewRequest("GET", "http://127.0.0.1:8774/v2.1/servers/detail", nil)
	ctx := httpkit.WithCaller(r.Context(), httpkit.Caller{Principal: authn.Principal{UserID: "admin", ProjectID: "admin"}, Admin: true})
	r = r.WithContext(context.WithValue(ctx, keyVersion, MinVersion))
	b.Run("views", func(b *testing.B) {
		for b.Loop() {
			for _, in := range insts {
				_ = a.serverView(r, in)
			}
		}
	})
	b.Run("views_and_json", func(b *testing.B) {
		for b.Loop() {
			out := make([]any, 0, len(insts))
			for _, in := range insts {
				out = append(out, a.serverView(r, in))
			}
			if err := jsonenc.Encode(io.Discard, map[string]any{"servers": out}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
