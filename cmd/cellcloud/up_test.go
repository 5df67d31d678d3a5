package main

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
)

// TestUpListensOnLoopbackByDefault: `cellcloud up` without --listen
// serves the public APIs on loopback only; every interface is a
// deliberate --listen.
func TestUpListensOnLoopbackByDefault(t *testing.T) {
	o, _, err := upOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(o.Listen)
	if err != nil {
		t.Fatalf("default listen %q: %v", o.Listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || port != "8774" {
		t.Errorf("default listen %q, want a loopback address on port 8774", o.Listen)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--api-port", "18774"}, "127.0.0.1:18774"},
		{[]string{"--listen", "127.0.0.1", "--api-port", "18774"}, "127.0.0.1:18774"},
		{[]string{"--listen", "0.0.0.0"}, "0.0.0.0:8774"},
		{[]string{"--listen", "::"}, "[::]:8774"},
		{[]string{"--listen", "[::1]", "--api-port", "9"}, "[::1]:9"},
		{[]string{"--listen", "10.0.0.5:9000", "--api-port", "9"}, "10.0.0.5:9000"},
		{[]string{"--listen", ""}, "127.0.0.1:8774"},
	} {
		o, _, err := upOptions(c.args, io.Discard)
		if err != nil || o.Listen != c.want {
			t.Errorf("up %v: listen %q (%v), want %q", c.args, o.Listen, err, c.want)
		}
	}
}

// TestUpOperationsTakeTimeByDefault: `cellcloud up`'s fake hosts take a
// few seconds per spawn and per operation, so that a client polling every
// second or two sees BUILD, REBOOT, REBUILD, RESIZE... as on a real cloud.
func TestUpOperationsTakeTimeByDefault(t *testing.T) {
	o, _, err := upOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.SpawnLatency < 2*time.Second {
		t.Errorf("default spawn latency %v, want at least 2s", o.SpawnLatency)
	}
	for _, op := range fake.Ops {
		if o.OpLatency[op] < 2*time.Second {
			t.Errorf("default latency of %s: %v, want at least 2s", op, o.OpLatency[op])
		}
	}
	o, _, err = upOptions([]string{"--spawn-latency", "0", "--op-latency", "250ms"}, io.Discard)
	if err != nil || o.SpawnLatency != 0 || o.OpLatency["reboot"] != 250*time.Millisecond {
		t.Errorf("up --spawn-latency 0 --op-latency 250ms: %v, %v, %v", o.SpawnLatency, o.OpLatency["reboot"], err)
	}
	if _, _, err := upOptions([]string{"--op-latency", "-1s"}, io.Discard); err == nil {
		t.Errorf("up --op-latency -1s: no error")
	}
}
