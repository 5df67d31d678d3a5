package config

import (
	"strings"
	"testing"
	"time"
)

func TestPasswordProtection(t *testing.T) {
	c, err := Load(write(t, `{"cell": "api", "data_dir": "d"}`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.API.PasswordProtection
	if p.LockoutFailureAttempts != 6 || p.LockoutDuration.D() != 30*time.Minute || p.AuthFailureBurst != 10 || p.AuthFailuresPerMinute != 10 ||
		p.PasswordHashConcurrency < 1 || p.PasswordHashWait.D() != 2*time.Second {
		t.Errorf("defaults %+v", p)
	}
	c, err = Load(write(t, `{"cell": "api", "data_dir": "d", "api": {"lockout_failure_attempts": -1, "lockout_duration": "-1s",
		"auth_failure_burst": 3, "auth_failures_per_minute": 1, "password_hash_concurrency": 8, "password_hash_wait": "500ms"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.API.PasswordProtection; p.LockoutFailureAttempts != Off || p.LockoutDuration.D() != -time.Second || p.AuthFailureBurst != 3 ||
		p.AuthFailuresPerMinute != 1 || p.PasswordHashConcurrency != 8 || p.PasswordHashWait.D() != 500*time.Millisecond {
		t.Errorf("set %+v", p)
	}
	for _, body := range []string{`{"lockout_failure_attempts": -2}`, `{"auth_failure_burst": -5}`, `{"auth_failures_per_minute": -1}`,
		`{"password_hash_concurrency": -1}`, `{"password_hash_wait": "-1s"}`} {
		if _, err := Load(write(t, `{"cell": "api", "data_dir": "d", "api": `+body+`}`)); err == nil || !strings.Contains(err.Error(), "api.") {
			t.Errorf("%s: %v, want an error naming the field", body, err)
		}
	}
}
