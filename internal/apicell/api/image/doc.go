// Package image serves the subset of the OpenStack Image API v2 (Glance)
// that clients need before a boot: images (list, show, create, update by
// JSON patch, delete), their tags, their data (upload and download), the
// image schemas and the version document. Records live in the API cell's
// database (package imagedb); data lives in a local file store directory,
// one file per image, written to a temporary file and renamed into place.
//
// The handler serves paths without a mount prefix ("/v2/images"); the node
// mounts it under "/image" as devstack does. Links in bodies ("self",
// "file", "next", ...) are relative to the mount point, as Glance's are;
// the Location header and the version document's links are absolute and
// include it.
//
// Behaviour follows Glance's v2 API: its status codes, its JSON error shape
// ({"message", "code", "title"}), its default visibility ("shared"), its
// policies without image members (admins and owners change an image; only
// admins make one public or change its owner), its quotas (128 properties,
// 128 tags; 413), and its upload rules (queued → saving → active, formats
// set first, 409 on any other status, 410 when the image is deleted during
// the upload). An upload that fails for any reason puts the image back to
// queued and leaves no file. At start, New puts images left saving by a
// stopped process back to queued and removes data files no active image
// owns.
//
// Not implemented: image members (so "shared" images are visible to their
// owner only), interoperable import and staging, multiple stores and
// locations (location operations answer 403 as Glance does with
// show_multiple_locations off), deactivate/reactivate, the image cache API,
// tasks and metadata definitions. Ids are stored lower case. An empty name
// or owner is shown as null. The file store belongs to one API process.
package image
