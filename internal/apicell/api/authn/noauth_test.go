package authn

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNoAuth(t *testing.T) {
	cases := []struct {
		token         string
		user, project string
		admin         bool
		ok            bool
	}{
		{"", "admin", "admin", true, true},
		{"demo:demo", "demo", "demo", false, true},
		{"alice", "alice", "alice", false, true},
		{"admin:other", "admin", "other", true, true},
		{":p", "", "", false, false},
		{strings.Repeat("u", 256), "", "", false, false},
	}
	for _, c := range cases {
		got, err := NoAuth{}.Authenticate(context.Background(), c.token)
		if !c.ok {
			if !errors.Is(err, ErrUnauthorized) {
				t.Errorf("token %q: err %v, want ErrUnauthorized", c.token, err)
			}
			continue
		}
		if err != nil || got.UserID != c.user || got.ProjectID != c.project || slices.Contains(got.Roles, "admin") != c.admin {
			t.Errorf("token %q: %+v %v, want user %s project %s admin %v", c.token, got, err, c.user, c.project, c.admin)
		}
		if !slices.Contains(got.Roles, "reader") {
			t.Errorf("token %q: roles %v lack reader", c.token, got.Roles)
		}
	}
}
