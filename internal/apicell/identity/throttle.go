package identity

import (
	"context"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"
)

// failureLimiter is the cheap refusal before a password is hashed: a token
// bucket per source address that failed password authentications drain.
// An attempt takes a token before the hash and gives it back when it
// succeeds, so clients that know their password are never limited, and a
// guesser gets burst tries at once and then rate a second, however many
// it sends at the same time. A nil limiter allows everything.
type failureLimiter struct {
	burst float64
	rate  float64 // tokens a second
	now   func() time.Time
	max   int // buckets kept at most

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the limiter's memory: at most this many sources are
// remembered at once.
const maxBuckets = 1 << 16

func newFailureLimiter(burst int, perMinute int, now func() time.Time) *failureLimiter {
	if burst <= 0 || perMinute <= 0 {
		return nil
	}
	return &failureLimiter{burst: float64(burst), rate: float64(perMinute) / 60, now: now, max: maxBuckets, buckets: map[string]*bucket{}}
}

// sourceKey is the bucket of a client address ("host:port" or a bare
// host): the address itself for IPv4, its /64 for IPv6 (one host
// usually holds a whole /64, so keying by address would give it 2^64
// buckets), and "" (not limited) for what is no address.
func sourceKey(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return ""
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// take takes a token for source; when there is none it returns how long
// until there is.
func (l *failureLimiter) take(source string) (ok bool, wait time.Duration) {
	if l == nil || source == "" {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[source]
	if b == nil {
		l.makeRoom(now)
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[source] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		secs := (1 - b.tokens) / l.rate
		return false, time.Duration(math.Ceil(secs * float64(time.Second)))
	}
	b.tokens--
	return true, 0
}

// give returns the token of an attempt that succeeded (or was never
// judged).
func (l *failureLimiter) give(source string) {
	if l == nil || source == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[source]; b != nil {
		b.tokens = min(l.burst, b.tokens+1)
	}
}

func (l *failureLimiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(l.burst, b.tokens+el.Seconds()*l.rate)
		b.at = now
	}
}

// makeRoom keeps the map under max: it forgets the sources whose buckets
// are full again (they hold nothing a new bucket would not), and if that
// is not enough, any.
func (l *failureLimiter) makeRoom(now time.Time) {
	if len(l.buckets) < l.max {
		return
	}
	for k, b := range l.buckets {
		if l.refill(b, now); b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < l.max {
			break
		}
		delete(l.buckets, k)
	}
}

// hashGate bounds how many passwords are hashed at once, so that a storm
// of password requests leaves CPU to every other request: a hash waits up
// to wait for a slot and is then refused.
type hashGate struct {
	slots chan struct{}
	wait  time.Duration
}

func newHashGate(n int, wait time.Duration) *hashGate {
	return &hashGate{slots: make(chan struct{}, n), wait: wait}
}

// do runs f in a slot, or returns a *BusyError if none frees up in time.
func (g *hashGate) do(ctx context.Context, f func()) error {
	select {
	case g.slots <- struct{}{}:
	default:
		t := time.NewTimer(g.wait)
		defer t.Stop()
		select {
		case g.slots <- struct{}{}:
		case <-t.C:
			return &BusyError{After: time.Second}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() { <-g.slots }()
	f()
	return nil
}
