package compute

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Errors become the Compute API's faults here, and only here:
//
//   - a room returns an *httpError (notFound, conflict, forbidden, ...), a
//     badRequest (bad, invalid), or a quota refusal; fail writes it with
//     faultOf, and anything else is a 500 (logged);
//   - a cell's answer (a wire error) becomes an *httpError by its code in
//     cellStatus, in fromCell, which every call to a cell goes through
//     (callCell, callInstanceCell).

// cellStatus is the one table from a cell's wire error code to the status
// the client gets. The message is the cell's own, except when the cell did
// not answer (503), where it says which cell did not (the caller's
// unreachable message). A code not listed is an unexpected error (500).
var cellStatus = map[wire.Code]int{
	wire.CodeInvalid:  http.StatusBadRequest,
	wire.CodeNotFound: http.StatusNotFound,
	wire.CodeConflict: http.StatusConflict,
	wire.CodeTimeout:  http.StatusServiceUnavailable,
	wire.CodeNoRoute:  http.StatusServiceUnavailable,
}

// fromCell turns a cell's answer into the API's error by cellStatus; the
// result still matches the wire sentinels (errors.Is(err,
// wire.ErrNotFound)), so that a room can name the item in its own 404
// (notFoundAs).
func fromCell(err error, unreachable func(we *wire.Error) string) error {
	var we *wire.Error
	if !errors.As(err, &we) {
		return err
	}
	status, ok := cellStatus[we.Code]
	if !ok {
		return err
	}
	msg := we.Message
	if status == http.StatusServiceUnavailable {
		msg = unreachable(we)
	}
	return &httpError{status: status, msg: msg, cause: err}
}

// notFoundAs is a cell's "not found" as a 404 that names the item as the
// client named it; any other error is returned as it is.
func notFoundAs(err error, format string, args ...any) error {
	if errors.Is(err, wire.ErrNotFound) {
		return notFound(format, args...)
	}
	return err
}

// faultOf is the status and message of an error a room returns: a quota
// refusal is Nova's 403, a badRequest a 400, an *httpError its own; ok is
// false for anything else.
func faultOf(err error) (status int, msg string, ok bool) {
	var ee *quota.ExceededError
	var le *quota.LimitError
	var br badRequest
	var he *httpError
	switch {
	case errors.As(err, &ee):
		return http.StatusForbidden, ee.Error(), true
	case errors.As(err, &le):
		return http.StatusForbidden, le.Error(), true
	case errors.As(err, &br):
		return http.StatusBadRequest, string(br), true
	case errors.As(err, &he):
		return he.status, he.msg, true
	}
	return 0, "", false
}

// fail answers a request with the fault of err (faultOf), or with a 500
// for an unexpected error, which it logs.
func (h *base) fail(w http.ResponseWriter, r *http.Request, err error) {
	if status, msg, ok := faultOf(err); ok {
		writeFault(w, status, msg)
		return
	}
	h.log.Error("request failed", "request_id", requestID(r.Context()), "err", err)
	writeFault(w, http.StatusInternalServerError, "Unexpected API Error. Please report this at the cellcloud issue tracker.")
}

// faultNames are the Compute API's fault keys by status (Nova's
// wsgi.Fault._fault_names; any other status, 406 included, is a
// computeFault).
var faultNames = map[int]string{
	400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
	409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
	500: "computeFault", 501: "notImplemented", 503: "serviceUnavailable",
}

// writeFault writes the Compute API's error shape:
// {"itemNotFound": {"code": 404, "message": "..."}}.
func writeFault(w http.ResponseWriter, status int, msg string) {
	name, ok := faultNames[status]
	if !ok {
		name = "computeFault"
	}
	writeJSON(w, status, map[string]any{name: map[string]any{"code": status, "message": msg}})
}

// badRequest is a 400 with its message.
type badRequest string

func (b badRequest) Error() string { return string(b) }

func bad(format string, a ...any) error { return badRequest(fmt.Sprintf(format, a...)) }

// httpError is an error with the status and message the client gets;
// cause is the cell's answer it was made from, if any.
type httpError struct {
	status int
	msg    string
	cause  error
}

func (e *httpError) Error() string { return e.msg }

func (e *httpError) Unwrap() error { return e.cause }

// forbidden is Nova's policy refusal.
func forbidden(rule string) error {
	return &httpError{status: http.StatusForbidden, msg: fmt.Sprintf("Policy doesn't allow %s to be performed.", rule)}
}

// forbidden2 is a 403 with a message of its own (not a policy's).
func forbidden2(msg string) error { return &httpError{status: http.StatusForbidden, msg: msg} }

// notFound is a 404 with Nova's message.
func notFound(format string, args ...any) error {
	return &httpError{status: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &httpError{status: http.StatusConflict, msg: fmt.Sprintf(format, args...)}
}

// invalid is Nova's message for a body field that fails its schema.
func invalid(field string, value any, format string, args ...any) error {
	return bad("Invalid input for field/attribute %s. Value: %s. %s", field, pyStr(value), fmt.Sprintf(format, args...))
}

// isNotFound reports whether the API cell's copy has no such record.
func isNotFound(err error) bool { return errors.Is(err, apidb.ErrNotFound) }
