package identity_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// openStore opens a store over d (migrated and bootstrapped by newStore)
// with the given options and the clock c, as a restarted API process
// would.
func openStore(t *testing.T, d *db.DB, c *clock, o identity.Options) *identity.Store {
	t.Helper()
	o.TokenTTL, o.Now = time.Hour, c.now
	st, err := identity.New(context.Background(), d, o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func demoAuth(pw, source string) identity.AuthRequest {
	return identity.AuthRequest{Source: source, Password: &identity.PasswordMethod{UserName: "demo", DomainName: "Default", Password: pw},
		Scope: identity.Scope{ProjectName: "demo", DomainID: identity.DefaultDomainID}}
}

// TestLockoutOnEveryEngine: N wrong passwords in a row lock the user, even
// against the right password, until the lock's duration has passed since
// the last failure; the lock survives a restart (a new Store on the same
// database); a success clears the count; enabling the user lifts a lock.
func TestLockoutOnEveryEngine(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		newStore(t, d, c)
		opts := identity.Options{LockoutFailureAttempts: 3, LockoutDuration: 10 * time.Minute}
		st := openStore(t, d, c, opts)
		demo, err := st.UserByName(ctx, identity.DefaultDomainID, "demo")
		if err != nil {
			t.Fatal(err)
		}
		issue := func(st *identity.Store, pw string) error {
			_, _, err := st.Issue(ctx, demoAuth(pw, ""))
			return err
		}

		// A success clears the count: two failures, a success, two
		// failures never make three in a row.
		for round := range 2 {
			for range 2 {
				if err := issue(st, "wrong"); !errors.Is(err, identity.ErrUnauthorized) {
					t.Fatalf("round %d: a wrong password: %v, want ErrUnauthorized", round, err)
				}
			}
			if err := issue(st, "pw-demo"); err != nil {
				t.Fatalf("round %d: the right password after 2 failures: %v", round, err)
			}
		}

		// Three in a row lock; the right password is refused too.
		for range 3 {
			if err := issue(st, "wrong"); !errors.Is(err, identity.ErrUnauthorized) {
				t.Fatalf("a wrong password: %v", err)
			}
		}
		lockedAt := c.t
		var le *identity.AccountLockedError
		if err := issue(st, "pw-demo"); !errors.As(err, &le) || le.Error() != "The account is locked for user: "+demo.ID+"." {
			t.Fatalf("the right password after 3 failures: %v, want Keystone's AccountLocked", err)
		}

		// A restart does not lift it; attempts while locked do not extend it.
		st = openStore(t, d, c, opts)
		c.t = lockedAt.Add(10*time.Minute - time.Second)
		if err := issue(st, "wrong"); !errors.Is(err, identity.ErrAccountLocked) {
			t.Fatalf("after a restart, 1s before the lock runs out: %v, want locked", err)
		}
		if err := issue(st, "pw-demo"); !errors.Is(err, identity.ErrAccountLocked) {
			t.Fatalf("after a restart, the right password 1s before the lock runs out: %v, want locked", err)
		}
		c.t = lockedAt.Add(10 * time.Minute)
		if err := issue(st, "pw-demo"); err != nil {
			t.Fatalf("the right password once the lock ran out: %v", err)
		}

		// A lock that ran out starts the count again: one failure after it
		// does not lock.
		for range 3 {
			_ = issue(st, "wrong")
		}
		c.t = c.t.Add(time.Hour)
		if err := issue(st, "wrong"); !errors.Is(err, identity.ErrUnauthorized) {
			t.Fatalf("a wrong password after the lock ran out: %v", err)
		}
		if err := issue(st, "pw-demo"); err != nil {
			t.Fatalf("the right password after 1 failure past a lock: %v", err)
		}

		// Enabling the user lifts the lock (Keystone's way to unlock).
		for range 3 {
			_ = issue(st, "wrong")
		}
		if err := issue(st, "pw-demo"); !errors.Is(err, identity.ErrAccountLocked) {
			t.Fatalf("locked again: %v", err)
		}
		on := true
		if _, err := st.UpdateUser(ctx, demo.ID, identity.UserPatch{Enabled: &on}); err != nil {
			t.Fatal(err)
		}
		if err := issue(st, "pw-demo"); err != nil {
			t.Fatalf("the right password after the user was enabled: %v", err)
		}

		// Without a duration a lock lasts until the user is enabled.
		forever := openStore(t, d, c, identity.Options{LockoutFailureAttempts: 3})
		for range 3 {
			_ = issue(forever, "wrong")
		}
		c.t = c.t.Add(365 * 24 * time.Hour)
		if err := issue(forever, "pw-demo"); !errors.Is(err, identity.ErrAccountLocked) {
			t.Fatalf("a lock without a duration, a year later: %v, want locked", err)
		}
	})
}

// TestFailureRateLimit: a source that failed its burst is refused before
// its password is checked, even the right one, until its bucket refills;
// another source still authenticates; successes never drain a bucket.
func TestFailureRateLimit(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := dbtest.Open(t, "sqlite")
	newStore(t, d, c)
	st := openStore(t, d, c, identity.Options{AuthFailureBurst: 3, AuthFailuresPerMinute: 6})
	guesser, other := "198.51.100.7:40000", "198.51.100.8:40000"
	for i := range 3 {
		if _, _, err := st.Issue(ctx, demoAuth("wrong", guesser)); !errors.Is(err, identity.ErrUnauthorized) {
			t.Fatalf("failure %d of the burst: %v", i+1, err)
		}
	}
	var te *identity.ThrottledError
	if _, _, err := st.Issue(ctx, demoAuth("pw-demo", guesser)); !errors.As(err, &te) || te.RetryAfter() != 10*time.Second {
		t.Fatalf("the right password after the burst: %v, want throttled for 10s", err)
	}
	// Another port of the same address is the same source.
	if _, _, err := st.Issue(ctx, demoAuth("pw-demo", "198.51.100.7:40001")); !errors.Is(err, identity.ErrThrottled) {
		t.Fatalf("the same address from another port: %v, want throttled", err)
	}
	if _, _, err := st.Issue(ctx, demoAuth("pw-demo", other)); err != nil {
		t.Fatalf("another source: %v", err)
	}
	for i := range 10 {
		if _, _, err := st.Issue(ctx, demoAuth("pw-demo", other)); err != nil {
			t.Fatalf("success %d from a source that never failed: %v", i+1, err)
		}
	}
	c.t = c.t.Add(10 * time.Second)
	if _, _, err := st.Issue(ctx, demoAuth("pw-demo", guesser)); err != nil {
		t.Fatalf("once a token refilled: %v", err)
	}
	// IPv6 sources are limited by their /64.
	for range 3 {
		_, _, _ = st.Issue(ctx, demoAuth("wrong", "[2001:db8:1:2::1]:5000"))
	}
	if _, _, err := st.Issue(ctx, demoAuth("pw-demo", "[2001:db8:1:2::ffff]:5000")); !errors.Is(err, identity.ErrThrottled) {
		t.Fatalf("another address of the same /64: %v, want throttled", err)
	}
	if _, _, err := st.Issue(ctx, demoAuth("pw-demo", "[2001:db8:1:3::1]:5000")); err != nil {
		t.Fatalf("another /64: %v", err)
	}
}

// TestHashGate: with every hashing slot taken, a password is refused after
// the gate's wait instead of queueing without bound.
func TestHashGate(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := dbtest.Open(t, "sqlite")
	newStore(t, d, c)
	st := openStore(t, d, c, identity.Options{HashConcurrency: 1, HashWait: time.Millisecond})
	release := identity.HoldHashSlot(st)
	var be *identity.BusyError
	if _, _, err := st.Issue(ctx, demoAuth("pw-demo", "")); !errors.As(err, &be) {
		t.Fatalf("with the only slot taken: %v, want busy", err)
	}
	release()
	if _, _, err := st.Issue(ctx, demoAuth("pw-demo", "")); err != nil {
		t.Fatalf("with the slot free: %v", err)
	}
}
