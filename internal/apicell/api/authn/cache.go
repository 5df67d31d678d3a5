package authn

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// Cache remembers validated tokens for a short time, never past their
// expiry. Failures are not cached. Forget drops a token at once (the local
// identity service calls it when a token is revoked).
type Cache struct {
	next Authenticator
	ttl  time.Duration
	max  int
	now  func() time.Time

	mu sync.Mutex
	m  map[[32]byte]cacheEntry
}

type cacheEntry struct {
	p     Principal
	until time.Time
}

// NewCache wraps next with a cache of up to max tokens kept for ttl.
func NewCache(next Authenticator, ttl time.Duration, max int, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	if max <= 0 {
		max = 10000
	}
	return &Cache{next: next, ttl: ttl, max: max, now: now, m: map[[32]byte]cacheEntry{}}
}

// Authenticate answers from the cache or asks the wrapped authenticator.
func (c *Cache) Authenticate(ctx context.Context, tok string) (Principal, error) {
	if c.ttl <= 0 {
		return c.next.Authenticate(ctx, tok)
	}
	key := sha256.Sum256([]byte(tok))
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.p, nil
	}
	p, err := c.next.Authenticate(ctx, tok)
	if err != nil {
		return p, err
	}
	until := now.Add(c.ttl)
	if !p.ExpiresAt.IsZero() && p.ExpiresAt.Before(until) {
		until = p.ExpiresAt
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[key] = cacheEntry{p: p, until: until}
	c.mu.Unlock()
	return p, nil
}

// Forget drops a token from the cache.
func (c *Cache) Forget(tok string) {
	key := sha256.Sum256([]byte(tok))
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// ForgetAll empties the cache (after a change that may affect many
// tokens: a user disabled, a role removed, a project deleted).
func (c *Cache) ForgetAll() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}
