package compute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/policy"
	"github.com/cellcloud/cellcloud/internal/vmstate"
	"github.com/cellcloud/cellcloud/internal/wire"
)

func (a *API) serverActionRoutes() {
	a.mux.HandleFunc("POST /v2.1/servers/{id}/action", a.auth("", a.serverAction))
	a.mux.HandleFunc("GET /v2.1/servers/{id}/os-instance-actions", a.auth("os_compute_api:os-instance-actions:list", a.listInstanceActions))
	a.mux.HandleFunc("GET /v2.1/servers/{id}/os-instance-actions/{request_id}", a.auth("os_compute_api:os-instance-actions:show", a.showInstanceAction))
	a.serverExtraRoutes()
	a.mux.HandleFunc("GET /v2.1/servers/{id}/ips", a.auth("os_compute_api:ips:index", a.listIPs))
	a.mux.HandleFunc("GET /v2.1/servers/{id}/ips/{network}", a.auth("os_compute_api:ips:show", a.showIPs))
}

// hostActions maps the body key of POST /servers/{id}/action to the cell
// action (a key of vmstate.Actions) for the actions a compute cell carries
// out on the instance's host.
var hostActions = map[string]string{
	"os-stop": "stop", "os-start": "start", "pause": "pause", "unpause": "unpause",
	"suspend": "suspend", "resume": "resume", "unrescue": "unrescue",
	"confirmResize": "confirm_resize", "revertResize": "revert_resize", "shelve": "shelve", "unshelve": "unshelve",
}

// serverAction is POST /servers/{id}/action: one key names the action.
func (a *API) serverAction(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		a.fail(w, r, &httpError{http.StatusRequestEntityTooLarge, "Request is too large."})
		return
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(b, &body); err != nil || body == nil {
		a.fail(w, r, bad("Malformed request body"))
		return
	}
	if len(body) != 1 {
		a.fail(w, r, bad("There is either no action or more than one action in the request body"))
		return
	}
	var key string
	var arg json.RawMessage
	for k, v := range body {
		key, arg = k, v
	}
	in, err := a.loadServer(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Nova checks the action's rule on the server's project once the
	// server is found (another project's server is a 404 first).
	if rule, ok := actionRules[key]; ok {
		if err := a.authorize(r.Context(), rule, policy.Target{"project_id": in.ProjectID, "user_id": in.UserID}); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	switch key {
	case "reboot":
		var p struct {
			Type string `json:"type"`
		}
		if err := strictDecode(arg, &p); err != nil || (strings.ToUpper(p.Type) != "SOFT" && strings.ToUpper(p.Type) != "HARD") {
			a.fail(w, r, bad("Invalid input for field/attribute type. Value: %s. 'type' must be one of 'SOFT', 'HARD'", p.Type))
			return
		}
		act := "reboot_soft"
		if strings.ToUpper(p.Type) == "HARD" {
			act = "reboot_hard"
		}
		a.startAction(w, r, in, act, nil, nil)
	case "os-resetState":
		var p wire.ResetState
		if err := strictDecode(arg, &p); err != nil || (p.State != vmstate.Active && p.State != vmstate.Error) {
			a.fail(w, r, bad("Invalid input for field/attribute state. Value: %s. '%s' is not one of ['active', 'error']", p.State, p.State))
			return
		}
		a.resetState(w, r, in, p)
	case "rescue":
		var p struct {
			AdminPass      string `json:"adminPass"`
			RescueImageRef string `json:"rescue_image_ref"`
		}
		if !isNull(arg) {
			if err := strictDecode(arg, &p); err != nil {
				a.fail(w, r, bad("Invalid input for field/attribute rescue: %v", err))
				return
			}
		}
		pass := p.AdminPass
		if pass == "" {
			pass = randomString(12)
		}
		a.startAction(w, r, in, "rescue", nil, map[string]any{"adminPass": pass})
	case "os-getConsoleOutput":
		a.consoleOutput(w, r, in, arg)
	case "resize":
		a.resize(w, r, in, arg)
	case "migrate":
		if !isNull(arg) {
			var p struct {
				Host *string `json:"host"`
			}
			if err := strictDecode(arg, &p); err != nil || !apiVersion(r.Context()).AtLeast(Version{2, 56}) {
				a.fail(w, r, bad("Invalid input for field/attribute migrate. Value: %s. %s is not of type 'null'", arg, arg))
				return
			}
			if p.Host != nil {
				a.fail(w, r, bad("Choosing the destination host of a migration is not supported; leave host out and the scheduler picks one"))
				return
			}
		}
		a.startAction(w, r, in, "migrate", nil, nil)
	case "rebuild":
		// rebuild renames before it starts the action: refuse a locked
		// server first, so that nothing is written.
		if err := a.checkLocked(r.Context(), in); err != nil {
			a.fail(w, r, err)
			return
		}
		a.rebuild(w, r, in, arg)
	case "lock":
		a.lockServer(w, r, in)
	case "unlock":
		a.unlockServer(w, r, in)
	case "createImage":
		a.createImage(w, r, in, arg)
	default:
		act, ok := hostActions[key]
		if !ok {
			a.fail(w, r, bad("Invalid input for field/attribute. Additional properties are not allowed ('%s' was unexpected)", key))
			return
		}
		// unshelve takes an object from 2.77 (availability_zone); null or {} before.
		if !isNull(arg) && string(arg) != "{}" {
			a.fail(w, r, bad("Invalid input for field/attribute %s. Value: %s. %s is not of type 'null'", key, arg, arg))
			return
		}
		a.startAction(w, r, in, act, nil, nil)
	}
}

// startAction checks the action against the API cell's copy, sets its task
// state there, and sends it to the instance's cell, in one transaction.
// It answers 202, or 200 with body when one is given (rescue's adminPass).
func (a *API) startAction(w http.ResponseWriter, r *http.Request, in *apidb.Instance, act string, params json.RawMessage, body any) {
	a.startActionWith(w, r, in, act, params, body, nil)
}

// startActionWith is startAction with extra writes to the API cell's copy
// in the same transaction, once the action is known to be allowed.
func (a *API) startActionWith(w http.ResponseWriter, r *http.Request, in *apidb.Instance, act string, params json.RawMessage, body any,
	extra func(ctx context.Context, tx *db.Tx) error) {
	ctx := r.Context()
	c := caller(ctx)
	spec := vmstate.Actions[act]
	err := a.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		// A locked server refuses every action to non-admins, before its
		// state is looked at (Nova's check_instance_lock).
		if err := a.checkLocked(ctx, cur); err != nil {
			return err
		}
		if err := spec.Check(cur.UUID, cur.VMState, cur.TaskState); err != nil {
			return &httpError{http.StatusConflict, err.Error()}
		}
		if cur.Cell == "" {
			return &httpError{http.StatusConflict, fmt.Sprintf("Instance %s is not ready yet", cur.UUID)}
		}
		if err := apidb.SetTaskState(ctx, tx, cur.UUID, spec.Task, a.cfg.Now()); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(ctx, tx); err != nil {
				return err
			}
		}
		return a.cfg.Sender.Send(ctx, tx, cur.Cell, wire.MethodInstanceAction, requestID(ctx), &wire.InstanceAction{
			UUID: cur.UUID, Action: act, Params: params, UserID: c.UserID, ProjectID: c.ProjectID})
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if body != nil {
		writeJSON(w, http.StatusOK, body)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// resetState is os-resetState: allowed from any state, carried out by the
// instance's cell (or here, for an instance no cell holds).
func (a *API) resetState(w http.ResponseWriter, r *http.Request, in *apidb.Instance, p wire.ResetState) {
	ctx := r.Context()
	c := caller(ctx)
	params, _ := json.Marshal(p)
	err := a.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if cur.Cell == "" {
			return &httpError{http.StatusConflict, fmt.Sprintf("Instance %s is not in a cell; it cannot be reset", cur.UUID)}
		}
		return a.cfg.Sender.Send(ctx, tx, cur.Cell, wire.MethodInstanceAction, requestID(ctx), &wire.InstanceAction{
			UUID: cur.UUID, Action: "reset_state", Params: params, UserID: c.UserID, ProjectID: c.ProjectID})
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// consoleOutput is os-getConsoleOutput, answered by the instance's cell.
func (a *API) consoleOutput(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	var p struct {
		Length json.RawMessage `json:"length"`
	}
	if err := strictDecode(arg, &p); err != nil {
		a.fail(w, r, bad("Invalid input for field/attribute os-getConsoleOutput: %v", err))
		return
	}
	length := 0
	if len(p.Length) > 0 && !isNull(p.Length) {
		// Nova accepts an integer or a string holding one; -1 means all.
		var n int
		var s string
		if err := json.Unmarshal(p.Length, &n); err != nil {
			if json.Unmarshal(p.Length, &s) != nil {
				a.fail(w, r, bad("Invalid input for field/attribute length. Value: %s. is not of type 'integer'", p.Length))
				return
			}
			v, err := strconv.Atoi(s)
			if err != nil {
				a.fail(w, r, bad("Invalid input for field/attribute length. Value: %s. is not of type 'integer'", p.Length))
				return
			}
			n = v
		}
		if n < -1 {
			a.fail(w, r, bad("Invalid input for field/attribute length. Value: %d. %d is less than the minimum of -1", n, n))
			return
		}
		length = max(n, 0)
	}
	if in.Cell == "" {
		a.fail(w, r, &httpError{http.StatusConflict, fmt.Sprintf("Instance %s is not ready yet", in.UUID)})
		return
	}
	var out wire.ConsoleOutputReply
	err := a.cfg.Caller.Call(r.Context(), in.Cell, wire.MethodConsoleOutput, requestID(r.Context()), &wire.ConsoleOutput{UUID: in.UUID, Length: length}, &out)
	if err != nil {
		a.fail(w, r, cellError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"output": out.Output})
}

// cellError turns a cell's answer into the API's error.
func cellError(err error) error {
	var we *wire.Error
	if !errors.As(err, &we) {
		return err
	}
	switch we.Code {
	case wire.CodeConflict:
		return &httpError{http.StatusConflict, we.Message}
	case wire.CodeNotFound:
		return &httpError{http.StatusNotFound, we.Message}
	case wire.CodeTimeout, wire.CodeNoRoute:
		return &httpError{http.StatusServiceUnavailable, "The cell of this instance did not answer: " + we.Message}
	}
	return err
}

// listInstanceActions is GET /servers/{id}/os-instance-actions, answered by
// the instance's cell.
func (a *API) listInstanceActions(w http.ResponseWriter, r *http.Request) {
	recs, in, err := a.instanceActions(r, "")
	if err != nil {
		a.fail(w, r, err)
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
			a.fail(w, r, err)
			return
		}
		var since, before time.Time
		for _, p := range []struct {
			name string
			at   *time.Time
		}{{"changes-since", &since}, {"changes-before", &before}} {
			vs := q[p.name]
			if len(vs) > 1 {
				a.fail(w, r, bad("Invalid input for query parameters %s. Value: %s. %s is too long", p.name, pyList(vs), pyList(vs)))
				return
			}
			if len(vs) == 0 || vs[0] == "" {
				continue
			}
			t, ok := parseISOTime(vs[0])
			if !ok {
				a.fail(w, r, bad("Invalid input for query parameters %s. Value: %s. '%s' is not a 'date-time'", p.name, vs[0], vs[0]))
				return
			}
			*p.at = t
		}
		if !since.IsZero() && !before.IsZero() && before.Before(since) {
			a.fail(w, r, bad("The value of changes-since must be less than or equal to changes-before."))
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
				a.fail(w, r, bad("Marker %s could not be found.", m))
				return
			}
			recs = recs[i+1:]
		}
		if s := q.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				a.fail(w, r, bad("Invalid input for query parameters limit. Value: %s. '%s' is not a 'integer'", s, s))
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
		resp["links"] = []map[string]string{{"rel": "next", "href": baseURL(r) + next.RequestURI()}}
	}
	writeJSON(w, http.StatusOK, resp)
}

// showInstanceAction is GET /servers/{id}/os-instance-actions/{request_id}.
func (a *API) showInstanceAction(w http.ResponseWriter, r *http.Request) {
	rid := r.PathValue("request_id")
	recs, in, err := a.instanceActions(r, rid)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(recs) == 0 {
		a.fail(w, r, &httpError{http.StatusNotFound, fmt.Sprintf("Action %s on instance %s could not be found.", rid, in.UUID)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"instanceAction": actionView(r, in, recs[0], true)})
}

func (a *API) instanceActions(r *http.Request, rid string) ([]wire.ActionRecord, *apidb.Instance, error) {
	// From 2.21 the actions of a deleted server can be read too.
	in, err := a.loadServerMaybeDeleted(r, apiVersion(r.Context()).AtLeast(Version{2, 21}))
	if err != nil {
		return nil, nil, err
	}
	if in.Cell == "" {
		return nil, in, nil
	}
	var recs []wire.ActionRecord
	err = a.cfg.Caller.Call(r.Context(), in.Cell, wire.MethodInstanceActions, requestID(r.Context()),
		&wire.InstanceActionsQuery{UUID: in.UUID, RequestID: rid}, &recs)
	if err != nil {
		return nil, in, cellError(err)
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
	admin := caller(r.Context()).Admin
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

func isNull(b json.RawMessage) bool { return len(b) == 0 || string(b) == "null" }

// strictDecode decodes an object, refusing unknown fields.
func strictDecode(b json.RawMessage, v any) error {
	if isNull(b) {
		return errors.New("a body is required")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
