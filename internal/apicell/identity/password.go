package identity

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Passwords are stored as "pbkdf2-sha512$ITERATIONS$SALT$HASH" (salt and
// hash base64, unpadded), one of the schemes Keystone offers.
const (
	hashScheme     = "pbkdf2-sha512"
	hashIterations = 60000
	hashLen        = 64
	// MaxPasswordLength is Keystone's default max_password_length.
	MaxPasswordLength = 4096
)

// HashPassword hashes a password with a fresh salt.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return hashWith(pw, salt, hashIterations)
}

func hashWith(pw string, salt []byte, iter int) (string, error) {
	k, err := pbkdf2.Key(sha512.New, pw, salt, iter, hashLen)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("%s$%d$%s$%s", hashScheme, iter, enc.EncodeToString(salt), enc.EncodeToString(k)), nil
}

// CheckPassword reports whether pw matches a stored hash. An empty or
// malformed hash matches nothing.
func CheckPassword(stored, pw string) bool {
	parts := strings.Split(stored, "$")
	if len(parts) != 4 || parts[0] != hashScheme {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 {
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	got, err := hashWith(pw, salt, iter)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(stored)) == 1
}
