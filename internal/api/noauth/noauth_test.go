package noauth

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFromRequest(t *testing.T) {
	cases := []struct {
		token string
		want  Principal
		ok    bool
	}{
		{"", Principal{"admin", "admin", true}, true},
		{"demo:demo", Principal{"demo", "demo", false}, true},
		{"alice", Principal{"alice", "alice", false}, true},
		{"admin:other", Principal{"admin", "other", true}, true},
		{":p", Principal{}, false},
		{strings.Repeat("u", 256), Principal{}, false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		if c.token != "" {
			r.Header.Set("X-Auth-Token", c.token)
		}
		got, ok := FromRequest(r)
		if ok != c.ok || got != c.want {
			t.Errorf("token %q: %+v %v, want %+v %v", c.token, got, ok, c.want, c.ok)
		}
	}
}
