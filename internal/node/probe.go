package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
)

// BrokerProbe is what ProbeBroker found.
type BrokerProbe struct {
	// URL is the broker's, without a password.
	URL string
	// RTT is a round trip to it; JetStream what its JetStream account
	// answered ("enabled, N streams").
	RTT       time.Duration
	JetStream string
	// Err says why it could not be reached (URL names the broker).
	Err error
}

// ProbeBroker connects once to a cell's own broker as a process of the
// cell does (an external broker.url, or the embedded broker at its fixed
// broker.listen, as the cell's user, verified against broker.ca) and asks
// its JetStream account; it does not retry. For `cellcloud status
// --config`.
func ProbeBroker(ctx context.Context, cfg *config.Config) BrokerProbe {
	var opts []nats.Option
	if cfg.Broker.CA != "" {
		opts = append(opts, nats.RootCAs(cfg.Broker.CA))
	}
	url := cfg.Broker.URL
	if url == "" {
		listen := cfg.Broker.Listen
		if listen == "" {
			listen = "127.0.0.1:0"
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil || port == "0" {
			return BrokerProbe{URL: "embedded, broker.listen " + listen,
				Err: errors.New("broker.listen names no fixed port: only the running process knows its broker's")}
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		scheme := "nats://"
		if cfg.Broker.TLSCert != "" {
			scheme = "tls://"
		}
		url = scheme + net.JoinHostPort(host, port)
	}
	p := BrokerProbe{URL: broker.Redact(url)}
	user, err := brokerUser(cfg, url)
	if err != nil {
		p.Err = fmt.Errorf("the cell's broker users: %w", err)
		return p
	}
	opts = append(opts, user...)
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	nc, err := nats.Connect(url, append(opts, nats.Name("cellcloud status "+cfg.Cell), nats.Timeout(timeout), nats.NoReconnect())...)
	if err != nil {
		if broker.Refused(err) {
			p.Err = fmt.Errorf("refused this cell's credentials: %w", err)
		} else {
			p.Err = err
		}
		return p
	}
	defer nc.Close()
	if p.RTT, err = nc.RTT(); err != nil {
		p.Err = err
		return p
	}
	js, err := jetstream.New(nc)
	if err != nil {
		p.Err = err
		return p
	}
	info, err := js.AccountInfo(ctx)
	if err != nil {
		p.Err = fmt.Errorf("JetStream: %w", err)
		return p
	}
	p.JetStream = fmt.Sprintf("enabled, streams: %d", info.Streams)
	return p
}

// OpenDBAsIs opens a cell's database without running its migrations: for
// reading a cell that may be running another release (`cellcloud status
// --config`).
func OpenDBAsIs(ctx context.Context, cfg *config.Config) (*db.DB, error) {
	return db.Open(ctx, cfg.Database)
}

// SchemaStatus compares the migrations applied to a cell's database with
// this binary's: "current", or what differs. ok is false when the
// database has none of the cell's schema yet.
func SchemaStatus(ctx context.Context, d *db.DB, root bool) (status string, ok bool, err error) {
	rows, err := d.Query(ctx, `SELECT set_name, MAX(version) FROM schema_migrations GROUP BY set_name`)
	if err != nil {
		// No table: nothing was ever migrated here.
		return "no schema yet (the cell's first start, or cellcloud cell add, makes it)", false, nil
	}
	defer rows.Close()
	applied := map[string]int{}
	for rows.Next() {
		var set string
		var v int
		if err := rows.Scan(&set, &v); err != nil {
			return "", false, err
		}
		applied[set] = v
	}
	if err := rows.Err(); err != nil {
		return "", false, err
	}
	var behind, ahead []string
	for _, s := range schemas(root) {
		switch have, want := applied[s.set], len(s.ms); {
		case have < want:
			behind = append(behind, fmt.Sprintf("%s %d of %d", s.set, have, want))
		case have > want:
			ahead = append(ahead, fmt.Sprintf("%s %d, this binary knows %d", s.set, have, want))
		}
	}
	if applied["cells"] == 0 {
		return "no schema yet (the cell's first start, or cellcloud cell add, makes it)", false, nil
	}
	switch {
	case len(ahead) > 0:
		return "schema of a newer release (" + strings.Join(ahead, "; ") + ")", true, nil
	case len(behind) > 0:
		return "schema behind this binary (" + strings.Join(behind, "; ") + "): the cell's next start with it migrates", true, nil
	}
	return "schema current", true, nil
}
