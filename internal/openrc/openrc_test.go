package openrc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteReadRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "openrc-admin")
	f := File{Path: p, User: "admin", Password: "it's", Project: "admin", AuthURL: "http://h:8774/identity/v3", Region: "R2"}
	if err := Write(f); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	env, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"OS_AUTH_URL": f.AuthURL, "OS_USERNAME": "admin", "OS_PROJECT_NAME": "admin", "OS_REGION_NAME": "R2", "OS_USER_DOMAIN_NAME": "Default"} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if got := PasswordIn(p); got != "it's" {
		t.Errorf("password %q", got)
	}
}

func TestWithoutPasswordItAsks(t *testing.T) {
	s := File{User: "alice", Project: "p1", AuthURL: "http://h:8774/identity/v3"}.Format()
	if !strings.Contains(s, "read -rs OS_PASSWORD_INPUT") || strings.Contains(s, "OS_PASSWORD='") {
		t.Fatalf("an openrc without a password does not ask for it:\n%s", s)
	}
	p := filepath.Join(t.TempDir(), "rc")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := PasswordIn(p); got != "" {
		t.Errorf("PasswordIn of a file that asks = %q, want none", got)
	}
}

func TestAuthURL(t *testing.T) {
	for _, c := range []struct{ listen, host, want string }{
		{"127.0.0.1:8774", "h", "http://127.0.0.1:8774/identity/v3"},
		{":8774", "api1.example.net", "http://api1.example.net:8774/identity/v3"},
		{"0.0.0.0:9000", "api1", "http://api1:9000/identity/v3"},
		{"[::]:8774", "api1", "http://api1:8774/identity/v3"},
		{"[2001:db8::1]:8774", "api1", "http://[2001:db8::1]:8774/identity/v3"},
	} {
		if got := AuthURL(c.listen, c.host); got != c.want {
			t.Errorf("AuthURL(%q, %q) = %q, want %q", c.listen, c.host, got, c.want)
		}
	}
}
