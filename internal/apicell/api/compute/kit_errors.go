package compute

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Errors become the Compute API's faults here, and only here, through the
// shared kit (httpkit):
//
//   - a room returns a *httpkit.Fault (bad, invalid, notFound, conflict,
//     forbidden, ...) that says its own status and message;
//   - anything else is looked up in errorTable, the one table from errors
//     to statuses (authentication, quota refusals, a cell's answers);
//   - an error neither names is a 500 (logged).
//
// fail (base) hands each to kit.Fail; computeFault is the body.

// internalError is the message of a 500 (a panic or an unexpected error).
const internalError = "Unexpected API Error. Please report this at the cellcloud issue tracker."

// errorTable is the Compute API's errors as data; first match wins.
//
// A cell's answer counts only when it is one (callCell and
// callInstanceCell mark it, cellAnswer): a wire error from elsewhere (the
// outbox, a gather) is no cell's refusal and stays a 500. Its message is
// the cell's own, except when the cell did not answer (503), where it says
// which cell did not, in the words of the call path (the cell named by an
// operator API, or "the cell of this instance").
var errorTable = httpkit.Table{
	{Err: authn.ErrUnauthorized, Status: http.StatusUnauthorized, Message: "The request you have made requires authentication."},
	{Err: httpkit.ErrIdentityUnavailable, Status: http.StatusServiceUnavailable, Message: "The identity service could not validate the token; try again later."},
	{Err: quota.ErrRefused, Status: http.StatusForbidden}, // Nova's 403, the refusal's message
	{Err: cellCode(wire.CodeInvalid), Status: http.StatusBadRequest, Detail: cellMessage},
	{Err: cellCode(wire.CodeNotFound), Status: http.StatusNotFound, Detail: cellMessage},
	{Err: cellCode(wire.CodeConflict), Status: http.StatusConflict, Detail: cellMessage},
	{Err: cellCode(wire.CodeTimeout), Status: http.StatusServiceUnavailable, Detail: cellMessage},
	{Err: cellCode(wire.CodeNoRoute), Status: http.StatusServiceUnavailable, Detail: cellMessage},
}

// cellCode is the kind of a cell's answer with a wire code, as a row of
// errorTable matches it.
type cellCode wire.Code

func (c cellCode) Error() string { return "a cell answered " + string(c) }

// cellAnswer is a cell's error answer to a call of the API's: the wire
// error, and what to say if the cell did not answer. It still matches the
// wire sentinels (errors.Is(err, wire.ErrNotFound)), so that a room can
// name the item in its own 404 (notFoundAs).
type cellAnswer struct {
	err         error       // the call's error, as the caller returned it
	we          *wire.Error // the wire error in it
	unreachable string
}

func (a *cellAnswer) Error() string { return a.err.Error() }

func (a *cellAnswer) Unwrap() error { return a.err }

// Is matches the cellCode of the answer's wire code.
func (a *cellAnswer) Is(target error) bool {
	c, ok := target.(cellCode)
	return ok && wire.Code(c) == a.we.Code
}

// fromCell marks a cell's error answer as one (cellAnswer); unreachable
// words the 503 of a cell that did not answer (timeout, no route).
func fromCell(err error, unreachable func(we *wire.Error) string) error {
	var we *wire.Error
	if !errors.As(err, &we) {
		return err
	}
	a := &cellAnswer{err: err, we: we}
	if we.Code == wire.CodeTimeout || we.Code == wire.CodeNoRoute {
		a.unreachable = unreachable(we)
	}
	return a
}

// cellMessage is the message of a cell's answer: the cell's own, or the
// call path's words for a cell that did not answer.
func cellMessage(err error) (typ, msg string, ok bool) {
	var a *cellAnswer
	if !errors.As(err, &a) {
		return "", "", false
	}
	if a.we.Code == wire.CodeTimeout || a.we.Code == wire.CodeNoRoute {
		return "", a.unreachable, true
	}
	return "", a.we.Message, true
}

// notFoundAs is a cell's "not found" as a 404 that names the item as the
// client named it; any other error is returned as it is.
func notFoundAs(err error, format string, args ...any) error {
	if errors.Is(err, wire.ErrNotFound) {
		return notFound(format, args...)
	}
	return err
}

// fail answers a request with the fault of err, or with a 500 for an
// unexpected error, which the kit logs.
func (h *base) fail(w http.ResponseWriter, r *http.Request, err error) { h.kit.Fail(w, r, err) }

// faultNames are the Compute API's fault keys by status (Nova's
// wsgi.Fault._fault_names; any other status, 406 included, is a
// computeFault).
var faultNames = map[int]string{
	400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
	409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
	500: "computeFault", 501: "notImplemented", 503: "serviceUnavailable",
}

// computeFault is the Compute API's error shape (its httpkit.Shape):
// {"itemNotFound": {"code": 404, "message": "..."}}.
func computeFault(w http.ResponseWriter, f *httpkit.Fault) {
	name, ok := faultNames[f.Status]
	if !ok {
		name = "computeFault"
	}
	httpkit.WriteJSON(w, f.Status, map[string]any{name: map[string]any{"code": f.Status, "message": f.Message}})
}

// fault is a refusal with its status and message.
func fault(status int, msg string) *httpkit.Fault {
	return &httpkit.Fault{Status: status, Message: msg}
}

// bad is a 400 with its message.
func bad(format string, a ...any) error { return httpkit.Errorf(http.StatusBadRequest, format, a...) }

// tooLarge is Nova's 413 for a body over the limit.
func tooLarge() error { return fault(http.StatusRequestEntityTooLarge, "Request is too large.") }

// forbidden is Nova's policy refusal.
func forbidden(rule string) error {
	return httpkit.Errorf(http.StatusForbidden, "Policy doesn't allow %s to be performed.", rule)
}

// forbidden2 is a 403 with a message of its own (not a policy's).
func forbidden2(msg string) error { return fault(http.StatusForbidden, msg) }

// notFound is a 404 with Nova's message.
func notFound(format string, args ...any) error {
	return httpkit.Errorf(http.StatusNotFound, format, args...)
}

func conflict(format string, args ...any) error {
	return httpkit.Errorf(http.StatusConflict, format, args...)
}

// invalid is Nova's message for a body field that fails its schema.
func invalid(field string, value any, format string, args ...any) error {
	return bad("Invalid input for field/attribute %s. Value: %s. %s", field, pyStr(value), fmt.Sprintf(format, args...))
}

// isNotFound reports whether the API cell's copy has no such record.
func isNotFound(err error) bool { return errors.Is(err, apidb.ErrNotFound) }
