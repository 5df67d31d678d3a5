package node

import (
	"net"
	"sync"
)

// perClientListener caps the connections open at once from one client IP
// address: a connection past the cap is closed as soon as it is accepted,
// before anything is read from it, so one client (or a flood of idle
// connections from one address) cannot take every connection the process
// can hold.
type perClientListener struct {
	net.Listener
	max int

	mu   sync.Mutex
	open map[string]int // by client IP
	// refused counts connections closed at the cap, for logs and tests.
	refused int
	// onRefuse, when set, is told of each connection closed at the cap.
	onRefuse func(ip string)
}

func newPerClientListener(ln net.Listener, max int, onRefuse func(ip string)) *perClientListener {
	return &perClientListener{Listener: ln, max: max, open: map[string]int{}, onRefuse: onRefuse}
}

// Accept returns the next connection whose client is under the cap.
func (l *perClientListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(c.RemoteAddr())
		l.mu.Lock()
		if l.open[ip] >= l.max {
			l.refused++
			l.mu.Unlock()
			c.Close()
			if l.onRefuse != nil {
				l.onRefuse(ip)
			}
			continue
		}
		l.open[ip]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *perClientListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// counts are the open connections by client IP and the refused ones.
func (l *perClientListener) counts() (map[string]int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.open))
	for ip, n := range l.open {
		out[ip] = n
	}
	return out, l.refused
}

func clientIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// countedConn gives its place back once, on its first Close.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
