package main

import (
	"io"
	"net"
	"testing"
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
