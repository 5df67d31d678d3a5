package image

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
)

// The Image API's errors: Glance's shape (glanceFault), the refusals the
// rooms decide themselves (errorf, a *httpkit.Fault), and the one table
// (errorTable) from the stores' errors to Glance's statuses and messages.
//
// Glance's messages about an image name it, so a room hands a store's
// error to fail as onImage(id, err), naming the image the message is
// about; the table's rows for the store's errors apply only to an error
// so named (any other is a 500, logged, as before).

func errorf(status int, format string, args ...any) *httpkit.Fault {
	return httpkit.Errorf(status, format, args...)
}

// glanceFault writes Glance's JSON error shape (webob's):
// {"message": "...", "code": "404 Not Found", "title": "Not Found"}.
func glanceFault(w http.ResponseWriter, e *httpkit.Fault) {
	title := http.StatusText(e.Status)
	httpkit.WriteMarshal(w, e.Status, map[string]any{"message": e.Message, "code": fmt.Sprintf("%d %s", e.Status, title), "title": title})
}

// imageError is a store's error about the image id, which the table's
// messages name.
type imageError struct {
	id  string
	err error
}

func (e *imageError) Error() string { return e.err.Error() }
func (e *imageError) Unwrap() error { return e.err }

// Is matches errTransition when the store refused a status change.
func (e *imageError) Is(target error) bool {
	var se *imagedb.StatusError
	return target == errTransition && errors.As(e.err, &se)
}

// onImage names the image err is about (nil stays nil).
func onImage(id string, err error) error {
	if err == nil {
		return nil
	}
	return &imageError{id: id, err: err}
}

var (
	// errTransition is an *imagedb.StatusError (a status change the
	// image's status does not allow) of an imageError, for the table.
	errTransition = errors.New("image status transition not allowed")
	// errGoneDuringUpload is an image deleted while its data was being
	// uploaded.
	errGoneDuringUpload = errors.New("image deleted during the upload")
)

// errorTable is the Image API's errors as data: the authentication
// failures, then the stores' errors about an image (onImage), in Glance's
// words.
var errorTable = httpkit.Table{
	{Err: authn.ErrUnauthorized, Status: http.StatusUnauthorized, Message: "This server could not verify that you are authorized to access the document you requested."},
	{Err: httpkit.ErrIdentityUnavailable, Status: http.StatusServiceUnavailable, Message: "The identity service could not validate the token; try again later."},
	{Err: errGoneDuringUpload, Status: http.StatusGone, Detail: aboutImage("Image %s could not be found after upload. The image may have been deleted " +
		"during the upload, cleaning up the chunks uploaded.")},
	{Err: imagedb.ErrNotFound, Status: http.StatusNotFound, Detail: aboutImage("No image found with ID %s")},
	// Glance answers a list's marker it cannot find with 400.
	{Err: imagedb.ErrMarker, Status: http.StatusBadRequest, Detail: aboutImage("No image found with ID %s")},
	{Err: imagedb.ErrDuplicate, Status: http.StatusConflict, Detail: aboutImage("Image with identifier %s already exists!")},
	{Err: imagedb.ErrProtected, Status: http.StatusForbidden, Detail: aboutImage("Image %s is protected and cannot be deleted.")},
	{Err: errTransition, Status: http.StatusConflict, Detail: transition},
	{Err: imagedb.ErrNoFormats, Status: http.StatusBadRequest, Detail: aboutImage("Properties disk_format, container_format must be set prior to saving data.")},
	// A write that found the image changed under it every time it tried
	// (retryStale).
	{Err: imagedb.ErrStale, Status: http.StatusConflict, Message: "The image was changed by another request; try again."},
}

// aboutImage is a row's message about the image an imageError names: msg,
// with the image id for its %s if it has one.
func aboutImage(msg string) func(err error) (typ, text string, ok bool) {
	return func(err error) (string, string, bool) {
		var ie *imageError
		if !errors.As(err, &ie) {
			return "", "", false
		}
		if !strings.Contains(msg, "%s") {
			return "", msg, true
		}
		return "", fmt.Sprintf(msg, ie.id), true
	}
}

// transition is the message of a refused status change: the store's own.
func transition(err error) (typ, msg string, ok bool) {
	var se *imagedb.StatusError
	if !errors.As(err, &se) {
		return "", "", false
	}
	return "", se.Error(), true
}
