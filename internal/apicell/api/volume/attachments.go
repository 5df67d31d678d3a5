package volume

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
)

// attachmentsHandler is Cinder's attachments API (3.27+): the summary
// and detailed lists and one attachment, read from the mirror of the
// volumes' attachments (voldb); create, update, delete and os-complete
// (3.44), made by the volume's cell (attachments_write.go), when the
// API can call the cells (Config.Calls; else those routes are not
// registered: Cinder's 404 for what no route matches).
type attachmentsHandler struct{ *base }

func (h *attachmentsHandler) register(rt *router) {
	if !h.volumesServed() {
		return
	}
	rt.handle("GET /v3/{project_id}/attachments", "", h.versioned(h.list(false)))
	rt.handle("GET /v3/{project_id}/attachments/detail", "", h.versioned(h.list(true)))
	rt.handle("GET /v3/{project_id}/attachments/{id}", "", h.versioned(h.show))
	if h.cfg.Calls == nil {
		return
	}
	rt.handle("POST /v3/{project_id}/attachments", "", h.versioned(h.create))
	rt.handle("PUT /v3/{project_id}/attachments/{id}", "", h.versioned(h.update))
	rt.handle("DELETE /v3/{project_id}/attachments/{id}", "", h.versioned(h.delete))
	rt.handle("POST /v3/{project_id}/attachments/{id}/action", "", h.versioned(h.action))
}

// versioned answers Cinder's 404 below 3.27, the attachments API's
// microversion (VersionNotFoundForAPIMethod).
func (h *attachmentsHandler) versioned(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !requestVersion(r.Context()).atLeast(3, 27) {
			h.fail(w, r, notFound("The resource could not be found."))
			return
		}
		next(w, r)
	}
}

// attachmentTime is the view builder's _normalize: the time, or "" when
// unset.
func attachmentTime(a *voldb.Attachment) any {
	if a.AttachedAt.IsZero() {
		return ""
	}
	return cinderTime(a.AttachedAt)
}

// attachmentSummary is Cinder's summary view of an attachment.
func attachmentSummary(a *voldb.Attachment) map[string]any {
	return map[string]any{"id": a.ID, "status": a.Status, "instance": nullable(a.InstanceUUID), "volume_id": a.VolumeID}
}

// attachmentDetail is Cinder's detailed view: the summary with the times,
// the mode and the connection info (that of an attachment of this API;
// the mirror holds none of the Compute API's: null).
func attachmentDetail(a *voldb.Attachment) map[string]any {
	d := attachmentSummary(a)
	d["attached_at"] = attachmentTime(a)
	d["detached_at"] = ""
	d["attach_mode"] = a.Mode
	d["connection_info"] = nil
	if a.ConnectionInfo != nil {
		d["connection_info"] = a.ConnectionInfo
	}
	return d
}

// attachmentFilterKeys are the filters of the attachments list
// (resource_filters.json, and the controller's allowed_filters).
var attachmentFilterKeys = []string{"volume_id", "status", "instance_id", "attach_status"}

func (h *attachmentsHandler) list(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		c := httpkit.CallerFrom(ctx)
		lp, err := parseList(r, voldb.ValidAttachmentSortKey)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		filters := lp.filters
		if !c.Admin {
			// Cinder's general filtering: from 3.31 an unknown filter is
			// a 400, before it is dropped (all_tenants too: a member's
			// list is its project's).
			var invalid []string
			for k := range filters {
				if !slices.Contains(attachmentFilterKeys, k) {
					invalid = append(invalid, k)
				}
			}
			if len(invalid) > 0 && requestVersion(ctx).atLeast(3, 31) {
				slices.Sort(invalid)
				h.fail(w, r, badRequest("Invalid filters %s are found in query options.", strings.Join(invalid, ",")))
				return
			}
			for _, k := range invalid {
				delete(filters, k)
			}
		}
		f := voldb.AttachmentFilter{ProjectID: c.ProjectID, VolumeID: filters["volume_id"], InstanceUUID: filters["instance_id"]}
		if c.Admin && r.URL.Query().Has("all_tenants") {
			f.ProjectID = ""
		}
		f.Status = filters["attach_status"]
		if s := filters["status"]; s != "" {
			f.Status = s
		}
		atts, err := voldb.ListAttachments(ctx, h.cfg.DB, f, lp.page)
		if err != nil {
			h.fail(w, r, listError(err, lp.page.Marker))
			return
		}
		out := make([]map[string]any, 0, len(atts))
		for _, a := range atts {
			if detail {
				out = append(out, attachmentDetail(a))
			} else {
				out = append(out, attachmentSummary(a))
			}
		}
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"attachments": out})
	}
}

func (h *attachmentsHandler) show(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	id := r.PathValue("id")
	a, err := voldb.GetAttachment(ctx, h.cfg.DB, id)
	if errors.Is(err, voldb.ErrAttachmentNotFound) || (err == nil && !c.Admin && a.ProjectID != c.ProjectID) {
		err = notFound("Volume attachment could not be found with filter: attachment_id = %s.", id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"attachment": attachmentDetail(a)})
}
