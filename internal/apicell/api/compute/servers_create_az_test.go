package compute

import (
	"errors"
	"net/http"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// TestParseZone: availability_zone read as Nova's parse_availability_zone.
func TestParseZone(t *testing.T) {
	const tooMany = "Invalid input received: Unable to parse availability_zone"
	for _, c := range []struct {
		in               string
		zone, host, node string
		err              string
	}{
		{in: "nova", zone: "nova"},
		{in: "az1:h1", zone: "az1", host: "h1"},
		{in: "az1:h1:n1", zone: "az1", host: "h1", node: "n1"},
		{in: "az1::n1", zone: "az1", node: "n1"},
		{in: ":h1", host: "h1"},
		{in: "::n1", node: "n1"},
		{in: "az1:", zone: "az1"},
		{in: "az1::", zone: "az1"},
		{in: "az1:h1:", zone: "az1", host: "h1"},
		{in: ":h1:n1", host: "h1", node: "n1"},
		{in: "::", zone: ""},
		{in: "api!cell1@h1", zone: "api!cell1@h1"},
		{in: "az1:api!cell1@h1", zone: "az1", host: "api!cell1@h1"},
		{in: "az1:api!cell1@h1:n1", zone: "az1", host: "api!cell1@h1", node: "n1"},
		{in: ":::", err: tooMany},
		{in: "a:b:c:d", err: tooMany},
		{in: "a::b::c", err: tooMany},
		{in: "a:b::", err: tooMany},
	} {
		p, err := parseZone(c.in)
		if c.err != "" {
			var f *httpkit.Fault
			if !errors.As(err, &f) || f.Status != http.StatusBadRequest || f.Message != c.err {
				t.Errorf("parseZone(%q): %v, want 400 %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || p != (parsedZone{zone: c.zone, host: c.host, node: c.node}) {
			t.Errorf("parseZone(%q) = %+v, %v; want zone %q host %q node %q", c.in, p, err, c.zone, c.host, c.node)
		}
	}
}

// TestForcedZone: the zone a build forced to a host keeps, as Nova's
// _validate_host_availability_zone decides.
func TestForcedZone(t *testing.T) {
	for _, c := range []struct {
		name      string
		zone      string
		hostZones []string
		want      string
	}{
		{"no aggregate, default zone", "nova", nil, "nova"},
		{"no aggregate, other zone", "az1", nil, ""},
		{"no aggregate, no zone", "", nil, ""},
		{"host's zone", "az1", []string{"", "az1"}, "az1"},
		{"another zone", "az2", []string{"az1"}, ""},
		{"default zone, host in a zone", "nova", []string{"az1"}, ""},
		{"default zone, aggregates without zones", "nova", []string{"", ""}, "nova"},
		{"other zone, aggregates without zones", "az1", []string{""}, ""},
		{"first zone counts", "az2", []string{"az1", "az2"}, ""},
		{"no zone asked, host in a zone", "", []string{"az1"}, ""},
	} {
		if got := forcedZone(c.zone, c.hostZones, "nova"); got != c.want {
			t.Errorf("%s: forcedZone(%q, %q) = %q, want %q", c.name, c.zone, c.hostZones, got, c.want)
		}
	}
}
