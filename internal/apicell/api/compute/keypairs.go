package compute

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/db"
)

// Key pairs belong to a user (not a project), as in Nova. An admin may
// name another user with user_id (2.10). The microversions that change
// them: 2.2 (type, 201 on create, 204 on delete), 2.10 (user_id), 2.35
// (limit and marker), 2.75 (unknown query parameters refused), 2.92 (no
// key generation; '@' and '.' allowed in names).

// keypairsHandler is os-keypairs.
type keypairsHandler struct {
	*base
	quota *quotaChecker
}

func (h *keypairsHandler) register(rt *router) {
	rt.handle("GET /v2.1/os-keypairs", "", h.listKeypairs)
	rt.handle("POST /v2.1/os-keypairs", "", h.createKeypair)
	rt.handle("GET /v2.1/os-keypairs/{name}", "", h.showKeypair)
	rt.handle("DELETE /v2.1/os-keypairs/{name}", "", h.deleteKeypair)
}

var (
	keypairNameRE    = regexp.MustCompile(`^[_\- a-zA-Z0-9]+$`)
	keypairNameRE292 = regexp.MustCompile(`^[_\-@. a-zA-Z0-9]+$`)
)

// checkKeypairName checks Nova's keypair_name_special_chars (2.92: _v292).
func checkKeypairName(v any, v292 bool) error {
	if err := checkName("name", v); err != nil {
		return err
	}
	s := v.(string)
	re, pattern := keypairNameRE, `^[_\- a-zA-Z0-9]+$`
	if v292 {
		re, pattern = keypairNameRE292, `^[_\-\@\. a-zA-Z0-9]+$`
	}
	if !re.MatchString(s) {
		return invalid("name", s, "%s does not match %s", pyRepr(s), pyRepr(pattern))
	}
	return nil
}

// keypairView shows a key pair with the fields Nova's view builder picks.
func keypairView(r *http.Request, k *apidb.KeyPair, show bool) map[string]any {
	v := map[string]any{"name": k.Name, "public_key": k.PublicKey, "fingerprint": k.Fingerprint}
	if atLeast(r, 2) {
		v["type"] = k.Type
	}
	if show {
		v["user_id"] = k.UserID
		v["created_at"] = isoMicro(k.CreatedAt)
		v["deleted"] = false
		v["deleted_at"] = nil
		v["updated_at"] = nil
		v["id"] = k.ID
	}
	return v
}

// colonHex is Nova's fingerprint form: lower-case hex pairs joined by ':'.
func colonHex(sum []byte) string {
	h := hex.EncodeToString(sum)
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// sshFingerprint checks that key is an OpenSSH public key ("type base64
// [comment]", not a certificate) and returns Nova's fingerprint: the MD5
// of the key blob in colon hex (nova.crypto.generate_fingerprint).
func sshFingerprint(key string) (string, error) {
	invalidKey := bad("Keypair data is invalid: failed to generate fingerprint")
	kind, rest, ok := strings.Cut(key, " ")
	if !ok {
		return "", invalidKey
	}
	b64, _, _ := strings.Cut(rest, " ")
	blob, err := base64.StdEncoding.DecodeString(strings.TrimRight(b64, "\r\n\t "))
	if err != nil {
		return "", invalidKey
	}
	pk, err := ssh.ParsePublicKey(blob)
	if err != nil || pk.Type() != kind {
		return "", invalidKey
	}
	if _, isCert := pk.(*ssh.Certificate); isCert {
		return "", invalidKey
	}
	sum := md5.Sum(blob)
	return colonHex(sum[:]), nil
}

// x509Fingerprint checks that cert is a PEM x509 certificate and returns
// the SHA-1 of its DER in colon hex (nova.crypto.generate_x509_fingerprint).
func x509Fingerprint(cert string) (string, error) {
	block, _ := pem.Decode([]byte(cert))
	if block == nil || block.Type != "CERTIFICATE" {
		return "", bad("Keypair data is invalid: failed to generate X509 fingerprint. Error message: Unable to load PEM file.")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return "", bad("Keypair data is invalid: failed to generate X509 fingerprint. Error message: %v", err)
	}
	sum := sha1.Sum(block.Bytes)
	return colonHex(sum[:]), nil
}

// generateSSHKey makes a key pair as nova.crypto.generate_key_pair does:
// RSA 2048, the private key in PEM (PKCS #1), the public key as
// "ssh-rsa ... Generated-by-Nova".
func generateSSHKey() (private, public, fingerprint string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", "", fmt.Errorf("generate key pair: %w", err)
	}
	pk, err := ssh.NewPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", "", fmt.Errorf("generate key pair: %w", err)
	}
	private = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	public = pk.Type() + " " + base64.StdEncoding.EncodeToString(pk.Marshal()) + " Generated-by-Nova"
	sum := md5.Sum(pk.Marshal())
	return private, public, colonHex(sum[:]), nil
}

// keypairUser is the user whose key pairs a request is about: a user_id
// query parameter from 2.10 (its first value), else the caller; the policy
// (admin or the user themself) is checked for rule.
func (h *keypairsHandler) keypairUser(r *http.Request, rule string) (string, error) {
	c := httpkit.CallerFrom(r.Context())
	user := c.UserID
	if atLeast(r, 10) {
		if v := r.URL.Query()["user_id"]; len(v) > 0 && v[0] != "" {
			user = v[0]
		}
	}
	if err := h.authorize(r.Context(), "os_compute_api:os-keypairs:"+rule, policy.Target{"user_id": user}); err != nil {
		return "", err
	}
	return user, nil
}

func (h *keypairsHandler) listKeypairs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	paged := atLeast(r, 35)
	limit := 0
	if paged {
		var err error
		if limit, err = queryLimit(q); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if atLeast(r, 75) {
		if err := checkQuery(q, "user_id", "limit", "marker"); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	user, err := h.keypairUser(r, "index")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var kps []*apidb.KeyPair
	marker := ""
	switch {
	case !paged:
		kps, err = apidb.ListKeyPairs(ctx, h.cfg.DB, user, 0, "")
	case limit > 0:
		marker = lastValue(q, "marker")
		kps, err = apidb.ListKeyPairs(ctx, h.cfg.DB, user, limit, marker)
	}
	if errors.Is(err, apidb.ErrNotFound) {
		h.fail(w, r, bad("Marker %s could not be found.", marker))
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(kps))
	for _, k := range kps {
		out = append(out, map[string]any{"keypair": keypairView(r, k, false)})
	}
	resp := map[string]any{"keypairs": out}
	if paged && limit > 0 && len(kps) == limit {
		resp["keypairs_links"] = nextLink(r, "os-keypairs", kps[len(kps)-1].Name)
	}
	httpkit.WriteJSON(w, http.StatusOK, resp)
}

func (h *keypairsHandler) createKeypair(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	vals, err := readKeypairCreate(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	user := c.UserID
	if u, _ := vals["user_id"].(string); u != "" {
		user = u
	}
	if err := h.authorize(ctx, "os_compute_api:os-keypairs:create", policy.Target{"user_id": user}); err != nil {
		h.fail(w, r, err)
		return
	}
	kp := &apidb.KeyPair{UserID: user, Name: strings.TrimSpace(vals["name"].(string)), Type: "ssh", CreatedAt: h.cfg.Now().UTC()}
	if t, ok := vals["type"].(string); ok {
		kp.Type = t
	}
	private, err := keypairKeys(kp, vals)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := h.quota.checkKeyPairs(ctx, tx, c.ProjectID, kp.UserID); err != nil {
			return err
		}
		return apidb.CreateKeyPair(ctx, tx, kp)
	})
	if errors.Is(err, apidb.ErrExists) {
		err = conflict("Key pair '%s' already exists.", kp.Name)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("key pair created", "request_id", httpkit.RequestID(ctx), "user", user, "name", kp.Name, "type", kp.Type, "generated", private != "")
	v := keypairView(r, kp, false)
	v["user_id"] = kp.UserID
	if private != "" {
		v["private_key"] = private
	}
	status := http.StatusOK
	if atLeast(r, 2) {
		status = http.StatusCreated
	}
	httpkit.WriteJSON(w, status, map[string]any{"keypair": v})
}

// readKeypairCreate reads a key pair create's body and checks it as Nova's
// schema does at the request's microversion.
func readKeypairCreate(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	body, err := readObject(w, r)
	if err != nil {
		return nil, err
	}
	v292 := atLeast(r, 92)
	fields := []string{"name", "public_key"}
	if atLeast(r, 2) {
		fields = []string{"name", "type", "public_key"}
	}
	if atLeast(r, 10) {
		fields = append(fields, "user_id")
	}
	required := []string{"name"}
	if v292 {
		required = append(required, "public_key")
	}
	return objectField(body, "keypair", fields, required, func(k map[string]any) error {
		if v, ok := k["name"]; ok {
			if err := checkKeypairName(v, v292); err != nil {
				return err
			}
		}
		if v, ok := k["type"]; ok && atLeast(r, 2) {
			if err := checkString("type", v, 0, 1<<30); err != nil {
				return err
			}
			if v != "ssh" && v != "x509" {
				return invalid("type", v, "%s is not one of ['ssh', 'x509']", pyRepr(v))
			}
		}
		if v, ok := k["public_key"]; ok {
			if err := checkString("public_key", v, 0, 1<<30); err != nil {
				return err
			}
		}
		// Nova's schema says only 'string', but stores user_id in a
		// String(255) column (nova/db/api/models.py KeyPair), and its
		// parameter_types.user_id is at most 255: a longer one is no user.
		if v, ok := k["user_id"]; ok {
			if err := checkString("user_id", v, 0, 1<<30); err != nil {
				return err
			}
			if s := v.(string); utf8.RuneCountInString(s) > 255 {
				return bad("Invalid input for field/attribute user_id. Value: %s. is too long (at most 255 characters)", abbreviate(s))
			}
		}
		return nil
	})
}

// keypairKeys fills in a new key pair's public key and fingerprint: from
// the public_key given (an SSH key, or an x509 certificate), or a new SSH
// key or x509 certificate whose private half is returned.
func keypairKeys(kp *apidb.KeyPair, vals map[string]any) (private string, err error) {
	if pub, ok := vals["public_key"].(string); ok {
		kp.PublicKey = pub
		if kp.Type == "x509" {
			kp.Fingerprint, err = x509Fingerprint(pub)
		} else {
			kp.Fingerprint, err = sshFingerprint(pub)
		}
		return "", err
	}
	if kp.Type == "x509" {
		private, kp.PublicKey, kp.Fingerprint, err = generateX509Key(kp.UserID, kp.CreatedAt)
		return private, err
	}
	private, kp.PublicKey, kp.Fingerprint, err = generateSSHKey()
	return private, err
}

func (h *keypairsHandler) showKeypair(w http.ResponseWriter, r *http.Request) {
	k, err := h.loadKeypair(r, "show")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"keypair": keypairView(r, k, true)})
}

func (h *keypairsHandler) deleteKeypair(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	k, err := h.loadKeypair(r, "delete")
	if err == nil {
		err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return apidb.DeleteKeyPair(ctx, tx, k.UserID, k.Name) })
		if errors.Is(err, apidb.ErrNotFound) {
			err = notFound("Keypair %s not found for user %s", k.Name, k.UserID)
		}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("key pair deleted", "request_id", httpkit.RequestID(ctx), "user", k.UserID, "name", k.Name)
	if atLeast(r, 2) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// loadKeypair reads the key pair a show or delete names, after the query
// and policy checks.
func (h *keypairsHandler) loadKeypair(r *http.Request, rule string) (*apidb.KeyPair, error) {
	if atLeast(r, 75) {
		if err := checkQuery(r.URL.Query(), "user_id"); err != nil {
			return nil, err
		}
	}
	user, err := h.keypairUser(r, rule)
	if err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	k, err := apidb.GetKeyPair(r.Context(), h.cfg.DB, user, name)
	if errors.Is(err, apidb.ErrNotFound) {
		return nil, notFound("Keypair %s not found for user %s", name, user)
	}
	return k, err
}
