package apidb_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

func createKeyPair(t *testing.T, d *db.DB, k *apidb.KeyPair) error {
	t.Helper()
	ctx := context.Background()
	return d.InTx(ctx, func(tx *db.Tx) error { return apidb.CreateKeyPair(ctx, tx, k) })
}

func keyPairNames(ks []*apidb.KeyPair) []string {
	out := []string{}
	for _, k := range ks {
		out = append(out, k.Name)
	}
	return out
}

func TestKeyPairs(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)

		// Names in code point order: "B" < "_x" < "a" < "a b" < "b".
		names := []string{"b", "a", "_x", "B", "a b"}
		var last int64
		for i, n := range names {
			k := &apidb.KeyPair{UserID: "u1", Name: n, Fingerprint: "fp-" + n, PublicKey: "ssh-rsa AAAA " + n,
				CreatedAt: t0.Add(time.Duration(i) * time.Second)}
			if err := createKeyPair(t, d, k); err != nil {
				t.Fatalf("create %q: %v", n, err)
			}
			if k.ID <= last || k.Type != "ssh" {
				t.Errorf("key pair %q: id %d after %d, type %q; want increasing ids and type ssh", n, k.ID, last, k.Type)
			}
			last = k.ID
		}
		// The same name is another user's own; twice for one user is a conflict.
		if err := createKeyPair(t, d, &apidb.KeyPair{UserID: "u2", Name: "a", Type: "x509", CreatedAt: t0}); err != nil {
			t.Fatalf("same name for another user: %v", err)
		}
		if err := createKeyPair(t, d, &apidb.KeyPair{UserID: "u1", Name: "a", CreatedAt: t0}); !errors.Is(err, apidb.ErrExists) {
			t.Fatalf("duplicate name: %v, want ErrExists", err)
		}

		k, err := apidb.GetKeyPair(ctx, d, "u1", "a b")
		if err != nil {
			t.Fatal(err)
		}
		if k.UserID != "u1" || k.Fingerprint != "fp-a b" || k.PublicKey != "ssh-rsa AAAA a b" || !k.CreatedAt.Equal(t0.Add(4*time.Second)) {
			t.Errorf("GetKeyPair = %+v", k)
		}
		if k, err := apidb.GetKeyPair(ctx, d, "u2", "a"); err != nil || k.Type != "x509" {
			t.Errorf("GetKeyPair(u2, a) = %+v, %v", k, err)
		}
		if _, err := apidb.GetKeyPair(ctx, d, "u3", "a"); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("another user's key pair: %v, want ErrNotFound", err)
		}

		all, err := apidb.ListKeyPairs(ctx, d, "u1", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"B", "_x", "a", "a b", "b"}
		if got := keyPairNames(all); !slices.Equal(got, want) {
			t.Errorf("list = %v, want %v", got, want)
		}
		// Pages of two follow each other to the end.
		var paged []string
		marker := ""
		for range 4 {
			page, err := apidb.ListKeyPairs(ctx, d, "u1", 2, marker)
			if err != nil {
				t.Fatalf("page after %q: %v", marker, err)
			}
			paged = append(paged, keyPairNames(page)...)
			if len(page) < 2 {
				break
			}
			marker = page[len(page)-1].Name
		}
		if !slices.Equal(paged, want) {
			t.Errorf("paged list = %v, want %v", paged, want)
		}
		if _, err := apidb.ListKeyPairs(ctx, d, "u1", 2, "nosuch"); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("unknown marker: %v, want ErrNotFound", err)
		}
		if _, err := apidb.ListKeyPairs(ctx, d, "u2", 2, "b"); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("another user's key pair as marker: %v, want ErrNotFound", err)
		}

		del := func(user, name string) error {
			return d.InTx(ctx, func(tx *db.Tx) error { return apidb.DeleteKeyPair(ctx, tx, user, name) })
		}
		if err := del("u1", "a"); err != nil {
			t.Fatal(err)
		}
		if err := del("u1", "a"); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("second delete: %v, want ErrNotFound", err)
		}
		if _, err := apidb.GetKeyPair(ctx, d, "u2", "a"); err != nil {
			t.Errorf("deleting u1's key pair deleted u2's: %v", err)
		}
		// The name is free again.
		if err := createKeyPair(t, d, &apidb.KeyPair{UserID: "u1", Name: "a", CreatedAt: t0}); err != nil {
			t.Errorf("create after delete: %v", err)
		}
	})
}
