package compute

import (
	"net/http"
	"slices"

	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

type noSender struct{}

func (noSender) Send(context.Context, *db.Tx, string, string, string, any) error { return nil }

type noCaller struct{}

func (noCaller) Call(context.Context, string, string, string, any, any) error {
	return errors.New("no cells here")
}

func (noCaller) Gather(context.Context, string, string, any) ([]wire.Result, []string, error) {
	return nil, nil, errors.New("no cells here")
}

// TestCreateTags checks the helper a create with tags (2.52) calls in its
// transaction: the tags are checked as Nova's create schema, a bad one
// is a 400 that rolls the whole create back, and good ones are written to
// every instance of the request once.
func TestCreateTags(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
			t.Fatal(err)
		}
		pol, err := policy.NewFromRules(slices.Concat(policy.Base, Rules), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(Config{Cell: "api", DB: d, Sender: noSender{}, Caller: noCaller{}, Auth: authn.NoAuth{}, Policy: pol})
		if err != nil {
			t.Fatal(err)
		}
		mk := func(uuids ...string) []apidb.Instance {
			var out []apidb.Instance
			for _, u := range uuids {
				out = append(out, apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "s", ProjectID: "p", UserID: "u",
					ImageRef: "i", ReservationID: "r", CreatedAt: time.Now()}, FlavorID: "1", VMState: "building"})
			}
			return out
		}
		create := func(tags []string, uuids ...string) error {
			return d.InTx(ctx, func(tx *db.Tx) error {
				if err := apidb.Create(ctx, tx, mk(uuids...)); err != nil {
					return err
				}
				return createTags(ctx, tx, uuids, tags)
			})
		}
		if err := create([]string{"web", "prod", "web"}, "u1", "u2"); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{"u1", "u2"} {
			if tags, _ := apidb.ListTags(ctx, d, u); strings.Join(tags, ",") != "prod,web" {
				t.Errorf("%s tags %v, want prod,web", u, tags)
			}
		}
		many := make([]string, 51)
		for i := range many {
			many[i] = strings.Repeat("x", i+1)
		}
		for _, bad := range [][]string{{"a/b"}, {"a,b"}, {""}, {strings.Repeat("t", 61)}, many} {
			err := create(bad, "u3")
			var br *httpkit.Fault
			if !errors.As(err, &br) || br.Status != http.StatusBadRequest {
				t.Errorf("tags %q: %v, want a bad request", bad, err)
			}
			if _, err := apidb.Get(ctx, d, "u3"); !errors.Is(err, apidb.ErrNotFound) {
				t.Fatalf("tags %q: the create was written (%v)", bad, err)
			}
		}
		if err := create(nil, "u4"); err != nil {
			t.Errorf("no tags: %v", err)
		}
	})
}

func TestParseCreateTags(t *testing.T) {
	for _, c := range []struct{ raw, want, err string }{
		{`["a", "b"]`, "a,b", ""},
		{`[]`, "", ""},
		{`"a"`, "", `Invalid input for field/attribute tags. Value: a. 'a' is not of type 'array'`},
		{`["a", "b/c"]`, "", `Invalid input for field/attribute 1. Value: b/c. 'b/c' does not match '^[^,/]*$'`},
		{`[1]`, "", `Invalid input for field/attribute 0. Value: 1. 1 is not of type 'string'`},
		{`[""]`, "", `'' should be non-empty`},
	} {
		tags, err := parseCreateTags([]byte(c.raw))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want %q", c.raw, err, c.err)
			}
			continue
		}
		if err != nil || strings.Join(tags, ",") != c.want {
			t.Errorf("%s: %v %v, want %s", c.raw, tags, err, c.want)
		}
	}
}
