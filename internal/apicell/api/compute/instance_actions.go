package compute

import (
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// instanceActionsHandler is os-instance-actions: a server's actions and
// their events, answered by the instance's cell.
type instanceActionsHandler struct {
	*base
	servers *serversHandler
}

func (h *instanceActionsHandler) register(rt *router) {
	rt.handle("GET /v2.1/servers/{id}/os-instance-actions", "os_compute_api:os-instance-actions:list", h.listInstanceActions)
	rt.handle("GET /v2.1/servers/{id}/os-instance-actions/{request_id}", "os_compute_api:os-instance-actions:show", h.showInstanceAction)
}

// listInstanceActions is GET /servers/{id}/os-instance-actions, answered by
// the instance's cell.
func (h *instanceActionsHandler) listInstanceActions(w http.ResponseWriter, r *http.Request) {
	recs, in, err := h.instanceActions(r, "")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// 2.58: limit, marker (a request id) and changes-since, newest first.
	q := r.URL.Query()
	limit := 0
	if apiVersion(r.Context()).AtLeast(Version{2, 58}) {
		allowed := []string{"limit", "marker", "changes-since"}
		if atLeast(r, 66) {
			allowed = append(allowed, "changes-before")
		}
		if err := checkQuery(q, allowed...); err != nil {
			h.fail(w, r, err)
			return
		}
		var since, before time.Time
		for _, p := range []struct {
			name string
			at   *time.Time
		}{{"changes-since", &since}, {"changes-before", &before}} {
			vs := q[p.name]
			if len(vs) > 1 {
				h.fail(w, r, bad("Invalid input for query parameters %s. Value: %s. %s is too long", p.name, pyList(vs), pyList(vs)))
				return
			}
			if len(vs) == 0 || vs[0] == "" {
				continue
			}
			t, ok := parseISOTime(vs[0])
			if !ok {
				h.fail(w, r, bad("Invalid input for query parameters %s. Value: %s. '%s' is not a 'date-time'", p.name, vs[0], vs[0]))
				return
			}
			*p.at = t
		}
		if !since.IsZero() && !before.IsZero() && before.Before(since) {
			h.fail(w, r, bad("The value of changes-since must be less than or equal to changes-before."))
			return
		}
		kept := recs[:0]
		for _, rec := range recs {
			if (since.IsZero() || !rec.UpdatedAt.Before(since)) && (before.IsZero() || !rec.UpdatedAt.After(before)) {
				kept = append(kept, rec)
			}
		}
		recs = kept
		if m := q.Get("marker"); m != "" {
			i := slices.IndexFunc(recs, func(rec wire.ActionRecord) bool { return rec.RequestID == m })
			if i < 0 {
				h.fail(w, r, bad("Marker %s could not be found.", m))
				return
			}
			recs = recs[i+1:]
		}
		if s := q.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				h.fail(w, r, bad("Invalid input for query parameters limit. Value: %s. '%s' is not a 'integer'", s, s))
				return
			}
			limit = n
		}
	}
	more := limit > 0 && len(recs) > limit
	if more {
		recs = recs[:limit]
	}
	out := make([]any, 0, len(recs))
	for _, rec := range recs {
		out = append(out, actionView(r, in, rec, false))
	}
	resp := map[string]any{"instanceActions": out}
	if more {
		next := *r.URL
		nq := next.Query()
		nq.Set("marker", recs[len(recs)-1].RequestID)
		next.RawQuery = nq.Encode()
		resp["links"] = []map[string]string{{"rel": "next", "href": httpkit.Origin(r) + next.RequestURI()}}
	}
	httpkit.WriteJSON(w, http.StatusOK, resp)
}

// showInstanceAction is GET /servers/{id}/os-instance-actions/{request_id}.
func (h *instanceActionsHandler) showInstanceAction(w http.ResponseWriter, r *http.Request) {
	rid := r.PathValue("request_id")
	recs, in, err := h.instanceActions(r, rid)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if len(recs) == 0 {
		h.fail(w, r, notFound("Action %s on instance %s could not be found.", rid, in.UUID))
		return
	}
	v := actionView(r, in, recs[0], true)
	// 2.84: each event's details, by the events:details rule on the
	// server's project (admins by default).
	if atLeast(r, v284) && h.authorize(r.Context(), policyEventDetails, policy.Target{"project_id": in.ProjectID}) == nil {
		for i, ev := range v["events"].([]any) {
			ev.(map[string]any)["details"] = eventDetails(recs[0].Events[i])
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"instanceAction": v})
}

// v284 adds details to the events of an instance action.
const v284 = 84

// policyEventDetails is the rule that shows an event's details (2.84).
const policyEventDetails = "os_compute_api:os-instance-actions:events:details"

// eventDetails is Nova's details of an event: for a failed one, the fault
// message (Nova's exception_to_dict message, cut to 255 bytes as
// safe_truncate does); null otherwise. The cells record a failure's error
// message as the event's traceback and keep no other text, so that text
// is both (Nova's traceback would be the Python traceback).
func eventDetails(e wire.EventRecord) any {
	if e.Result != "Error" || e.Traceback == "" {
		return nil
	}
	return truncateUTF8(e.Traceback, 255)
}

// truncateUTF8 is s cut to at most n bytes without splitting a character
// (oslo's safe_truncate).
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (h *instanceActionsHandler) instanceActions(r *http.Request, rid string) ([]wire.ActionRecord, *apidb.Instance, error) {
	// From 2.21 the actions of a deleted server can be read too.
	in, err := h.servers.loadServerMaybeDeleted(r, apiVersion(r.Context()).AtLeast(Version{2, 21}))
	if err != nil {
		return nil, nil, err
	}
	if in.Cell == "" {
		return nil, in, nil
	}
	var recs []wire.ActionRecord
	if err := h.callInstanceCell(r, in, wire.MethodInstanceActions, &wire.InstanceActionsQuery{UUID: in.UUID, RequestID: rid}, &recs); err != nil {
		return nil, in, err
	}
	return recs, in, nil
}

func actionView(r *http.Request, in *apidb.Instance, rec wire.ActionRecord, events bool) map[string]any {
	var msg any
	if rec.Message != "" {
		msg = rec.Message
	}
	v := map[string]any{
		"action": rec.Action, "instance_uuid": rec.UUID, "request_id": rec.RequestID, "user_id": rec.UserID,
		"project_id": rec.ProjectID, "start_time": isoMicro(rec.StartTime), "message": msg,
	}
	if apiVersion(r.Context()).AtLeast(Version{2, 58}) {
		v["updated_at"] = isoMicro(rec.UpdatedAt)
	}
	if !events {
		return v
	}
	admin := httpkit.CallerFrom(r.Context()).Admin
	v262 := atLeast(r, 62)
	evs := make([]any, 0, len(rec.Events))
	for _, e := range rec.Events {
		ev := map[string]any{"event": e.Event, "start_time": isoMicro(e.StartTime), "finish_time": isoMicro(e.FinishTime), "result": nullable(e.Result)}
		if admin {
			ev["traceback"] = nullable(e.Traceback)
		}
		// 2.62: the event's host, hashed with the action's project as a
		// server's hostId is, for everyone; the host itself for admins.
		if v262 {
			project := rec.ProjectID
			if project == "" {
				project = in.ProjectID
			}
			ev["hostId"] = hostID(project, e.Host)
			if admin {
				ev["host"] = e.Host
			}
		}
		evs = append(evs, ev)
	}
	v["events"] = evs
	return v
}
