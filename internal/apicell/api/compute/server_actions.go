package compute

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// serverActionFunc carries out one action of POST /servers/{id}/action on
// a server found and authorized for it; arg is the value of the body's key.
type serverActionFunc func(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage)

// actionsHandler is POST /servers/{id}/action: it reads the body, finds
// the server, checks the action's rule, and carries out the action, or
// hands it to the room that registered it (router.action).
type actionsHandler struct {
	*base
	servers *serversHandler
	// byKey are the actions other rooms registered, by body key.
	byKey map[string]serverActionFunc
}

func (h *actionsHandler) register(rt *router) {
	rt.handle("POST /v2.1/servers/{id}/action", "", h.serverAction)
	rt.action("reboot", h.reboot)
	rt.action("os-resetState", h.resetState)
	rt.action("rescue", h.rescue)
	rt.action("os-getConsoleOutput", h.consoleOutput)
	rt.action("migrate", h.migrate)
}

// hostActions maps the body key of POST /servers/{id}/action to the cell
// action (a key of vmstate.Actions) for the actions a compute cell carries
// out on the instance's host.
var hostActions = map[string]string{
	"os-stop": "stop", "os-start": "start", "pause": "pause", "unpause": "unpause",
	"suspend": "suspend", "resume": "resume", "unrescue": "unrescue",
	"confirmResize": "confirm_resize", "revertResize": "revert_resize",
}

// serverAction is POST /servers/{id}/action: one key names the action,
// carried out by the function registered for it (router.action), or, for
// the actions of hostActions, by the instance's cell.
func (h *actionsHandler) serverAction(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		h.fail(w, r, tooLarge())
		return
	}
	// Nova finds the action's method before it looks at the server: a body
	// that is not one key is "Malformed request body", a key it has no
	// method for "There is no such action", both 400 whatever the id.
	var body map[string]json.RawMessage
	if err := json.Unmarshal(b, &body); err != nil || len(body) != 1 {
		h.fail(w, r, bad("Malformed request body"))
		return
	}
	var key string
	var arg json.RawMessage
	for k, v := range body {
		key, arg = k, v
	}
	do, registered := h.byKey[key]
	act, onHost := hostActions[key]
	if !registered && !onHost {
		h.fail(w, r, bad("There is no such action: %s", key))
		return
	}
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Nova checks the action's rule on the server's project once the
	// server is found (another project's server is a 404 first).
	if rule, ok := actionRules[key]; ok {
		if err := h.authorize(r.Context(), rule, policy.Target{"project_id": in.ProjectID, "user_id": in.UserID}); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if registered {
		do(w, r, in, arg)
		return
	}
	if !isNull(arg) && string(arg) != "{}" {
		h.fail(w, r, bad("Invalid input for field/attribute %s. Value: %s. %s is not of type 'null'", key, arg, arg))
		return
	}
	h.startAction(w, r, in, act, nil, nil)
}

// noContentActions are the cell actions Nova answers with 204 rather than
// 202 (its @wsgi.response on the action's method).
var noContentActions = map[string]bool{"confirm_resize": true}

// startAction checks the action against the API cell's copy, sets its task
// state there, and sends it to the instance's cell, in one transaction.
// It answers 202 (204 for noContentActions), or 200 with body when one is
// given (rescue's adminPass).
func (h *actionsHandler) startAction(w http.ResponseWriter, r *http.Request, in *apidb.Instance, act string, params json.RawMessage, body any) {
	h.startActionWith(w, r, in, act, params, body, nil)
}

// startActionWith is startAction with extra writes to the API cell's copy
// in the same transaction, once the action is known to be allowed.
func (h *actionsHandler) startActionWith(w http.ResponseWriter, r *http.Request, in *apidb.Instance, act string, params json.RawMessage, body any,
	extra func(ctx context.Context, tx *db.Tx) error) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	spec := vmstate.Actions[act]
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		// A locked server refuses every action to non-admins, before its
		// state is looked at (Nova's check_instance_lock).
		if err := checkLocked(ctx, cur); err != nil {
			return err
		}
		if err := spec.Check(cur.UUID, cur.VMState, cur.TaskState); err != nil {
			return fault(http.StatusConflict, err.Error())
		}
		if cur.Cell == "" {
			return conflict("Instance %s is not ready yet", cur.UUID)
		}
		if err := apidb.SetTaskState(ctx, tx, cur.UUID, spec.Task, h.cfg.Now()); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(ctx, tx); err != nil {
				return err
			}
		}
		return h.cfg.Sender.Send(ctx, tx, cur.Cell, wire.MethodInstanceAction, httpkit.RequestID(ctx), &wire.InstanceAction{
			UUID: cur.UUID, Action: act, Params: params, UserID: c.UserID, ProjectID: c.ProjectID})
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if body != nil {
		httpkit.WriteJSON(w, http.StatusOK, body)
		return
	}
	if noContentActions[act] {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// reboot is the reboot action: SOFT or HARD.
func (h *actionsHandler) reboot(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	var p struct {
		Type string `json:"type"`
	}
	if err := strictDecode(arg, &p); err != nil || (strings.ToUpper(p.Type) != "SOFT" && strings.ToUpper(p.Type) != "HARD") {
		h.fail(w, r, bad("Invalid input for field/attribute type. Value: %s. 'type' must be one of 'SOFT', 'HARD'", p.Type))
		return
	}
	act := "reboot_soft"
	if strings.ToUpper(p.Type) == "HARD" {
		act = "reboot_hard"
	}
	h.startAction(w, r, in, act, nil, nil)
}

// rescue is the rescue action; it answers with the admin password (the
// one given, or a new one).
func (h *actionsHandler) rescue(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	var p struct {
		AdminPass      string `json:"adminPass"`
		RescueImageRef string `json:"rescue_image_ref"`
	}
	if !isNull(arg) {
		if err := strictDecode(arg, &p); err != nil {
			h.fail(w, r, bad("Invalid input for field/attribute rescue: %v", err))
			return
		}
	}
	pass := p.AdminPass
	if pass == "" {
		pass = randomString(12)
	}
	allowBFV := atLeast(r, 87)
	h.startActionWith(w, r, in, "rescue", nil, map[string]any{"adminPass": pass}, func(ctx context.Context, tx *db.Tx) error {
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		vb, err := isVolumeBacked(ctx, tx, cur)
		if err != nil {
			return err
		}
		if !vb {
			return checkVolumesInUseConflict(ctx, tx, cur)
		}
		return checkRescueVolumeBacked(ctx, tx, cur, p.RescueImageRef, allowBFV)
	})
}

// migrate is the migrate (cold migration) action: null, or from 2.56 an
// object whose host must be left out (the scheduler picks one).
func (h *actionsHandler) migrate(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	if !isNull(arg) {
		var p struct {
			Host *string `json:"host"`
		}
		if err := strictDecode(arg, &p); err != nil || !apiVersion(r.Context()).AtLeast(Version{2, 56}) {
			h.fail(w, r, bad("Invalid input for field/attribute migrate. Value: %s. %s is not of type 'null'", arg, arg))
			return
		}
		if p.Host != nil {
			h.fail(w, r, bad("Choosing the destination host of a migration is not supported; leave host out and the scheduler picks one"))
			return
		}
	}
	h.startAction(w, r, in, "migrate", nil, nil)
}

// consoleOutput is os-getConsoleOutput, answered by the instance's cell:
// the whole log, or its tail as Nova's compute manager cuts it
// (wire.TailConsole), cleaned as Nova's API cleans it (consoleText).
func (h *actionsHandler) consoleOutput(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	tail, err := consoleLength(arg)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if in.Cell == "" || in.Host == "" {
		h.fail(w, r, conflict("Instance %s is not ready", in.UUID))
		return
	}
	// The cell cuts a positive tail itself; 0 and the negative lengths
	// Nova's schema lets through are cut here, from the whole log.
	req := &wire.ConsoleOutput{UUID: in.UUID}
	if tail != nil && *tail > 0 {
		req.Length = *tail
	}
	var out wire.ConsoleOutputReply
	if err := h.callInstanceCell(r, in, wire.MethodConsoleOutput, req, &out); err != nil {
		h.fail(w, r, err)
		return
	}
	text := out.Output
	if tail != nil && *tail <= 0 {
		text = wire.TailConsole(text, *tail)
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"output": consoleText(text)})
}

// consoleLengthPattern is the pattern of Nova's schema for a length given
// as a string; Python's $ also matches before a final newline.
var consoleLengthPattern = regexp.MustCompile(`^-?[0-9]+\n?$`)

// consoleLength checks os-getConsoleOutput's body against Nova's schema:
// an object with at most length, which is null (the whole log), an
// integer of at least -1, or a string of digits (any sign: the minimum
// does not apply to strings). It returns the length, nil for the whole log.
func consoleLength(arg json.RawMessage) (*int, error) {
	const field = "os-getConsoleOutput"
	dec := json.NewDecoder(strings.NewReader(string(arg)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, bad("Malformed request body")
	}
	body, ok := v.(map[string]any)
	if !ok {
		return nil, invalid(field, v, "%s is not of type 'object'", pyRepr(v))
	}
	if err := noOtherKeys(body, field, "length"); err != nil {
		return nil, err
	}
	var n int
	switch l := body["length"].(type) {
	case nil:
		return nil, nil
	case json.Number:
		if strings.ContainsAny(l.String(), ".eE") {
			return nil, invalid("length", l, "%s is not of type 'integer', 'string', 'null'", pyRepr(l))
		}
		n = atoiClamped(l.String())
		if n < -1 {
			return nil, invalid("length", l, "%s is less than the minimum of -1", l)
		}
	case string:
		if !consoleLengthPattern.MatchString(l) {
			return nil, invalid("length", l, "%s does not match '^-?[0-9]+$'", pyRepr(l))
		}
		n = atoiClamped(strings.TrimSuffix(l, "\n"))
	default:
		return nil, invalid("length", l, "%s is not of type 'integer', 'string', 'null'", pyRepr(l))
	}
	return &n, nil
}

// atoiClamped is the integer s spells, clamped to an int's range (Python's
// integers have none; a tail longer than any log is the whole log).
func atoiClamped(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil && strings.HasPrefix(s, "-") {
		return math.MinInt
	}
	if err != nil {
		return math.MaxInt
	}
	return n
}

// consoleText is the log as Nova's API answers it: decoded as ASCII with
// each other byte replaced by U+FFFD (the compute manager), then without
// the control characters other than tab and newline (the API's filter).
func consoleText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			b.WriteRune(utf8.RuneError)
		case c <= 0x08 || (c >= 0x0b && c <= 0x1f):
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// actionRules are the rules of POST /servers/{id}/action by body key.
var actionRules = map[string]string{
	"reboot": "os_compute_api:servers:reboot", "resize": "os_compute_api:servers:resize",
	"confirmResize": "os_compute_api:servers:confirm_resize", "revertResize": "os_compute_api:servers:revert_resize",
	"rebuild": "os_compute_api:servers:rebuild", "createImage": "os_compute_api:servers:create_image",
	"os-start": "os_compute_api:servers:start", "os-stop": "os_compute_api:servers:stop",
	"pause": "os_compute_api:os-pause-server:pause", "unpause": "os_compute_api:os-pause-server:unpause",
	"suspend": "os_compute_api:os-suspend-server:suspend", "resume": "os_compute_api:os-suspend-server:resume",
	"rescue": "os_compute_api:os-rescue", "unrescue": "os_compute_api:os-unrescue",
	"shelve": "os_compute_api:os-shelve:shelve", "unshelve": "os_compute_api:os-shelve:unshelve", "shelveOffload": "os_compute_api:os-shelve:shelve_offload",
	"lock": "os_compute_api:os-lock-server:lock", "unlock": "os_compute_api:os-lock-server:unlock",
	"restore": "os_compute_api:os-deferred-delete:restore", "forceDelete": "os_compute_api:os-deferred-delete:force",
	"os-resetState": "os_compute_api:os-admin-actions:reset_state", "migrate": "os_compute_api:os-migrate-server:migrate",
	"os-getConsoleOutput": "os_compute_api:os-console-output",
	"addSecurityGroup":    "os_compute_api:os-security-groups:add", "removeSecurityGroup": "os_compute_api:os-security-groups:remove",
}
