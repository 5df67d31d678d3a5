package identity

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/notfound"
)

// Errors become the Identity API's faults here, and only here, through the
// shared kit (httpkit):
//
//   - a room returns a *httpkit.Fault (badRequest, notFound, forbidden,
//     ...) that says its own status and message;
//   - anything else is looked up in errorTable, the one table from errors
//     to statuses (the identity store's errors, authentication);
//   - an error neither names is a 500 (logged).
//
// fail (base) hands each to kit.Fail; keystoneFault is the body.

const internalError = "An unexpected error prevented the server from fulfilling your request."

// errorTable is the Identity API's errors as data; each answers with the
// error's own text unless the row names a message.
var errorTable = httpkit.Table{
	{Err: notfound.Err, Status: http.StatusNotFound},
	{Err: identity.ErrConflict, Status: http.StatusConflict},
	{Err: identity.ErrInvalid, Status: http.StatusBadRequest},
	{Err: identity.ErrScope, Status: http.StatusUnauthorized},
	{Err: identity.ErrAccountLocked, Status: http.StatusUnauthorized}, // Keystone's AccountLocked: "The account is locked for user: ID."
	{Err: identity.ErrThrottled, Status: http.StatusTooManyRequests},  // RFC 6585 §4, with Retry-After
	{Err: identity.ErrBusy, Status: http.StatusServiceUnavailable},    // with Retry-After; keystoneauth retries a 503
	{Err: identity.ErrUnauthorized, Status: http.StatusUnauthorized, Message: identity.ErrUnauthorized.Error()},
	{Err: identity.ErrTokenNotFound, Status: http.StatusUnauthorized, Message: identity.ErrUnauthorized.Error()},
	{Err: authn.ErrUnauthorized, Status: http.StatusUnauthorized}, // an X-Auth-Token that is no token
}

// fail answers a request with the fault of err, or with a 500 for an
// unexpected error, which the kit logs. An error that says when to retry
// (a throttled or busy authentication) sets Retry-After, in whole seconds.
func (b *base) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(ra.RetryAfter().Seconds())))))
	}
	b.kit.Fail(w, r, err)
}

// keystoneFault writes Keystone's error shape:
// {"error": {"code": 404, "message": "...", "title": "Not Found"}}, with a
// WWW-Authenticate header on a 401.
func keystoneFault(w http.ResponseWriter, f *httpkit.Fault) {
	if f.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="identity"`)
	}
	httpkit.WriteJSON(w, f.Status, map[string]any{"error": map[string]any{"code": f.Status, "message": f.Message, "title": http.StatusText(f.Status)}})
}

// The refusals rooms return.

func badRequest(format string, args ...any) error {
	return httpkit.Errorf(http.StatusBadRequest, format, args...)
}

func notFound(format string, args ...any) error {
	return httpkit.Errorf(http.StatusNotFound, format, args...)
}

// forbidden is the 403 of a policy rule that does not allow the caller.
func forbidden(rule string) error {
	return httpkit.Errorf(http.StatusForbidden, "You are not authorized to perform the requested action: %s.", rule)
}
