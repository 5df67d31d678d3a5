// Package broker runs a cell's embedded NATS server (with JetStream) and
// connects to brokers, embedded or external, by URL.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/privfs"
)

// EmbeddedConfig configures an embedded broker.
type EmbeddedConfig struct {
	// Name identifies the server in its logs (the cell path).
	Name string
	// Listen is host:port; port 0 picks a free port. The default is
	// 127.0.0.1:0. It must never be the standard 4222.
	Listen string
	// StoreDir holds JetStream's files.
	StoreDir string
	// Auth, when set, is required of every client: a connection without
	// one of its users is refused. Every cell's broker has it (the node
	// sets it); only tests of this package and of the cells transport run
	// without.
	Auth *Auth
	// TLS, when set, is required of every client.
	TLS *tls.Config
}

// InMsgs is how many messages clients have published to the server,
// JetStream's own API requests and acknowledgements included.
func (e *Embedded) InMsgs() int64 {
	v, err := e.srv.Varz(nil)
	if err != nil {
		return 0
	}
	return v.InMsgs
}

// Embedded is a running embedded NATS server.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server with JetStream and waits until it
// accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("broker: embedded broker needs a store directory")
	}
	// The store holds messages with users' data: private (NATS writes its
	// own files 0600 in 0700 directories).
	if err := privfs.MkdirAll(cfg.StoreDir); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("broker: listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("broker: listen %q: bad port", listen)
	}
	if port == 4222 {
		return nil, errors.New("broker: the embedded broker must not take the standard NATS port 4222")
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName:         sanitize(cfg.Name),
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		NoSigs:             true,
		NoLog:              true,
		MaxPayload:         8 << 20,
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  8 << 30,
	}
	if cfg.Auth != nil {
		opts.Users = cfg.Auth.users()
	}
	if cfg.TLS != nil {
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, cfg.TLS, 5
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("broker: embedded server on %s did not become ready", listen)
	}
	return &Embedded{srv: srv}, nil
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == ' ' || c == '.' || c == '*' || c == '>' {
			b[i] = '_'
		}
	}
	return string(b)
}

// URL is the client URL of the server.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// Connect connects to a broker. When the broker is not reachable yet it
// keeps trying in the background (the connection buffers publishes). A
// user and password in the URL are used; extra options (credentials, an
// inbox prefix) come after the defaults.
func Connect(ctx context.Context, url, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(32 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("broker connection lost", "url", Redact(url), "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("broker connection restored", "url", Redact(url)) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("broker error", "url", Redact(url), "err", err)
		}),
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("broker: connect %s: %w", Redact(url), err)
	}
	return nc, nil
}

// WaitConnected waits until nc is connected or ctx ends. A broker that
// refuses the connection's credentials (an authorization violation, an
// expired or revoked user) will not take it later: that, or a connection
// the client gave up on, is an error at once, naming the URL and the
// reason, rather than a wait for ctx.
func WaitConnected(ctx context.Context, nc *nats.Conn) error {
	for !nc.IsConnected() {
		if err := nc.LastError(); Refused(err) || (nc.IsClosed() && err != nil) {
			return fmt.Errorf("broker: %s refused the connection: %w", connURL(nc), err)
		}
		select {
		case <-ctx.Done():
			if err := nc.LastError(); err != nil {
				return fmt.Errorf("broker: not connected to %s: %w (last error: %v)", connURL(nc), ctx.Err(), err)
			}
			return fmt.Errorf("broker: not connected to %s: %w", connURL(nc), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Refused reports whether err is a broker's refusal of the credentials.
func Refused(err error) bool {
	return err != nil && (errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) ||
		errors.Is(err, nats.ErrAccountAuthExpired) || strings.Contains(strings.ToLower(err.Error()), "authorization violation"))
}

// connURL is the URL nc was made for, without its password: nats.Connect
// keeps it among the servers, not in Opts.Url.
func connURL(nc *nats.Conn) string {
	if nc.Opts.Url != "" || len(nc.Opts.Servers) == 0 {
		return Redact(nc.Opts.Url)
	}
	us := make([]string, len(nc.Opts.Servers))
	for i, u := range nc.Opts.Servers {
		us[i] = Redact(u)
	}
	return strings.Join(us, ",")
}
