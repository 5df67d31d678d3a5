package identity_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	idstore "github.com/cellcloud/cellcloud/internal/apicell/identity"
)

// settable is a clock the test moves.
type settable struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settable) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settable) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func passwordBody(user, pw string) string {
	return `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "` + user + `", "domain": {"name": "Default"}, "password": "` + pw + `"}}},
		"scope": {"project": {"name": "` + user + `", "domain": {"id": "default"}}}}}`
}

// authFrom posts a password authentication from the client at addr.
func (f *fixture) authFrom(addr, user, pw string) answer {
	f.t.Helper()
	r := httptest.NewRequest("POST", "http://cloud.test/v3/auth/tokens", strings.NewReader(passwordBody(user, pw)))
	r.RemoteAddr = addr
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, r)
	h := w.Result().Header.Clone()
	h.Del("X-Openstack-Request-Id")
	return answer{status: w.Code, header: h, body: w.Body.String()}
}

// TestLockout: after lockout_failure_attempts wrong passwords in a row the
// right one gets Keystone's AccountLocked 401 until lockout_duration has
// passed since the last failure; a success in between clears the count.
func TestLockout(t *testing.T) {
	c := &settable{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFixtureWith(t, idstore.Options{TokenTTL: time.Hour, Now: c.now, LockoutFailureAttempts: 5, LockoutDuration: 30 * time.Minute})
	demo, err := f.store.UserByName(context.Background(), idstore.DefaultDomainID, "demo")
	if err != nil {
		t.Fatal(err)
	}
	const client = "203.0.113.10:5000"
	unauthorized := keystoneError(401, "Unauthorized", "The request you have made requires authentication.")
	wrong := func(n int) {
		t.Helper()
		for i := range n {
			if a := f.authFrom(client, "demo", "wrong"); a.status != 401 || a.body != unauthorized {
				t.Fatalf("wrong password %d: %d %s", i+1, a.status, a.body)
			}
		}
	}
	wrong(4)
	if a := f.authFrom(client, "demo", "pw-demo"); a.status != 201 {
		t.Fatalf("the right password after 4 failures: %d %s", a.status, a.body)
	}
	wrong(4) // the success cleared the count: 4 more do not lock
	if a := f.authFrom(client, "demo", "pw-demo"); a.status != 201 {
		t.Fatalf("the right password after a success and 4 failures: %d %s", a.status, a.body)
	}
	wrong(5)
	locked := keystoneError(401, "Unauthorized", "The account is locked for user: "+demo.ID+".")
	for _, step := range []time.Duration{0, 29*time.Minute + 59*time.Second} {
		c.add(step)
		a := f.authFrom(client, "demo", "pw-demo")
		if a.status != 401 || a.body != locked || a.header.Get("WWW-Authenticate") != `Keystone uri="identity"` {
			t.Fatalf("the right password %v after the 5th failure: %d %v %s, want %s", c.now().Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), a.status, a.header, a.body, locked)
		}
	}
	// Other users are not locked.
	if a := f.authFrom(client, "admin", "pw-admin"); a.status != 201 {
		t.Fatalf("another user while demo is locked: %d %s", a.status, a.body)
	}
	c.add(time.Second)
	if a := f.authFrom(client, "demo", "pw-demo"); a.status != 201 {
		t.Fatalf("the right password once the lock ran out: %d %s", a.status, a.body)
	}
}

// TestFailureRateLimit: a burst of wrong passwords from one client is
// refused with 429 and Retry-After before the hash, while another client
// still authenticates.
func TestFailureRateLimit(t *testing.T) {
	c := &settable{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFixtureWith(t, idstore.Options{TokenTTL: time.Hour, Now: c.now, AuthFailureBurst: 5, AuthFailuresPerMinute: 12})
	const guesser, other = "203.0.113.20:5000", "203.0.113.21:5000"
	statuses := map[int]int{}
	for range 20 {
		statuses[f.authFrom(guesser, "nobody", "guess").status]++
	}
	if statuses[401] != 5 || statuses[429] != 15 {
		t.Fatalf("20 wrong passwords from one client: statuses %v, want 5 401s then 429s", statuses)
	}
	a := f.authFrom(guesser, "demo", "pw-demo")
	if want := keystoneError(429, "Too Many Requests", "Too many failed authentication attempts from your address. Try again later."); a.status != 429 || a.body != want ||
		a.header.Get("Retry-After") != "5" {
		t.Fatalf("the guesser's right password: %d %v %s, want 429 with Retry-After 5", a.status, a.header, a.body)
	}
	if a := f.authFrom(other, "demo", "pw-demo"); a.status != 201 {
		t.Fatalf("another client during the burst: %d %s", a.status, a.body)
	}
	c.add(5 * time.Second)
	if a := f.authFrom(guesser, "demo", "pw-demo"); a.status != 201 {
		t.Fatalf("the guesser's right password after Retry-After: %d %s", a.status, a.body)
	}
	if a := f.do("GET", "/v3/auth/tokens", f.admin, "", "X-Subject-Token", f.demo); a.status != http.StatusOK {
		t.Fatalf("token validation is not limited: %d", a.status)
	}
}
