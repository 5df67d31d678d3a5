// Package httpkit is the scaffolding every public HTTP API of the API cell
// shares (Compute, Identity, Image, Networking, and Block Storage to come):
// the request id in and out, the access log, panic recovery, the caller from
// the token, JSON writing, and the translation of errors into each API's own
// fault body through a table that is data.
//
// # How an API uses it
//
// An API builds one Kit in its constructor, naming its logger (which
// carries the cell), the headers that echo the request id, its error Shape,
// its 500 and its error Table:
//
//	kit, err := httpkit.New(httpkit.Config{
//		Logger:           log, // already With("cell", cfg.Cell, ...)
//		RequestIDHeaders: []string{"X-Openstack-Request-Id", "X-Compute-Request-Id"},
//		Shape:            computeFault, // func(w, *httpkit.Fault)
//		Internal:         httpkit.Fault{Status: 500, Message: "Unexpected API Error. ..."},
//		Table:            errorTable, // []httpkit.Row
//	})
//
// Its ServeHTTP hands each request to kit.Wrap(its own router): Wrap sets
// the request id (in the context and in the response headers), recovers a
// panic into the 500 in the API's shape (the stack goes to the log) and logs
// one "request" line with request_id, method, path, status and duration.
// What is particular to an API (path rewriting, its own 404 and 405, the
// microversion) stays in the router the API hands to Wrap.
//
// Handlers refuse a request by returning (or passing to kit.Fail) a
// *Fault, or any error: Fail writes the first *Fault in the error's chain
// as it says, else the first Row of the Table that matches the error with
// errors.Is, else logs the error and writes the Internal fault. A table is
// data, first match wins (an illustration; each API's own is in its
// package, e.g. compute/kit_errors.go):
//
//	var errorTable = httpkit.Table{
//		{Err: notfound.Err, Status: 404},    // every not-found sentinel, and wire not_found
//		{Err: wire.ErrConflict, Status: 409}, // message: the wire error's own
//		{Err: wire.ErrInvalid, Status: 400},
//		{Err: wire.ErrTimeout, Status: 503, Message: "..."},
//	}
//
// A row's message, when it names none, is the text of the error in the
// chain that matched (a *wire.Error's Message without its code); a row
// whose API needs more from the error (Neutron's fault type) reads it with
// its Detail function.
//
// Authentication: kit.Authenticate(r, authenticator, policy) gives the
// Caller (the token's principal and whether the policy calls it an admin)
// or an error the API's table maps: authn.ErrUnauthorized (no, bad or
// unscoped token) and ErrIdentityUnavailable (the authenticator failed; the
// kit logs why). WithCaller and CallerFrom keep it in the context; RequestID
// reads the request id (one set of context keys for every API).
//
// JSON: WriteJSON writes a status and a value through jsonenc, byte for
// byte what encoding/json's Encoder writes (with its newline); WriteMarshal
// writes what json.Marshal does (no newline: Glance's answers).
//
// # Who uses it
//
// All four APIs of today:
//
//   - Compute (Nova's {"itemNotFound": {"code", "message"}}, the fault
//     name by status; request id also in X-Compute-Request-Id): its table
//     (compute/kit_errors.go) maps authentication, quota refusals
//     (quota.ErrRefused) and a cell's answers to a call, by wire code; a
//     cell that did not answer is a 503 in the words of the call path,
//     which the cell's answer carries to the row's Detail. Its rooms
//     refuse with *Fault (bad, notFound, conflict, forbidden, ...). The
//     project id in the path, its 404/405 and the microversion stay in its
//     router and its auth.
//   - Identity (Keystone's {"error": {...}}, WWW-Authenticate on a 401).
//   - Image (Glance's {"message", "code": "404 Not Found", "title"},
//     answers without a newline).
//   - Networking (Neutron's {"NeutronError": {"type", "message",
//     "detail"}}, its type from netdb's errors).
//
// Block Storage, when it comes, builds its Kit the same way.
package httpkit

import (
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
)

// Config configures a Kit.
type Config struct {
	// Logger is the API's logger; it should carry the cell (With("cell",
	// ...)) so that the access line names it. Nil means slog.Default().
	Logger *slog.Logger
	// RequestIDHeaders are the response headers that carry the request id;
	// none means X-Openstack-Request-Id.
	RequestIDHeaders []string
	// Shape writes a fault in the API's own body. Required.
	Shape Shape
	// Internal is the fault for a panic and for an error no row maps.
	// Required (its Status must be set).
	Internal Fault
	// Table maps errors to faults; first match wins.
	Table Table
}

// Kit is an API's scaffolding. It holds no mutable state: one Kit serves
// every request of its API.
type Kit struct {
	log      *slog.Logger
	headers  []string
	shape    Shape
	internal Fault
	table    Table
}

// New validates cfg and fills its defaults.
func New(cfg Config) (*Kit, error) {
	if cfg.Shape == nil || cfg.Internal.Status == 0 {
		return nil, errors.New("httpkit: a shape and an internal fault are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.RequestIDHeaders) == 0 {
		cfg.RequestIDHeaders = []string{"X-Openstack-Request-Id"}
	}
	return &Kit{log: cfg.Logger, headers: cfg.RequestIDHeaders, shape: cfg.Shape, internal: cfg.Internal, table: cfg.Table}, nil
}

// Wrap gives h the request id (a new "req-<uuid>" in the context and in
// each of the request-id headers), recovers a panic in h into the Internal
// fault in the API's shape (unless h had begun its answer) with the panic
// and its stack in the log, and logs one access line per request.
func (k *Kit) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := "req-" + uuid.NewString()
		for _, name := range k.headers {
			w.Header().Set(name, rid)
		}
		r = r.WithContext(WithRequestID(r.Context(), rid))
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				k.log.Error("panic serving a request", "request_id", rid, "panic", p, "stack", string(debug.Stack()))
				if !rec.wrote {
					k.Write(rec, &k.internal)
				}
			}
			k.log.Info("request", "request_id", rid, "method", r.Method, "path", r.URL.Path, "status", rec.status,
				"dur", time.Since(start).Round(time.Microsecond))
		}()
		h.ServeHTTP(rec, r)
	})
}

// recorder keeps the status of the answer for the access log.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status = code
		r.wrote = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
