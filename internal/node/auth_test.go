package node

import (
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/config"
)

// TestIdentityOptions: the api role's password protection reaches the
// identity store, on by default, and -1 turns each part off.
func TestIdentityOptions(t *testing.T) {
	c := config.Config{Cell: "api", DataDir: t.TempDir()}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	o := identityOptions(c.API)
	if o.LockoutFailureAttempts != 6 || o.LockoutDuration != 30*time.Minute || o.AuthFailureBurst != 10 || o.AuthFailuresPerMinute != 10 ||
		o.HashConcurrency < 1 || o.HashWait != 2*time.Second || o.TokenTTL != time.Hour {
		t.Errorf("defaults: %+v", o)
	}
	p := c.API.PasswordProtection
	p.LockoutFailureAttempts, p.AuthFailureBurst = config.Off, config.Off
	c.API.PasswordProtection = p
	if o := identityOptions(c.API); o.LockoutFailureAttempts != 0 || o.AuthFailureBurst != 0 || o.AuthFailuresPerMinute != 0 {
		t.Errorf("off: %+v", o)
	}
}
