package compute_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"golang.org/x/crypto/pkcs12"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// testKeypairX509Generated: from 2.2, type x509 without a public key
// generates what nova.crypto.generate_winrm_x509_cert does: public_key a
// PEM self-signed certificate for CN={user} (clientAuth, UPN
// {user}@localhost, 3650 days), its SHA-1 fingerprint, and private_key the
// base64 of a PKCS #12 file with the key and certificate and no password.
func testKeypairX509Generated(t *testing.T, tr *testtree.Tree) {
	v := needMicroversion(t, 2)
	const user = "winrm:winrm"
	sc := tr.Compute(user)
	sc.Microversion = v
	kp, err := keypairs.Create(ctxT(t), sc, keypairs.CreateOpts{Name: "win", Type: "x509"}).Extract()
	if err != nil {
		t.Fatalf("generate an x509 key pair: %v", err)
	}
	if kp.Type != "x509" || kp.UserID != "winrm" || kp.PrivateKey == "" {
		t.Fatalf("generated %+v", kp)
	}
	cert := checkWinRMCert(t, kp.PublicKey, kp.Fingerprint, "winrm")
	pfx, err := base64.StdEncoding.DecodeString(kp.PrivateKey)
	if err != nil {
		t.Fatalf("private_key is not base64: %v", err)
	}
	key, inPFX, err := pkcs12.Decode(pfx, "")
	if err != nil {
		t.Fatalf("private_key is not a PKCS #12 file without a password: %v", err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok || rk.N.BitLen() != 2048 || !rk.PublicKey.Equal(cert.PublicKey) || !bytes.Equal(inPFX.Raw, cert.Raw) {
		t.Errorf("the PKCS #12 file holds %T (%d bits) and a certificate equal to the public key: %v", key, rk.N.BitLen(), bytes.Equal(inPFX.Raw, cert.Raw))
	}
	// Shown and listed with the certificate, never the private key.
	r := tr.Do(t, http.MethodGet, "/v2.1/os-keypairs/win", user, nil, atVersion(v)...)
	shown := r.Map(t)["keypair"].(map[string]any)
	if shown["public_key"] != kp.PublicKey || shown["fingerprint"] != kp.Fingerprint || shown["type"] != "x509" || shown["private_key"] != nil {
		t.Errorf("show: %s", r)
	}
	// The certificate imports back as an x509 key pair, same fingerprint.
	imp, err := keypairs.Create(ctxT(t), sc, keypairs.CreateOpts{Name: "win-again", Type: "x509", PublicKey: kp.PublicKey}).Extract()
	if err != nil || imp.Fingerprint != kp.Fingerprint || imp.PrivateKey != "" {
		t.Errorf("import the generated certificate: %+v, %v", imp, err)
	}
	// An admin generating for another user (2.10): the certificate is the
	// key pair's user's.
	if servesMicroversion(10) {
		r := tr.Do(t, http.MethodPost, "/v2.1/os-keypairs", admin, map[string]any{"keypair": map[string]any{"name": "for-bob", "type": "x509", "user_id": "bob"}}, atVersion("2.10")...)
		if r.Status != http.StatusCreated {
			t.Fatalf("admin generates for bob: %s", r)
		}
		k := r.Map(t)["keypair"].(map[string]any)
		checkWinRMCert(t, k["public_key"].(string), k["fingerprint"].(string), "bob")
	}
	for _, n := range []string{"win", "win-again"} {
		if r := tr.Do(t, http.MethodDelete, "/v2.1/os-keypairs/"+n, user, nil, atVersion(v)...); r.Status != http.StatusNoContent {
			t.Errorf("delete %s: %s", n, r)
		}
	}
}

// checkWinRMCert checks a generated certificate against Nova's openssl
// request and returns it.
func checkWinRMCert(t *testing.T, public, fingerprint, user string) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode([]byte(public))
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("public_key is not one PEM certificate: %q", public)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(cert.Raw)
	var pairs []string
	for _, b := range sum {
		pairs = append(pairs, hex.EncodeToString([]byte{b}))
	}
	if fingerprint != strings.Join(pairs, ":") {
		t.Errorf("fingerprint %s, want the certificate's SHA-1 %s", fingerprint, strings.Join(pairs, ":"))
	}
	if cert.Subject.String() != "CN="+user || cert.Issuer.String() != "CN="+user || cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) != nil {
		t.Errorf("subject %s, issuer %s: want a self-signed CN=%s", cert.Subject, cert.Issuer, user)
	}
	if days := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24; days != 3650 {
		t.Errorf("valid for %v days, want 3650", days)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("extended key usage %v, want clientAuth", cert.ExtKeyUsage)
	}
	if upn := certUPN(t, cert); upn != user+"@localhost" {
		t.Errorf("UPN %q, want %s@localhost", upn, user)
	}
	return cert
}

// certUPN is the user principal name in cert's subjectAltName.
func certUPN(t *testing.T, cert *x509.Certificate) string {
	t.Helper()
	for _, e := range cert.Extensions {
		if !e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) {
			continue
		}
		var names []asn1.RawValue
		if _, err := asn1.Unmarshal(e.Value, &names); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if n.Class != asn1.ClassContextSpecific || n.Tag != 0 {
				continue
			}
			var other struct {
				ID    asn1.ObjectIdentifier
				Value asn1.RawValue `asn1:"tag:0,explicit"`
			}
			if _, err := asn1.UnmarshalWithParams(n.FullBytes, &other, "tag:0"); err != nil {
				t.Fatal(err)
			}
			var upn string
			if _, err := asn1.UnmarshalWithParams(other.Value.Bytes, &upn, "utf8"); err != nil {
				t.Fatal(err)
			}
			if other.ID.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}) {
				return upn
			}
		}
	}
	return ""
}
