package compute

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// ruleForcedHost lets a create name its host or node in its
// availability_zone (Nova's default: admins only).
const ruleForcedHost = "os_compute_api:servers:create:forced_host"

// parsedZone is a create's availability_zone as Nova's
// parse_availability_zone reads it.
type parsedZone struct {
	// zone is the zone asked for ("": none, Nova's default_schedule_zone
	// unset).
	zone string
	// host and node are forced ("": not).
	host, node string
}

// parseZone reads "zone", "zone:host", "zone:host:node" and "zone::node"
// as Nova does: a part left empty forces nothing, and more than two ':'
// is a 400.
func parseZone(s string) (parsedZone, error) {
	var p parsedZone
	switch strings.Count(s, ":") {
	case 0:
		p.zone = s
	case 1:
		p.zone, p.host, _ = strings.Cut(s, ":")
	case 2:
		if z, n, ok := strings.Cut(s, "::"); ok {
			p.zone, p.node = z, n
		} else {
			parts := strings.Split(s, ":")
			p.zone, p.host, p.node = parts[0], parts[1], parts[2]
		}
	default:
		return parsedZone{}, bad("Invalid input received: Unable to parse availability_zone")
	}
	return p, nil
}

// forced reports whether the create names a host or a node.
func (p parsedZone) forced() bool { return p.host != "" || p.node != "" }

// forcedZone is Nova's _validate_host_availability_zone: the zone a build
// forced to a host keeps. A host in no aggregate is in the default zone; a
// host in aggregates is in the first of their zones (the default zone when
// none has one). The zone asked for is kept when it is the host's, else
// dropped ("", and Nova's conductor then gives the instance its host's
// zone). hostZones are the zones of the host's aggregates, "" for one
// without a zone; nil when the host is in none.
func forcedZone(zone string, hostZones []string, defaultZone string) string {
	if hostZones == nil {
		if zone == defaultZone {
			return zone
		}
		return ""
	}
	hz := ""
	for _, z := range hostZones {
		if z != "" {
			hz = z
			break
		}
	}
	if zone == hz || (zone == defaultZone && hz == "") {
		return zone
	}
	return ""
}

// hostAggregateZones are the zones of the aggregates host is in, in
// aggregate order ("" for an aggregate without a zone); nil when it is in
// none.
func hostAggregateZones(ctx context.Context, q db.Querier, host apidb.AggregateHost) ([]string, error) {
	aggs, err := apidb.ListAggregates(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range aggs {
		if slices.Contains(a.Hosts, host) {
			out = append(out, a.Zone())
		}
	}
	return out, nil
}

// createZone reads a create's availability_zone (Nova's
// parse_availability_zone and, for a forced host or node, the
// forced_host policy and _validate_host_availability_zone). A forced host
// is named as os-services names hosts: "PATH@HOST", or a bare name one
// cell has; one the API cell has no mapping of goes to the cells as
// named, where no host matches it and the build fails with no valid host,
// as in Nova (whose API does not look the host up either).
func (h *serversHandler) createZone(r *http.Request, req *createRequest) error {
	ctx := r.Context()
	asked := req.az
	p, err := parseZone(asked)
	if err != nil {
		return err
	}
	req.az = p.zone
	if !p.forced() {
		return nil
	}
	if err := h.authorize(ctx, ruleForcedHost, policy.Target{"availability_zone": asked}); err != nil {
		return err
	}
	req.forcedHost, req.forcedNode = p.host, p.node
	var zones []string
	if p.host != "" {
		host, ok, err := h.aggregateHost(r, p.host)
		if err != nil {
			return err
		}
		if ok {
			req.forcedCell, req.forcedHost = host.Cell, host.Host
			if zones, err = hostAggregateZones(ctx, h.cfg.DB, host); err != nil {
				return err
			}
		} else if _, bare, qualified := h.splitQualified(p.host); qualified {
			req.forcedHost = bare
		}
	}
	req.az = forcedZone(p.zone, zones, h.cfg.DefaultAvailabilityZone)
	if req.az == "" && req.forcedCell != "" {
		// Nova's conductor gives the instance its host's zone.
		req.az = hostZoneOf(zones, h.cfg.DefaultAvailabilityZone)
	}
	return nil
}

// hostZoneOf is Nova's get_host_availability_zone from the zones of a
// host's aggregates: the first zone, or the default zone.
func hostZoneOf(zones []string, defaultZone string) string {
	for _, z := range zones {
		if z != "" {
			return z
		}
	}
	return defaultZone
}

// checkZone refuses an availability zone that is not available, as
// Nova's create does (the zones of the enabled compute services): one a
// cell below reports, one an aggregate with at least one host has (its
// hosts' cells may be down: the build then finds no valid host), or the
// default zone. A build forced to a host is not checked (Nova neither).
func checkZone(ctx context.Context, d *db.DB, zones *zoneCache, req *createRequest, defaultZone string) error {
	zone := req.az
	if zone == "" || req.forcedHost != "" {
		return nil
	}
	return zoneAvailable(ctx, d, zones, zone, defaultZone)
}

// zoneAvailable refuses a zone that is not available (400 "The requested
// availability zone is not available"), as Nova's create and unshelve
// (2.77) do: one a cell below reports, one an aggregate with at least one
// host has (its hosts' cells may be down: the build then finds no valid
// host), or the default zone.
func zoneAvailable(ctx context.Context, d db.Querier, zones *zoneCache, zone, defaultZone string) error {
	if zone == defaultZone {
		return nil
	}
	if ok, err := zones.reported(ctx, d, zone); err != nil || ok {
		return err
	}
	aggs, err := apidb.ListAggregates(ctx, d)
	if err != nil {
		return err
	}
	for _, a := range aggs {
		if a.Zone() == zone && len(a.Hosts) > 0 {
			return nil
		}
	}
	return bad("The requested availability zone is not available")
}

// zoneCacheTTL is how long the zones the cells report are used before
// they are read again: a create naming a zone would otherwise read every
// child's report from the database (the cells report at most once a
// second on a change anyway).
const zoneCacheTTL = time.Second

// zoneCache holds the zones the API cell's children last reported (their
// subtrees' zones with an enabled host).
type zoneCache struct {
	mu    sync.Mutex
	at    time.Time
	zones map[string]bool
}

// reported says whether a child of the API cell reports zone.
func (c *zoneCache) reported(ctx context.Context, q db.Querier, zone string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.zones == nil || time.Since(c.at) >= zoneCacheTTL {
		ns, err := cells.ListNeighbours(ctx, q)
		if err != nil {
			return false, err
		}
		zones := map[string]bool{}
		for _, n := range ns {
			if n.Relation == cells.Child && n.Report != nil {
				for _, z := range n.Report.AvailabilityZones {
					zones[z] = true
				}
			}
		}
		c.zones, c.at = zones, time.Now()
	}
	return c.zones[zone], nil
}
