package compute_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"golang.org/x/crypto/ssh"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// importable makes an OpenSSH public key line with a comment.
func newImportableKey(t *testing.T) (line string, key ssh.PublicKey) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err = ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + " me@laptop", key
}

// selfSigned makes a PEM certificate and its SHA-1 fingerprint in colon hex.
func newSelfSignedCert(t *testing.T) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "demo"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(der)
	var pairs []string
	for _, b := range sum {
		pairs = append(pairs, hex.EncodeToString([]byte{b}))
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), strings.Join(pairs, ":")
}

func listKeyNames(t *testing.T, sc *gophercloud.ServiceClient, opts keypairs.ListOptsBuilder) []string {
	t.Helper()
	pages, err := keypairs.List(sc, opts).AllPages(ctxT(t))
	if err != nil {
		t.Fatalf("list key pairs: %v", err)
	}
	ks, err := keypairs.ExtractKeyPairs(pages)
	if err != nil {
		t.Fatalf("extract key pairs: %v", err)
	}
	out := []string{}
	for _, k := range ks {
		out = append(out, k.Name)
	}
	return out
}

// TestKeypairs covers os-keypairs with gophercloud and raw requests.
func TestKeypairs(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1})
	t.Run("generate", func(t *testing.T) { testKeypairGenerate(t, tr) })
	t.Run("import, list, show, delete", func(t *testing.T) { testKeypairLifecycle(t, tr) })
	t.Run("bad requests", func(t *testing.T) { testKeypairBad(t, tr) })
	t.Run("2.2 type", func(t *testing.T) { testKeypairV22(t, tr) })
	t.Run("2.2 x509 generated", func(t *testing.T) { testKeypairX509Generated(t, tr) })
	t.Run("2.10 user_id", func(t *testing.T) { testKeypairV210(t, tr) })
	t.Run("2.35 pages", func(t *testing.T) { testKeypairV235(t, tr) })
	t.Run("2.75 strict query", func(t *testing.T) { testKeypairV275(t, tr) })
	t.Run("2.92 import only", func(t *testing.T) { testKeypairV292(t, tr) })
}

func testKeypairGenerate(t *testing.T, tr *testtree.Tree) {
	ctx := ctxT(t)
	sc := tr.Compute("gen:gen")
	kp, err := keypairs.Create(ctx, sc, keypairs.CreateOpts{Name: "generated"}).Extract()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if kp.Name != "generated" || kp.UserID != "gen" {
		t.Errorf("created %+v", kp)
	}
	// An RSA key: the public half in OpenSSH form, the private half in
	// PEM (PKCS #1), the two a pair, and Nova's MD5 fingerprint.
	if !strings.HasPrefix(kp.PublicKey, "ssh-rsa ") || !strings.HasSuffix(kp.PublicKey, " Generated-by-Nova") {
		t.Errorf("public key %q", kp.PublicKey)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(kp.PublicKey))
	if err != nil {
		t.Fatalf("public key does not parse: %v", err)
	}
	block, _ := pem.Decode([]byte(kp.PrivateKey))
	if block == nil || block.Type != "RSA PRIVATE KEY" {
		t.Fatalf("private key is not an RSA PEM block: %q", kp.PrivateKey)
	}
	priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	if priv.N.BitLen() != 2048 {
		t.Errorf("RSA key of %d bits, want 2048", priv.N.BitLen())
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	if string(signer.PublicKey().Marshal()) != string(pub.Marshal()) {
		t.Errorf("the private key is not the public key's pair")
	}
	if kp.Fingerprint != ssh.FingerprintLegacyMD5(pub) {
		t.Errorf("fingerprint %q, want %q", kp.Fingerprint, ssh.FingerprintLegacyMD5(pub))
	}
	// The private key is given once: show has no private_key.
	r := tr.Do(t, http.MethodGet, "/v2.1/os-keypairs/generated", "gen:gen", nil)
	if r.Status != http.StatusOK || strings.Contains(string(r.Body), "PRIVATE KEY") {
		t.Errorf("show: %s", r)
	}
}

func testKeypairLifecycle(t *testing.T, tr *testtree.Tree) {
	ctx := ctxT(t)
	sc := tr.Compute(demo)
	line, key := newImportableKey(t)

	// Import at 2.1: 200, no private key, no type.
	r := tr.Do(t, http.MethodPost, "/v2.1/os-keypairs", demo, map[string]any{"keypair": map[string]any{"name": "laptop", "public_key": line}})
	if r.Status != http.StatusOK {
		t.Fatalf("import: %s", r)
	}
	var created struct {
		Keypair map[string]any `json:"keypair"`
	}
	r.JSON(t, &created)
	if got := sortedKeys(created.Keypair); !slices.Equal(got, []string{"fingerprint", "name", "public_key", "user_id"}) {
		t.Errorf("import answered fields %v", got)
	}
	if created.Keypair["fingerprint"] != ssh.FingerprintLegacyMD5(key) || created.Keypair["public_key"] != line ||
		created.Keypair["user_id"] != "demo" || created.Keypair["name"] != "laptop" {
		t.Errorf("import answered %v", created.Keypair)
	}
	for _, name := range []string{"b-key", "A_key", "with space"} {
		l, _ := newImportableKey(t)
		if _, err := keypairs.Create(ctx, sc, keypairs.CreateOpts{Name: name, PublicKey: l}).Extract(); err != nil {
			t.Fatalf("import %q: %v", name, err)
		}
	}

	// List: by name, in Nova's shape, per user (not per project).
	want := []string{"A_key", "b-key", "laptop", "with space"}
	if got := listKeyNames(t, sc, nil); !slices.Equal(got, want) {
		t.Errorf("list %v, want %v", got, want)
	}
	r = tr.Do(t, http.MethodGet, "/v2.1/os-keypairs", demo, nil)
	var list struct {
		Keypairs []map[string]map[string]any `json:"keypairs"`
	}
	r.JSON(t, &list)
	if len(list.Keypairs) != 4 || len(r.Map(t)) != 1 {
		t.Fatalf("list: %s", r)
	}
	for _, e := range list.Keypairs {
		if got := sortedKeys(e["keypair"]); len(e) != 1 || !slices.Equal(got, []string{"fingerprint", "name", "public_key"}) {
			t.Errorf("list entry %v", e)
		}
	}
	if got := listKeyNames(t, tr.Compute("demo:another-project"), nil); !slices.Equal(got, want) {
		t.Errorf("the same user in another project lists %v, want %v", got, want)
	}
	if got := listKeyNames(t, tr.Compute(other), nil); len(got) != 0 {
		t.Errorf("another user lists %v", got)
	}
	// Before 2.10 user_id is ignored, so it shows nothing of others.
	if got := listKeyNames(t, tr.Compute(other), keypairs.ListOpts{UserID: "demo"}); len(got) != 0 {
		t.Errorf("another user with user_id=demo at 2.1 lists %v", got)
	}
	if r := tr.Do(t, http.MethodGet, "/v2.1/demo/os-keypairs", demo, nil); r.Status != http.StatusOK {
		t.Errorf("list with the project in the path: %s", r)
	}

	// Show.
	kp, err := keypairs.Get(ctx, sc, "laptop", nil).Extract()
	if err != nil || kp.PublicKey != line || kp.UserID != "demo" || kp.Fingerprint != ssh.FingerprintLegacyMD5(key) {
		t.Errorf("get: %+v, %v", kp, err)
	}
	r = tr.Do(t, http.MethodGet, "/v2.1/os-keypairs/with%20space", demo, nil)
	var shown struct {
		Keypair map[string]any `json:"keypair"`
	}
	r.JSON(t, &shown)
	if got := sortedKeys(shown.Keypair); !slices.Equal(got, []string{"created_at", "deleted", "deleted_at", "fingerprint", "id", "name", "public_key", "updated_at", "user_id"}) {
		t.Errorf("show fields %v", got)
	}
	if shown.Keypair["deleted"] != false || shown.Keypair["deleted_at"] != nil || shown.Keypair["updated_at"] != nil {
		t.Errorf("show %v", shown.Keypair)
	}
	if id, ok := shown.Keypair["id"].(float64); !ok || id < 1 {
		t.Errorf("show id %v", shown.Keypair["id"])
	}
	if c, _ := shown.Keypair["created_at"].(string); len(c) != len("2006-01-02T15:04:05.000000") {
		t.Errorf("show created_at %q", c)
	}
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/os-keypairs/laptop", other, nil), 404, "Keypair laptop not found for user other")

	// Delete: 202 at 2.1, then gone; another user's delete is a 404.
	faultHas(t, tr.Do(t, http.MethodDelete, "/v2.1/os-keypairs/laptop", other, nil), 404, "Keypair laptop not found for user other")
	r = tr.Do(t, http.MethodDelete, "/v2.1/os-keypairs/laptop", demo, nil)
	if r.Status != http.StatusAccepted || len(r.Body) != 0 {
		t.Fatalf("delete: %s, want 202", r)
	}
	if _, err := keypairs.Get(ctx, sc, "laptop", nil).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("get after delete: %v, want 404", err)
	}
	if err := keypairs.Delete(ctx, sc, "laptop", nil).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("second delete: %v, want 404", err)
	}
	for _, n := range []string{"A_key", "b-key", "with space"} {
		if err := keypairs.Delete(ctx, sc, n, nil).ExtractErr(); err != nil {
			t.Errorf("delete %q: %v", n, err)
		}
	}
	if got := listKeyNames(t, sc, nil); len(got) != 0 {
		t.Errorf("after deleting all: %v", got)
	}
}

func testKeypairBad(t *testing.T, tr *testtree.Tree) {
	const user = "bad:bad"
	line, _ := newImportableKey(t)
	if _, err := keypairs.Create(ctxT(t), tr.Compute(user), keypairs.CreateOpts{Name: "taken", PublicKey: line}).Extract(); err != nil {
		t.Fatal(err)
	}
	cert, _ := newSelfSignedCert(t)
	kp := func(m map[string]any) map[string]any { return map[string]any{"keypair": m} }
	for _, c := range []struct {
		name   string
		body   any
		status int
		want   string
	}{
		{"duplicate name", kp(map[string]any{"name": "taken", "public_key": line}), 409, "Key pair 'taken' already exists."},
		{"duplicate generated", kp(map[string]any{"name": "taken"}), 409, "Key pair 'taken' already exists."},
		{"not a key", kp(map[string]any{"name": "k", "public_key": "ssh-rsa not-base64!"}), 400, "Keypair data is invalid: failed to generate fingerprint"},
		{"empty key", kp(map[string]any{"name": "k", "public_key": ""}), 400, "Keypair data is invalid"},
		{"key blob of another type", kp(map[string]any{"name": "k", "public_key": "ssh-rsa " + strings.Fields(line)[1]}), 400, "Keypair data is invalid"},
		{"a certificate as ssh", kp(map[string]any{"name": "k", "public_key": cert}), 400, "Keypair data is invalid"},
		{"key not a string", kp(map[string]any{"name": "k", "public_key": 5}), 400, "public_key"},
		{"name with a slash", kp(map[string]any{"name": "a/b"}), 400, "Invalid input for field/attribute name"},
		{"name with @ before 2.92", kp(map[string]any{"name": "me@host"}), 400, "does not match"},
		{"name too long", kp(map[string]any{"name": strings.Repeat("k", 256)}), 400, "is too long"},
		{"empty name", kp(map[string]any{"name": ""}), 400, "should be non-empty"},
		{"name with a leading space", kp(map[string]any{"name": " k"}), 400, "An invalid 'name' value was provided"},
		{"name not a string", kp(map[string]any{"name": 7}), 400, "is not of type 'string'"},
		{"no name", kp(map[string]any{"public_key": line}), 400, "'name' is a required property"},
		{"type before 2.2", kp(map[string]any{"name": "k", "type": "ssh"}), 400, "Additional properties are not allowed ('type' was unexpected)"},
		{"user_id before 2.10", kp(map[string]any{"name": "k", "user_id": "bad"}), 400, "Additional properties are not allowed ('user_id' was unexpected)"},
		{"keypair not an object", map[string]any{"keypair": "k"}, 400, "is not of type 'object'"},
		{"no keypair", map[string]any{"name": "k"}, 400, "'keypair' is a required property"},
		{"extra top-level key", map[string]any{"keypair": map[string]any{"name": "k"}, "x": 1}, 400, "Additional properties are not allowed"},
		{"not JSON", "name=k", 400, "Malformed request body"},
		{"a JSON array", `[{"keypair": {"name": "k"}}]`, 400, "is not of type 'object'"},
	} {
		faultHas(t, tr.Do(t, http.MethodPost, "/v2.1/os-keypairs", user, c.body), c.status, c.want)
	}
	// Nothing was written.
	if got := listKeyNames(t, tr.Compute(user), nil); !slices.Equal(got, []string{"taken"}) {
		t.Errorf("after bad requests: %v, want [taken]", got)
	}
}

func testKeypairV22(t *testing.T, tr *testtree.Tree) {
	v := needMicroversion(t, 2)
	const user = "typed:typed"
	line, _ := newImportableKey(t)
	r := tr.Do(t, http.MethodPost, "/v2.1/os-keypairs", user, map[string]any{"keypair": map[string]any{"name": "s", "public_key": line}}, atVersion(v)...)
	if r.Status != http.StatusCreated {
		t.Fatalf("import at %s: %s, want 201", v, r)
	}
	if kp := r.Map(t)["keypair"].(map[string]any); kp["type"] != "ssh" {
		t.Errorf("type %v, want ssh", kp["type"])
	}
	cert, fp := newSelfSignedCert(t)
	sc := tr.Compute(user)
	sc.Microversion = v
	kp, err := keypairs.Create(ctxT(t), sc, keypairs.CreateOpts{Name: "cert", Type: "x509", PublicKey: cert}).Extract()
	if err != nil {
		t.Fatalf("import a certificate: %v", err)
	}
	if kp.Type != "x509" || kp.Fingerprint != fp {
		t.Errorf("certificate key pair %+v, want type x509 and fingerprint %s", kp, fp)
	}
	faultHas(t, tr.Do(t, http.MethodPost, "/v2.1/os-keypairs", user, map[string]any{"keypair": map[string]any{"name": "k", "type": "x509", "public_key": line}}, atVersion(v)...),
		400, "failed to generate X509 fingerprint")
	faultHas(t, tr.Do(t, http.MethodPost, "/v2.1/os-keypairs", user, map[string]any{"keypair": map[string]any{"name": "k", "type": "rsa"}}, atVersion(v)...),
		400, "'rsa' is not one of ['ssh', 'x509']")
	r = tr.Do(t, http.MethodGet, "/v2.1/os-keypairs", user, nil, atVersion(v)...)
	var list struct {
		Keypairs []map[string]map[string]any `json:"keypairs"`
	}
	r.JSON(t, &list)
	if len(list.Keypairs) != 2 || list.Keypairs[0]["keypair"]["type"] != "x509" || list.Keypairs[1]["keypair"]["type"] != "ssh" {
		t.Errorf("list at %s: %s", v, r)
	}
	if r := tr.Do(t, http.MethodGet, "/v2.1/os-keypairs/cert", user, nil, atVersion(v)...); r.Map(t)["keypair"].(map[string]any)["type"] != "x509" {
		t.Errorf("show at %s: %s", v, r)
	}
	for _, n := range []string{"s", "cert"} {
		if r := tr.Do(t, http.MethodDelete, "/v2.1/os-keypairs/"+n, user, nil, atVersion(v)...); r.Status != http.StatusNoContent {
			t.Errorf("delete at %s: %s, want 204", v, r)
		}
	}
}

func testKeypairV210(t *testing.T, tr *testtree.Tree) {
	v := needMicroversion(t, 10)
	line, _ := newImportableKey(t)
	as := tr.Compute(admin)
	as.Microversion = v
	kp, err := keypairs.Create(ctxT(t), as, keypairs.CreateOpts{Name: "given", UserID: "owner", PublicKey: line}).Extract()
	if err != nil || kp.UserID != "owner" {
		t.Fatalf("admin creates for another user: %+v, %v", kp, err)
	}
	if got := listKeyNames(t, tr.Compute("owner:p"), nil); !slices.Equal(got, []string{"given"}) {
		t.Errorf("the owner lists %v", got)
	}
	if got := listKeyNames(t, as, keypairs.ListOpts{UserID: "owner"}); !slices.Equal(got, []string{"given"}) {
		t.Errorf("the admin lists the owner's: %v", got)
	}
	if _, err := keypairs.Get(ctxT(t), as, "given", keypairs.GetOpts{UserID: "owner"}).Extract(); err != nil {
		t.Errorf("the admin shows the owner's: %v", err)
	}
	// A user_id longer than Nova's column (255) is no user: a 400 naming
	// it, and no key pair.
	for _, n := range []int{256, 70 << 10} {
		long := strings.Repeat("u", n)
		r := tr.Do(t, http.MethodPost, "/v2.1/os-keypairs", admin, map[string]any{"keypair": map[string]any{"name": "long", "user_id": long, "public_key": line}}, atVersion(v)...)
		faultHas(t, r, 400, "Invalid input for field/attribute user_id.")
		if len(r.Body) > 4096 {
			t.Errorf("the fault for a %d-character user_id is %d bytes: it echoes the value", n, len(r.Body))
		}
	}
	if got := listKeyNames(t, as, keypairs.ListOpts{UserID: strings.Repeat("u", 256)}); len(got) != 0 {
		t.Errorf("a refused key pair was stored: %v", got)
	}
	// Others may not name another user.
	faultHas(t, tr.Do(t, http.MethodPost, "/v2.1/os-keypairs", demo, map[string]any{"keypair": map[string]any{"name": "x", "user_id": "owner", "public_key": line}}, atVersion(v)...),
		403, "Policy doesn't allow os_compute_api:os-keypairs:create to be performed.")
	for _, c := range []struct{ method, path, rule string }{
		{"GET", "/v2.1/os-keypairs?user_id=owner", "index"},
		{"GET", "/v2.1/os-keypairs/given?user_id=owner", "show"},
		{"DELETE", "/v2.1/os-keypairs/given?user_id=owner", "delete"},
	} {
		faultHas(t, tr.Do(t, c.method, c.path, demo, nil, atVersion(v)...), 403, "os_compute_api:os-keypairs:"+c.rule)
	}
	// Naming oneself is fine.
	if r := tr.Do(t, http.MethodGet, "/v2.1/os-keypairs?user_id=owner", "owner:p", nil, atVersion(v)...); r.Status != http.StatusOK {
		t.Errorf("the owner naming themself: %s", r)
	}
	if err := keypairs.Delete(ctxT(t), as, "given", keypairs.DeleteOpts{UserID: "owner"}).ExtractErr(); err != nil {
		t.Errorf("the admin deletes the owner's: %v", err)
	}
	if got := listKeyNames(t, tr.Compute("owner:p"), nil); len(got) != 0 {
		t.Errorf("after the admin's delete the owner lists %v", got)
	}
}

func testKeypairV235(t *testing.T, tr *testtree.Tree) {
	v := needMicroversion(t, 35)
	const user = "pager:pager"
	sc := tr.Compute(user)
	for i := range 5 {
		l, _ := newImportableKey(t)
		if _, err := keypairs.Create(ctxT(t), sc, keypairs.CreateOpts{Name: fmt.Sprintf("k%d", i), PublicKey: l}).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	path := "/v2.1/os-keypairs?limit=2"
	for range 5 {
		r := tr.Do(t, http.MethodGet, path, user, nil, atVersion(v)...)
		var page struct {
			Keypairs []map[string]map[string]any `json:"keypairs"`
			Links    []map[string]string         `json:"keypairs_links"`
		}
		r.JSON(t, &page)
		for _, k := range page.Keypairs {
			names = append(names, k["keypair"]["name"].(string))
		}
		if len(page.Links) == 0 {
			break
		}
		if page.Links[0]["rel"] != "next" || !strings.Contains(page.Links[0]["href"], "/v2.1/os-keypairs?") {
			t.Fatalf("links %v", page.Links)
		}
		path = strings.TrimPrefix(page.Links[0]["href"], strings.TrimSuffix(tr.APIURL(), "/v2.1"))
	}
	if want := []string{"k0", "k1", "k2", "k3", "k4"}; !slices.Equal(names, want) {
		t.Errorf("pages %v, want %v", names, want)
	}
	if r := tr.Do(t, http.MethodGet, "/v2.1/os-keypairs?limit=0", user, nil, atVersion(v)...); !strings.Contains(string(r.Body), `"keypairs":[]`) {
		t.Errorf("limit=0: %s", r)
	}
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/os-keypairs?marker=nosuch", user, nil, atVersion(v)...), 400, "Marker nosuch could not be found.")
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/os-keypairs?limit=two", user, nil, atVersion(v)...), 400, "Invalid input for query parameters limit")
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/os-keypairs?limit=-1", user, nil, atVersion(v)...), 400, "Invalid input for query parameters limit")
	// Before 2.35 limit is ignored.
	if got := listKeyNames(t, sc, keypairs.ListOpts{}); len(got) != 5 {
		t.Errorf("at 2.1: %v", got)
	}
}

func testKeypairV275(t *testing.T, tr *testtree.Tree) {
	v := needMicroversion(t, 75)
	for _, p := range []string{"/v2.1/os-keypairs?foo=1", "/v2.1/os-keypairs/x?limit=1"} {
		faultHas(t, tr.Do(t, http.MethodGet, p, demo, nil, atVersion(v)...), 400, "Additional properties are not allowed")
	}
	if r := tr.Do(t, http.MethodGet, "/v2.1/os-keypairs?foo=1", demo, nil, atVersion("2.74")...); r.Status != http.StatusOK {
		t.Errorf("unknown parameter at 2.74: %s", r)
	}
}

func testKeypairV292(t *testing.T, tr *testtree.Tree) {
	v := needMicroversion(t, 92)
	const user = "new:new"
	post := func(ver string, kp map[string]any) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/os-keypairs", user, map[string]any{"keypair": kp}, atVersion(ver)...)
	}
	line, _ := newImportableKey(t)
	// 2.92: no generation, and Nova's pattern with @ and . (its
	// jsonschema messages, the pattern as Python's repr).
	for _, c := range []struct {
		name string
		kp   map[string]any
		want string
	}{
		{"generation", map[string]any{"name": "k"}, "Invalid input for field/attribute keypair. Value: {'name': 'k'}. 'public_key' is a required property"},
		{"a slash", map[string]any{"name": "a/b", "public_key": line},
			`Invalid input for field/attribute name. Value: a/b. 'a/b' does not match '^[_\\-\\@\\. a-zA-Z0-9]+$'`},
	} {
		if msg := testtree.Fault(t, post(v, c.kp), http.StatusBadRequest); msg != c.want {
			t.Errorf("%s at %s: %q, want %q", c.name, v, msg, c.want)
		}
	}
	// 2.91: @ and . are refused, a key is still generated.
	if msg := testtree.Fault(t, post("2.91", map[string]any{"name": "me@host.example", "public_key": line}), http.StatusBadRequest); msg !=
		`Invalid input for field/attribute name. Value: me@host.example. 'me@host.example' does not match '^[_\\- a-zA-Z0-9]+$'` {
		t.Errorf("@ at 2.91: %q", msg)
	}
	var list struct {
		Keypairs []any `json:"keypairs"`
	}
	tr.Do(t, http.MethodGet, "/v2.1/os-keypairs", user, nil).JSON(t, &list)
	if len(list.Keypairs) != 0 {
		t.Fatalf("refused creates wrote %d key pairs", len(list.Keypairs))
	}
	if r := post("2.91", map[string]any{"name": "generated"}); r.Status != http.StatusOK && r.Status != http.StatusCreated {
		t.Errorf("generation at 2.91: %s", r)
	}
	r := post(v, map[string]any{"name": "me@host.example", "public_key": line})
	if r.Status != http.StatusCreated {
		t.Fatalf("import with @ and . at %s: %s", v, r)
	}
	var out struct {
		Keypair struct {
			Name       string  `json:"name"`
			PrivateKey *string `json:"private_key"`
		} `json:"keypair"`
	}
	r.JSON(t, &out)
	if out.Keypair.Name != "me@host.example" || out.Keypair.PrivateKey != nil {
		t.Errorf("import at %s answered %+v", v, out.Keypair)
	}
}
