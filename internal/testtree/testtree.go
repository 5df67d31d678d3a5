// Package testtree runs a whole cell tree in the test's process for
// end-to-end tests: up.Start in t.TempDir(), the Compute API on a loopback
// port, short capacity reports, logs into t.Log, and a shutdown when the
// test ends. It also has the small clients those tests share: raw HTTP and
// gophercloud, both in noauth mode.
package testtree

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/node"
	"github.com/cellcloud/cellcloud/internal/up"
)

// Options shape the tree. The zero value is an API cell and two compute
// cells of four default hosts each.
type Options struct {
	Cells        int
	HostsPerCell int
	// Depth is the tree's levels (up.Options.Depth): 2 by default, 3 puts
	// the compute cells below routing cells.
	Depth int
	// Host is the size of each fake host (zero fields take the defaults).
	Host config.HostSpec
	// ReportInterval is the capacity report interval (default 200ms).
	ReportInterval time.Duration
	SpawnLatency   time.Duration
	// CallTimeout is the deadline of a call to a cell (default 10s).
	CallTimeout time.Duration
	// LogLevel is the level of the log lines sent to t.Log (default Info).
	LogLevel slog.Level
	// Auth is the API's authentication mode; the default is noauth, which
	// the helpers here speak (tokens "user:project").
	Auth string
	// KeystoneURL is the Keystone v3 endpoint of auth mode keystone.
	KeystoneURL string
	// TokenCacheTTL is how long the API remembers a validated token.
	TokenCacheTTL time.Duration
	// Quota is the default quota. The zero value leaves instances, cores
	// and RAM unlimited (tests build more than Nova's 10 instances) and
	// takes Nova's defaults for the rest; set it to test quotas.
	Quota quota.Defaults
	// PolicyFile overrides policy rules.
	PolicyFile string
	// ReclaimInterval turns deferred delete on (api.reclaim_instance_interval).
	ReclaimInterval time.Duration
	// ShelvedOffloadTime and ShelvedPollInterval are the compute cells'
	// compute.shelved_offload_time (0: at once; negative: never) and
	// compute.shelved_poll_interval.
	ShelvedOffloadTime, ShelvedPollInterval time.Duration
}

// Tree is a running tree.
type Tree struct {
	*up.Tree
	// HTTP is the client the helpers use.
	HTTP *http.Client
}

// Start starts a tree and stops it when the test ends.
func Start(t testing.TB, o Options) *Tree {
	t.Helper()
	if o.Cells == 0 {
		o.Cells = 2
	}
	if o.HostsPerCell == 0 {
		o.HostsPerCell = 4
	}
	if o.Auth == "" {
		o.Auth = "noauth"
	}
	if o.Quota == (quota.Defaults{}) {
		o.Quota = quota.Defaults{Instances: quota.Unlimited, Cores: quota.Unlimited, RAM: quota.Unlimited}
	}
	if o.ReportInterval == 0 {
		o.ReportInterval = 200 * time.Millisecond
	}
	log := Logger(t, o.LogLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	tr, err := up.Start(ctx, up.Options{
		DataDir: t.TempDir(), Cells: o.Cells, HostsPerCell: o.HostsPerCell, Depth: o.Depth, Listen: "127.0.0.1:0",
		Host: o.Host, ReportInterval: o.ReportInterval, SpawnLatency: o.SpawnLatency, CallTimeout: o.CallTimeout,
		Auth: o.Auth, KeystoneURL: o.KeystoneURL, TokenCacheTTL: o.TokenCacheTTL, Quota: o.Quota, PolicyFile: o.PolicyFile, ReclaimInterval: o.ReclaimInterval,
		ShelvedOffloadTime: o.ShelvedOffloadTime, ShelvedPollInterval: o.ShelvedPollInterval,
	}, log)
	if err != nil {
		t.Fatalf("start tree: %v", err)
	}
	t.Logf("tree of %d compute cells up in %v at %s", o.Cells, time.Since(start).Round(time.Millisecond), tr.APIURL())
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tr.Shutdown(sctx)
		client.CloseIdleConnections()
	})
	return &Tree{Tree: tr, HTTP: client}
}

// Logger is a logger that writes to t.Log at level and above. It stops
// when the test's cleanups run, after those registered later (such as a
// tree's shutdown), so a goroutine that logs late cannot log into a
// finished test.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	sink := &logSink{t: t}
	t.Cleanup(sink.stop)
	return slog.New(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: level}))
}

// logSink writes each log record to t.Log until the test is over.
type logSink struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (s *logSink) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

// Compute is a gophercloud compute client for token ("user:project";
// user "admin" is an administrator).
func (tr *Tree) Compute(token string) *gophercloud.ServiceClient {
	pc := &gophercloud.ProviderClient{HTTPClient: *tr.HTTP}
	pc.SetToken(token)
	base := tr.APIURL() + "/"
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: base, ResourceBase: base, Type: "compute"}
}

// Response is a raw HTTP response with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response body is not the JSON expected (%v): %s", err, r.Body)
	}
}

// Map decodes the body as a JSON object.
func (r *Response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// Do sends a request to the Compute API. path is relative to the API's
// root (e.g. "/v2.1/servers" or "/"); body is sent as is when it is a
// string or []byte, and as JSON otherwise (nil sends no body). headers
// are pairs of name and value. A request that gets no answer fails the
// test; use Send from other goroutines.
func (tr *Tree) Do(t testing.TB, method, path, token string, body any, headers ...string) *Response {
	t.Helper()
	r, err := tr.Send(method, path, token, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Send is Do that returns its error, for use outside the test's goroutine.
func (tr *Tree) Send(method, path, token string, body any, headers ...string) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode request body: %w", err)
		}
		rd = bytes.NewReader(j)
	}
	root := strings.TrimSuffix(tr.APIURL(), "/v2.1")
	req, err := http.NewRequest(method, root+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "" {
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := tr.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Fault checks that r is the Compute API's error shape for status,
// {"<name>": {"code": status, "message": "..."}}, and returns the message.
func Fault(t testing.TB, r *Response, status int) string {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("fault Content-Type %q, want application/json", ct)
	}
	var m map[string]map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil || len(m) != 1 {
		t.Fatalf("fault body is not {\"<name>\": {...}}: %s", r.Body)
	}
	for name, f := range m {
		want, ok := faultNames[status]
		if !ok {
			want = "computeFault"
		}
		if name != want {
			t.Errorf("fault name %q, want %q", name, want)
		}
		if code, _ := f["code"].(float64); int(code) != status {
			t.Errorf("fault code %v, want %d", f["code"], status)
		}
		msg, _ := f["message"].(string)
		if msg == "" {
			t.Errorf("fault has no message: %s", r.Body)
		}
		return msg
	}
	return ""
}

// faultNames are Nova's fault names (wsgi.Fault._fault_names); any other
// status is a computeFault.
var faultNames = map[int]string{
	400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
	406: "computeFault", 409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
	500: "computeFault", 501: "notImplemented", 503: "serviceUnavailable",
}

// String is a short description of a response for failure messages.
func (r *Response) String() string {
	return fmt.Sprintf("%d %s", r.Status, r.Body)
}

// StopCell shuts a cell down and returns its configuration with the
// broker's address it had, so that RestartCell brings it back where the
// links of its neighbours find it.
func StopCell(t testing.TB, n *node.Node) config.Config {
	t.Helper()
	cfg := *n.Config()
	u, err := url.Parse(n.BrokerURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Broker.Listen = u.Host
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n.Shutdown(ctx)
	return cfg
}

// RestartCell starts a cell StopCell stopped, and stops it when the test
// ends.
func RestartCell(t testing.TB, cfg config.Config) *node.Node {
	t.Helper()
	n, err := node.New(&cfg, Logger(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatalf("restart %s: %v", cfg.Cell, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return n
}

// Volume is a gophercloud Block Storage v3 client for token (noauth:
// "user:project"), at the API's /volume/v3/<project>/, as the catalog
// names it, speaking microversion 3.60.
func (tr *Tree) Volume(token string) *gophercloud.ServiceClient {
	pc := &gophercloud.ProviderClient{HTTPClient: *tr.HTTP}
	pc.SetToken(token)
	project := token[strings.Index(token, ":")+1:]
	base := strings.TrimSuffix(tr.APIURL(), "/v2.1") + "/volume/v3/" + project + "/"
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: base, ResourceBase: base, Type: "block-storage", Microversion: "3.60"}
}
