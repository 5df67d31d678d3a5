package config

import (
	"fmt"
	"runtime"
	"time"
)

// PasswordProtection is the api role's defence against password guessing
// (local identity only), in the API section of the file:
//
//   - a lockout after consecutive wrong passwords, Keystone's
//     [security_compliance] lockout_failure_attempts and lockout_duration;
//   - a token bucket per client address that failed password
//     authentications drain, checked before the password is hashed;
//   - a bound on how many passwords are hashed at once.
//
// Keystone ships lockout disabled; a public cloud is expected to lock
// (PCI DSS 8.1.6/8.1.7, and Keystone's own example: 6 attempts, 1800 s), so
// the defaults lock after 6 failures for 30 minutes.
type PasswordProtection struct {
	// LockoutFailureAttempts is how many wrong passwords in a row lock a
	// user's password authentication (default 6; -1 never locks).
	LockoutFailureAttempts int `json:"lockout_failure_attempts,omitempty"`
	// LockoutDuration is how long a lock lasts from the last failure
	// (default 30m); a negative duration locks until an admin enables the
	// user again.
	LockoutDuration Duration `json:"lockout_duration,omitempty"`
	// AuthFailureBurst is how many failed password authentications a
	// client address may make at once (default 10; -1 turns the limit
	// off), AuthFailuresPerMinute how fast it may make more (default 10).
	AuthFailureBurst      int `json:"auth_failure_burst,omitempty"`
	AuthFailuresPerMinute int `json:"auth_failures_per_minute,omitempty"`
	// PasswordHashConcurrency is how many passwords are hashed at once
	// (default half the CPUs Go may use, at least 1); PasswordHashWait is
	// how long a password waits for a slot before the request is refused
	// with 503 (default 2s).
	PasswordHashConcurrency int      `json:"password_hash_concurrency,omitempty"`
	PasswordHashWait        Duration `json:"password_hash_wait,omitempty"`
}

// Off is the value of LockoutFailureAttempts and AuthFailureBurst that
// turns the lockout and the rate limit off.
const Off = -1

func (p *PasswordProtection) normalize() error {
	for name, v := range map[string]int{"lockout_failure_attempts": p.LockoutFailureAttempts, "auth_failure_burst": p.AuthFailureBurst} {
		if v < Off {
			return fmt.Errorf("api.%s %d must be positive, or -1 (off)", name, v)
		}
	}
	if p.AuthFailuresPerMinute < 0 || p.PasswordHashConcurrency < 0 || p.PasswordHashWait < 0 {
		return fmt.Errorf("api.auth_failures_per_minute, api.password_hash_concurrency and api.password_hash_wait must not be negative")
	}
	if p.LockoutFailureAttempts == 0 {
		p.LockoutFailureAttempts = 6
	}
	if p.LockoutDuration == 0 {
		p.LockoutDuration = Duration(30 * time.Minute)
	}
	if p.AuthFailureBurst == 0 {
		p.AuthFailureBurst = 10
	}
	if p.AuthFailuresPerMinute == 0 {
		p.AuthFailuresPerMinute = 10
	}
	if p.PasswordHashConcurrency == 0 {
		p.PasswordHashConcurrency = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if p.PasswordHashWait == 0 {
		p.PasswordHashWait = Duration(2 * time.Second)
	}
	return nil
}
