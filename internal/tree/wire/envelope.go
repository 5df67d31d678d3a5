// Package wire is the message protocol between cells: the envelope every
// message travels in, the methods with their versions, their payloads, and
// the errors a receiver answers with. Changes to it are recorded in
// docs/protocol.md: methods are added, never changed in place.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/notfound"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
)

// Kind says how a message is routed.
type Kind string

// The message kinds.
const (
	// Targeted goes to one cell path, hop by hop.
	Targeted Kind = "targeted"
	// Broadcast goes to every cell up or down the tree within a hop limit.
	Broadcast Kind = "broadcast"
	// Response carries the answer to a message that wanted one, back to
	// the cell that asked (Target), hop by hop.
	Response Kind = "response"
)

// Direction of a broadcast (and, for information, of a targeted message).
type Direction string

// The directions.
const (
	Up   Direction = "up"
	Down Direction = "down"
)

// Envelope is what travels between cells. The payload is typed per method.
type Envelope struct {
	ID        string    `json:"id"`
	Method    string    `json:"method"`
	Version   string    `json:"version"`
	Kind      Kind      `json:"kind"`
	Direction Direction `json:"direction,omitempty"`
	// Target is the destination path (Targeted and Response).
	Target string `json:"target,omitempty"`
	// HopLimit bounds a broadcast: 1 reaches the neighbours only.
	HopLimit int `json:"hop_limit,omitempty"`
	// Route lists the cells the message has passed through, sender first.
	Route    []string  `json:"route"`
	Sender   string    `json:"sender"`
	Deadline time.Time `json:"deadline,omitzero"`
	// RequestID is the API request that caused the message, so one request
	// can be followed through every cell's log.
	RequestID    string `json:"request_id,omitempty"`
	WantResponse bool   `json:"want_response,omitempty"`
	// InReplyTo is the ID of the message a response answers.
	InReplyTo string `json:"in_reply_to,omitempty"`
	// Results are a response's answers, one per cell that answered.
	Results []Result `json:"results,omitempty"`
	// Missing lists the cells that did not answer a gathered broadcast
	// before its deadline.
	Missing []string        `json:"missing,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Result is one cell's answer.
type Result struct {
	Cell    string          `json:"cell"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// MaxSize bounds an encoded envelope (the broker's default max payload).
const MaxSize = 1 << 20

// Decode parses and checks an envelope. A malformed envelope is an error
// wrapping ErrBadMessage; nothing about it is trusted.
func Decode(b []byte) (*Envelope, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes is over the %d byte limit", ErrBadMessage, len(b), MaxSize)
	}
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if err := e.Check(); err != nil {
		return nil, err
	}
	return &e, nil
}

// Check validates the envelope's routing fields.
func (e *Envelope) Check() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(f, a...))
	}
	if e.ID == "" {
		return bad("no id")
	}
	if e.Method == "" {
		return bad("message %s has no method", e.ID)
	}
	if _, _, err := ParseVersion(e.Version); err != nil {
		return bad("message %s: %v", e.ID, err)
	}
	if err := cellpath.Validate(e.Sender); err != nil {
		return bad("message %s: sender: %v", e.ID, err)
	}
	if len(e.Route) == 0 || len(e.Route) > 2*cellpath.MaxDepth+2 {
		return bad("message %s: route has %d cells", e.ID, len(e.Route))
	}
	for _, p := range e.Route {
		if err := cellpath.Validate(p); err != nil {
			return bad("message %s: route: %v", e.ID, err)
		}
	}
	switch e.Kind {
	case Targeted, Response:
		if err := cellpath.Validate(e.Target); err != nil {
			return bad("message %s: target: %v", e.ID, err)
		}
		if e.Kind == Response && e.InReplyTo == "" {
			return bad("response %s answers no message", e.ID)
		}
	case Broadcast:
		if e.Direction != Up && e.Direction != Down {
			return bad("broadcast %s has direction %q", e.ID, e.Direction)
		}
		if e.HopLimit < 0 || e.HopLimit > cellpath.MaxDepth {
			return bad("broadcast %s has hop limit %d", e.ID, e.HopLimit)
		}
	default:
		return bad("message %s has kind %q", e.ID, e.Kind)
	}
	return nil
}

// Last is the cell the message came from most recently.
func (e *Envelope) Last() string { return e.Route[len(e.Route)-1] }

// ParseVersion splits "major.minor".
func ParseVersion(v string) (major, minor int, err error) {
	a, b, ok := strings.Cut(v, ".")
	if !ok {
		return 0, 0, fmt.Errorf("version %q is not major.minor", v)
	}
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return 0, 0, fmt.Errorf("version %q is not major.minor", v)
	}
	return major, minor, nil
}

// Code is a wire error code.
type Code string

// The error codes a cell answers with.
const (
	CodeUnknownMethod      Code = "unknown_method"
	CodeUnsupportedVersion Code = "unsupported_version"
	CodeBadMessage         Code = "bad_message"
	CodeNoRoute            Code = "no_route"
	CodeNotFound           Code = "not_found"
	CodeTimeout            Code = "timeout"
	CodeConflict           Code = "conflict"
	CodeGone               Code = "gone"
	CodeInternal           Code = "internal"
	// CodeInvalid is a request the cell refuses as invalid (an API's 400).
	CodeInvalid Code = "invalid"
)

// Error is an error as it travels on the wire.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Is lets errors.Is match a wire error against the sentinels below, and a
// not_found error against notfound.Err.
func (e *Error) Is(target error) bool {
	if target == notfound.Err {
		return e.Code == CodeNotFound
	}
	s, ok := target.(*Error)
	return ok && s.Message == "" && s.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrUnknownMethod      = &Error{Code: CodeUnknownMethod}
	ErrUnsupportedVersion = &Error{Code: CodeUnsupportedVersion}
	ErrBadMessage         = &Error{Code: CodeBadMessage}
	ErrNoRoute            = &Error{Code: CodeNoRoute}
	ErrNotFound           = &Error{Code: CodeNotFound}
	ErrTimeout            = &Error{Code: CodeTimeout}
	ErrConflict           = &Error{Code: CodeConflict}
	ErrGone               = &Error{Code: CodeGone}
	ErrInvalid            = &Error{Code: CodeInvalid}
)

// Errorf builds a wire error.
func Errorf(code Code, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// AsError turns any error into a wire error, keeping the code of a wrapped
// wire error and calling anything else internal.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var we *Error
	if errors.As(err, &we) {
		if we.Message == "" {
			return &Error{Code: we.Code, Message: err.Error()}
		}
		return we
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}
