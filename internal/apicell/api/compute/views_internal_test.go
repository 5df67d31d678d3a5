package compute

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/api/jsonenc"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
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
	pol, err := policy.NewFromRules(slices.Concat(policy.Base, Rules), nil)
	if err != nil {
		b.Fatal(err)
	}
	a := &serversHandler{base: &base{cfg: Config{Policy: pol}}}
	r := httptest.NewRequest("GET", "http://127.0.0.1:8774/v2.1/servers/detail", nil)
	ctx := httpkit.WithCaller(r.Context(), httpkit.Caller{Principal: authn.Principal{UserID: "admin", ProjectID: "admin", Roles: []string{"admin", "member", "reader"}}, Admin: true})
	r = r.WithContext(context.WithValue(ctx, keyVersion, MinVersion))
	// The rights are checked once per list, as GET /servers/detail does.
	rights := a.rightsOn(r, "admin")
	b.Run("views", func(b *testing.B) {
		for b.Loop() {
			for _, in := range insts {
				_ = a.serverViewAs(r, in, rights)
			}
		}
	})
	b.Run("views_and_json", func(b *testing.B) {
		for b.Loop() {
			out := make([]any, 0, len(insts))
			for _, in := range insts {
				out = append(out, a.serverViewAs(r, in, rights))
			}
			if err := jsonenc.Encode(io.Discard, map[string]any{"servers": out}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestHostname: Nova's sanitize_hostname, and its "Server-{uuid}" when
// nothing is left.
func TestHostname(t *testing.T) {
	const id = "11111111-2222-3333-4444-555555555555"
	for _, c := range []struct{ name, want string }{
		{"Web Server_01.prod", "web-server-01-prod"},
		{"--a--", "a"},
		{"Ärger Ω süß", "ärger--süß"},
		{"a!b@c#d", "abcd"},
		{"日本", "Server-" + id},
		{"...", "Server-" + id},
		// Cut to 63 characters before the hyphens at the ends go.
		{strings.Repeat("x", 62) + "-y", strings.Repeat("x", 62)},
	} {
		if got := hostname(c.name, id); got != c.want {
			t.Errorf("hostname(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}
