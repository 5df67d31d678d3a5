package identity

import (
	"regexp"
	"testing"
)

// TestTokenSecretsAreHex: a token's secret is 64 hex digits, so no token
// begins with "-", which the clients that take a token as an argument
// (openstack token revoke <token>) read as an option (base64url's did,
// one in 64).
func TestTokenSecretsAreHex(t *testing.T) {
	hexRE := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for range 1000 {
		s, h, err := newSecret()
		if err != nil {
			t.Fatal(err)
		}
		if !hexRE.MatchString(s) || h != hashSecret(s) {
			t.Fatalf("secret %q (hash %q), want 64 hex digits and its hash", s, h)
		}
	}
}
