package compute

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// An x509 key pair that Nova generates (nova.crypto.generate_winrm_x509_cert,
// for WinRM certificate authentication): a new RSA 2048 key; a self-signed
// certificate for CN={user_id}, valid for 3650 days, for client
// authentication, with the user principal name {user_id}@localhost as its
// subject alternative name; the certificate in PEM is the public key, the
// SHA-1 of its DER the fingerprint, and the key with the certificate in a
// PKCS #12 file without a password, base64-encoded, the private key
// (openssl pkcs12 -export -password pass:).

var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	// oidUPN is Microsoft's user principal name, an otherName.
	oidUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}

	oidData                  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidCertBag               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidShroudedKeyBag        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidX509Certificate       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidLocalKeyID            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	oidPBEWithSHA3KeyTripDES = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidSHA1                  = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
)

// pkcs12Iterations is OpenSSL's default iteration count for the key's
// encryption and the MAC.
const pkcs12Iterations = 2048

// generateX509Key makes an x509 key pair for user as Nova does.
func generateX509Key(user string, now time.Time) (private, public, fingerprint string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", "", fmt.Errorf("generate x509 key pair: %w", err)
	}
	san, err := upnSubjectAltName(user + "@localhost")
	if err != nil {
		return "", "", "", fmt.Errorf("generate x509 key pair: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", "", fmt.Errorf("generate x509 key pair: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{CommonName: user},
		NotBefore:       now,
		NotAfter:        now.AddDate(0, 0, 3650),
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ExtraExtensions: []pkix.Extension{{Id: oidSubjectAltName, Value: san}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", "", fmt.Errorf("generate x509 key pair: %w", err)
	}
	pfx, err := encodePKCS12(key, der)
	if err != nil {
		return "", "", "", fmt.Errorf("generate x509 key pair: %w", err)
	}
	sum := sha1.Sum(der)
	return base64.StdEncoding.EncodeToString(pfx), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), colonHex(sum[:]), nil
}

// upnSubjectAltName is the DER of a subjectAltName of one otherName, a
// user principal name (a UTF8String).
func upnSubjectAltName(upn string) ([]byte, error) {
	value, err := asn1.MarshalWithParams(upn, "utf8")
	if err != nil {
		return nil, err
	}
	typeID, err := asn1.Marshal(oidUPN)
	if err != nil {
		return nil, err
	}
	explicit, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: value})
	if err != nil {
		return nil, err
	}
	otherName := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(typeID, explicit...)}
	return asn1.Marshal([]asn1.RawValue{otherName})
}

// The PKCS #12 (RFC 7292) structures encodePKCS12 writes.
type (
	pfxPDU struct {
		Version  int
		AuthSafe contentInfo
		MacData  macData
	}
	contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"tag:0,explicit"`
	}
	safeBag struct {
		ID         asn1.ObjectIdentifier
		Value      asn1.RawValue     `asn1:"tag:0,explicit"`
		Attributes []pkcs12Attribute `asn1:"set"`
	}
	pkcs12Attribute struct {
		ID     asn1.ObjectIdentifier
		Values []asn1.RawValue `asn1:"set"`
	}
	certBag struct {
		ID   asn1.ObjectIdentifier
		Data []byte `asn1:"tag:0,explicit"`
	}
	pbeParams struct {
		Salt       []byte
		Iterations int
	}
	encryptedPrivateKeyInfo struct {
		Algorithm     pkix.AlgorithmIdentifier
		EncryptedData []byte
	}
	macData struct {
		Mac        digestInfo
		MacSalt    []byte
		Iterations int
	}
	digestInfo struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
)

// encodePKCS12 is a PFX holding the certificate der and its key, for the
// empty password: the certificate in plain data, the key shrouded with
// pbeWithSHAAnd3-KeyTripleDES-CBC, both tagged with the same local key id
// (the certificate's SHA-1), and an HMAC-SHA-1 over the whole.
func encodePKCS12(key *rsa.PrivateKey, der []byte) ([]byte, error) {
	password := []byte{0, 0} // the empty BMPString, with its terminator
	keyID := sha1.Sum(der)
	idValue, err := asn1.Marshal(keyID[:])
	if err != nil {
		return nil, err
	}
	attrs := []pkcs12Attribute{{ID: oidLocalKeyID, Values: []asn1.RawValue{{FullBytes: idValue}}}}

	cert, err := asn1.Marshal(certBag{ID: oidX509Certificate, Data: der})
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	encrypted, err := pbeEncrypt(pkcs8, password, salt, pkcs12Iterations)
	if err != nil {
		return nil, err
	}
	params, err := asn1.Marshal(pbeParams{Salt: salt, Iterations: pkcs12Iterations})
	if err != nil {
		return nil, err
	}
	shrouded, err := asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm:     pkix.AlgorithmIdentifier{Algorithm: oidPBEWithSHA3KeyTripDES, Parameters: asn1.RawValue{FullBytes: params}},
		EncryptedData: encrypted,
	})
	if err != nil {
		return nil, err
	}
	certSafe, err := dataContent([]safeBag{{ID: oidCertBag, Value: asn1.RawValue{FullBytes: explicit0(cert)}, Attributes: attrs}})
	if err != nil {
		return nil, err
	}
	keySafe, err := dataContent([]safeBag{{ID: oidShroudedKeyBag, Value: asn1.RawValue{FullBytes: explicit0(shrouded)}, Attributes: attrs}})
	if err != nil {
		return nil, err
	}
	authSafe, err := asn1.Marshal([]contentInfo{certSafe, keySafe})
	if err != nil {
		return nil, err
	}
	macSalt := make([]byte, 8)
	if _, err := rand.Read(macSalt); err != nil {
		return nil, err
	}
	mac := hmac.New(sha1.New, pkcs12KDF(macSalt, password, pkcs12Iterations, 3, 20))
	mac.Write(authSafe)
	octets, err := asn1.Marshal(authSafe)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(pfxPDU{
		Version:  3,
		AuthSafe: contentInfo{ContentType: oidData, Content: asn1.RawValue{FullBytes: explicit0(octets)}},
		MacData: macData{
			Mac:        digestInfo{Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidSHA1, Parameters: asn1.NullRawValue}, Digest: mac.Sum(nil)},
			MacSalt:    macSalt,
			Iterations: pkcs12Iterations,
		},
	})
}

// explicit0 wraps der in a context-specific [0] (an EXPLICIT tag).
func explicit0(der []byte) []byte {
	b, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der})
	return b
}

// dataContent is a ContentInfo of type data holding bags.
func dataContent(bags []safeBag) (contentInfo, error) {
	contents, err := asn1.Marshal(bags)
	if err != nil {
		return contentInfo{}, err
	}
	octets, err := asn1.Marshal(contents)
	if err != nil {
		return contentInfo{}, err
	}
	return contentInfo{ContentType: oidData, Content: asn1.RawValue{FullBytes: explicit0(octets)}}, nil
}

// pbeEncrypt is pbeWithSHAAnd3-KeyTripleDES-CBC: the key (id 1) and IV
// (id 2) from the PKCS #12 KDF, PKCS #7 padding.
func pbeEncrypt(plain, password, salt []byte, iterations int) ([]byte, error) {
	block, err := des.NewTripleDESCipher(pkcs12KDF(salt, password, iterations, 1, 24))
	if err != nil {
		return nil, err
	}
	pad := block.BlockSize() - len(plain)%block.BlockSize()
	out := make([]byte, len(plain)+pad)
	copy(out, plain)
	for i := len(plain); i < len(out); i++ {
		out[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, pkcs12KDF(salt, password, iterations, 2, 8)).CryptBlocks(out, out)
	return out, nil
}

// pkcs12KDF is the key derivation of RFC 7292 appendix B.2 with SHA-1:
// size bytes of purpose id (1 key, 2 IV, 3 MAC key).
func pkcs12KDF(salt, password []byte, iterations int, id byte, size int) []byte {
	const u, v = sha1.Size, 64
	fill := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		out := make([]byte, v*((len(b)+v-1)/v))
		for i := range out {
			out[i] = b[i%len(b)]
		}
		return out
	}
	d := make([]byte, v)
	for i := range d {
		d[i] = id
	}
	in := append(fill(salt), fill(password)...)
	var out []byte
	for len(out) < size {
		h := sha1.New()
		h.Write(d)
		h.Write(in)
		a := h.Sum(nil)
		for range iterations - 1 {
			s := sha1.Sum(a)
			a = s[:]
		}
		out = append(out, a...)
		// Each v-byte block of in becomes (block + B + 1) mod 2^(8v),
		// B being a repeated to v bytes.
		b := new(big.Int).SetBytes(fill(a)[:v])
		b.Add(b, big.NewInt(1))
		mod := new(big.Int).Lsh(big.NewInt(1), 8*v)
		for j := 0; j < len(in); j += v {
			blk := new(big.Int).SetBytes(in[j : j+v])
			blk.Add(blk, b).Mod(blk, mod)
			bs := blk.Bytes()
			clear(in[j : j+v])
			copy(in[j+v-len(bs):j+v], bs)
		}
	}
	return out[:size]
}
