package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// generous bounds each wait of these tests for the server: far longer
// than the small timeouts they configure, so only a server that never
// times out makes them fail.
const generous = 30 * time.Second

// startLimited serves a handler that reads the whole body (408 when it
// cannot) with the read, header and idle timeout timeout and a cap of
// maxPerClient connections.
func startLimited(t *testing.T, timeout time.Duration, maxPerClient int) *httpServer {
	t.Helper()
	h := &httpServer{listen: "127.0.0.1:0", errs: make(chan error, 1), log: quietLog,
		readTimeout: timeout, headerTimeout: timeout, writeTimeout: generous, idleTimeout: timeout, maxPerClient: maxPerClient,
		handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				w.WriteHeader(http.StatusRequestTimeout)
				return
			}
			_, _ = io.WriteString(w, "ok")
		})}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	return h
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, generous)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(generous)); err != nil {
		t.Fatal(err)
	}
	return c
}

// closedByServer reads what the server still sends on c and reports
// whether it then closed the connection (rather than the test's deadline
// passing).
func closedByServer(c net.Conn) (string, error) {
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(b), fmt.Errorf("the server kept the connection open for %s: %w", generous, err)
	}
	return string(b), nil // EOF or a reset: closed
}

// TestSlowBodyIsCutOff: a client that sends its headers and then stalls
// its body is cut off after the read timeout: the request fails (408
// here) and the connection is closed.
func TestSlowBodyIsCutOff(t *testing.T) {
	h := startLimited(t, 200*time.Millisecond, 0)
	c := dial(t, h.addr)
	if _, err := io.WriteString(c, "PUT /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"server\""); err != nil {
		t.Fatal(err)
	}
	got, err := closedByServer(c)
	if err != nil {
		t.Fatal(err)
	}
	if got != "" {
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
		if err != nil || resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("answer to a stalled body: %q, want 408 or nothing", got)
		}
	}
}

// TestIdleConnectionIsClosed: a kept-alive connection that sends no next
// request is closed after the idle timeout.
func TestIdleConnectionIsClosed(t *testing.T) {
	h := startLimited(t, 200*time.Millisecond, 0)
	c := dial(t, h.addr)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "ok" || resp.Close {
		t.Fatalf("first request: %d %q (close %v)", resp.StatusCode, b, resp.Close)
	}
	if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("an idle connection: %v, want it closed by the server", err)
	}
}

// TestConnectionsPerClientAreCapped: with a cap of N, the N+1th
// connection from one address is closed without an answer while N are
// open, and a new one is served once one of them closes.
func TestConnectionsPerClientAreCapped(t *testing.T) {
	const max = 3
	h := startLimited(t, 2*generous, max) // the first N stay open
	var held []net.Conn
	for range max {
		held = append(held, dial(t, h.addr))
	}
	testpoll.Eventually(t, generous, "the first connections accepted", func() (bool, string) {
		open, _ := h.ln.counts()
		return open["127.0.0.1"] == max, fmt.Sprintf("open %v", open)
	})
	extra := dial(t, h.addr)
	_, _ = io.WriteString(extra, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	got, err := closedByServer(extra)
	if err != nil {
		t.Fatal(err)
	}
	if got != "" {
		t.Errorf("connection %d over the cap was answered %q, want closed", max+1, got)
	}
	if _, refused := h.ln.counts(); refused < 1 {
		t.Errorf("refused %d connections, want at least 1", refused)
	}
	// The held connections are served.
	if _, err := io.WriteString(held[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(held[0]), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a connection under the cap: %v %v", resp, err)
	}
	// One closes: room for a new one.
	held[1].Close()
	testpoll.Eventually(t, generous, "a place given back", func() (bool, string) {
		open, _ := h.ln.counts()
		return open["127.0.0.1"] == max-1, fmt.Sprintf("open %v", open)
	})
	c := dial(t, h.addr)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("a new connection after one closed: %v %v", resp, err)
	}
}
