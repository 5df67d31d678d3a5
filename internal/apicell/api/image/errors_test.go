package image

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
)

// TestErrorTable checks the table's answer to each store error about an
// image, in Glance's words, and that a store error that names no image
// (onImage) is left to the 500.
func TestErrorTable(t *testing.T) {
	const id = "3f6c9e1a-0000-4000-8000-000000000001"
	about := func(err error) error { return onImage(id, fmt.Errorf("image %s: %w", id, err)) }
	for _, c := range []struct {
		err    error
		status int
		msg    string
	}{
		{about(imagedb.ErrNotFound), http.StatusNotFound, "No image found with ID " + id},
		{about(imagedb.ErrMarker), http.StatusBadRequest, "No image found with ID " + id},
		{about(imagedb.ErrDuplicate), http.StatusConflict, "Image with identifier " + id + " already exists!"},
		{about(imagedb.ErrProtected), http.StatusForbidden, "Image " + id + " is protected and cannot be deleted."},
		{about(&imagedb.StatusError{ID: id, From: "active", To: "saving"}), http.StatusConflict,
			"Image status transition from active to saving is not allowed"},
		{about(imagedb.ErrNoFormats), http.StatusBadRequest, "Properties disk_format, container_format must be set prior to saving data."},
		{onImage(id, fmt.Errorf("%w: %w", errGoneDuringUpload, imagedb.ErrNotFound)), http.StatusGone,
			"Image " + id + " could not be found after upload. The image may have been deleted during the upload, cleaning up the chunks uploaded."},
		{fmt.Errorf("update: %w", imagedb.ErrStale), http.StatusConflict, "The image was changed by another request; try again."},
	} {
		f, ok := errorTable.Lookup(c.err)
		if !ok || f.Status != c.status || f.Message != c.msg {
			t.Errorf("%v: %+v, %v; want %d %q", c.err, f, ok, c.status, c.msg)
		}
	}
	for _, err := range []error{imagedb.ErrNotFound, imagedb.ErrDuplicate, &imagedb.StatusError{}, onImage(id, errors.New("disk I/O error"))} {
		if f, ok := errorTable.Lookup(err); ok {
			t.Errorf("%v: %+v; want no row (a 500)", err, f)
		}
	}
	if onImage(id, nil) != nil {
		t.Error("onImage(id, nil) is not nil")
	}
}
