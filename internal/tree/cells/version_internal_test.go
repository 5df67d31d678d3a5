package cells

import (
	"context"
	"errors"
	"testing"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestHandlerVersions checks how a cell picks the handler of a method by
// version, for calls and for durable messages alike: the major version must
// match a registered handler and the minor must not exceed what it accepts.
func TestHandlerVersions(t *testing.T) {
	s := &Service{path: "api!cell1", casts: map[handlerKey]casts{}, calls: map[handlerKey]calls{}}
	answer := func(context.Context, *wire.Envelope) (any, error) { return "ok", nil }
	apply := func(context.Context, *db.Tx, *wire.Envelope) error { return nil }
	s.HandleCall("ask", 1, 2, answer)
	s.HandleCall("ask", 3, 0, answer)
	s.HandleCast("tell", 1, 0, apply)

	cases := []struct {
		method, version string
		call, cast      error // nil: handled
	}{
		{"ask", "1.0", nil, wire.ErrUnsupportedVersion},
		{"ask", "1.2", nil, wire.ErrUnsupportedVersion},
		{"ask", "1.3", wire.ErrUnsupportedVersion, wire.ErrUnsupportedVersion},
		{"ask", "2.0", wire.ErrUnsupportedVersion, wire.ErrUnsupportedVersion},
		{"ask", "3.0", nil, wire.ErrUnsupportedVersion},
		{"ask", "3.1", wire.ErrUnsupportedVersion, wire.ErrUnsupportedVersion},
		{"tell", "1.0", wire.ErrUnsupportedVersion, nil},
		{"tell", "1.1", wire.ErrUnsupportedVersion, wire.ErrUnsupportedVersion},
		{"tell", "0.9", wire.ErrUnsupportedVersion, wire.ErrUnsupportedVersion},
		{"nothing", "1.0", wire.ErrUnknownMethod, wire.ErrUnknownMethod},
	}
	for _, c := range cases {
		env := &wire.Envelope{ID: "m", Method: c.method, Version: c.version, Kind: wire.Targeted, Target: s.path, Route: []string{"api"}, Sender: "api"}
		r := s.answerLocal(context.Background(), env)
		if r.Cell != s.path {
			t.Errorf("%s %s: answer from %q", c.method, c.version, r.Cell)
		}
		switch {
		case c.call == nil && r.Error != nil:
			t.Errorf("call %s %s: %v, want an answer", c.method, c.version, r.Error)
		case c.call == nil && string(r.Payload) != `"ok"`:
			t.Errorf("call %s %s: answer %s", c.method, c.version, r.Payload)
		case c.call != nil && !errors.Is(r.Error, c.call):
			t.Errorf("call %s %s: %v, want %v", c.method, c.version, r.Error, c.call)
		}
		h, err := s.castHandler(env)
		switch {
		case c.cast == nil && (err != nil || h == nil):
			t.Errorf("cast %s %s: %v, want a handler", c.method, c.version, err)
		case c.cast != nil && !errors.Is(err, c.cast):
			t.Errorf("cast %s %s: %v, want %v", c.method, c.version, err, c.cast)
		case c.cast != nil && !isPermanent(err):
			t.Errorf("cast %s %s: %v would be retried for ever", c.method, c.version, err)
		}
	}
}

// TestHandlerErrorsTravelWithTheirCode checks that a handler's wire error
// keeps its code in the answer and any other error becomes internal.
func TestHandlerErrorsTravelWithTheirCode(t *testing.T) {
	s := &Service{path: "api", casts: map[handlerKey]casts{}, calls: map[handlerKey]calls{}}
	s.HandleCall("gone", 1, 0, func(context.Context, *wire.Envelope) (any, error) {
		return nil, wire.Errorf(wire.CodeGone, "instance deleted")
	})
	s.HandleCall("broken", 1, 0, func(context.Context, *wire.Envelope) (any, error) {
		return nil, errors.New("disk on fire")
	})
	s.HandleCall("unencodable", 1, 0, func(context.Context, *wire.Envelope) (any, error) {
		return func() {}, nil
	})
	for method, want := range map[string]wire.Code{"gone": wire.CodeGone, "broken": wire.CodeInternal, "unencodable": wire.CodeInternal} {
		r := s.answerLocal(context.Background(), &wire.Envelope{Method: method, Version: wire.V1})
		if r.Error == nil || r.Error.Code != want {
			t.Errorf("%s: error %v, want code %s", method, r.Error, want)
		}
	}
}

func TestRouteDecisions(t *testing.T) {
	s := &Service{path: "api!cell1", neighbours: map[string]*link{
		"api":         {n: Neighbour{Path: "api", Relation: Parent}},
		"api!cell1!a": {n: Neighbour{Path: "api!cell1!a", Relation: Child}},
		"api!cell1!b": {n: Neighbour{Path: "api!cell1!b", Relation: Child}},
	}}
	targeted := func(to string) *wire.Envelope {
		return &wire.Envelope{ID: "m", Method: "x", Version: wire.V1, Kind: wire.Targeted, Target: to, Route: []string{"api"}, Sender: "api"}
	}
	cases := []struct {
		to      string
		local   bool
		next    string
		noRoute bool
	}{
		{to: "api!cell1", local: true},
		{to: "api!cell1!a", next: "api!cell1!a"},
		{to: "api!cell1!a!deep", next: "api!cell1!a"},
		{to: "api", next: "api"},
		{to: "api!cell2", next: "api"},
		{to: "api!cell1!zz", noRoute: true}, // not in the cells table
		{to: "api!cell10", next: "api"},
	}
	for _, c := range cases {
		env := targeted(c.to)
		d, err := s.route(env)
		if c.noRoute {
			if !errors.Is(err, wire.ErrNoRoute) {
				t.Errorf("to %s: err %v, want no_route", c.to, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("to %s: %v", c.to, err)
			continue
		}
		if d.local != c.local {
			t.Errorf("to %s: local = %v", c.to, d.local)
		}
		if c.next == "" {
			if len(d.next) != 0 {
				t.Errorf("to %s: passed on to %v", c.to, d.next)
			}
			continue
		}
		if len(d.next) != 1 || d.next[0].to != c.next {
			t.Errorf("to %s: next %v, want %s", c.to, d.next, c.next)
			continue
		}
		fwd := d.next[0].env
		if got := fwd.Route; len(got) != 2 || got[0] != "api" || got[1] != "api!cell1" {
			t.Errorf("to %s: forwarded route %v, want [api api!cell1]", c.to, got)
		}
		if len(env.Route) != 1 {
			t.Errorf("to %s: routing changed the received envelope's route to %v", c.to, env.Route)
		}
	}

	// A root cannot route out of its tree.
	root := &Service{path: "api", neighbours: map[string]*link{}}
	if _, err := root.route(targeted("other!x")); !errors.Is(err, wire.ErrNoRoute) {
		t.Errorf("root to another tree: %v, want no_route", err)
	}
	// A cell's own message is not recorded twice on its route.
	own := &wire.Envelope{ID: "m", Method: "x", Version: wire.V1, Kind: wire.Targeted, Target: "api!cell1!a", Route: []string{"api!cell1"}, Sender: "api!cell1"}
	d, err := s.route(own)
	if err != nil || len(d.next) != 1 || len(d.next[0].env.Route) != 1 {
		t.Errorf("own message: %+v, %v; want route [api!cell1]", d, err)
	}

	bc := func(dir wire.Direction, hops int) *wire.Envelope {
		return &wire.Envelope{ID: "b", Method: "x", Version: wire.V1, Kind: wire.Broadcast, Direction: dir, HopLimit: hops, Route: []string{"api"}, Sender: "api"}
	}
	bcases := []struct {
		env  *wire.Envelope
		next []string
	}{
		{bc(wire.Down, 0), nil},
		{bc(wire.Down, 1), []string{"api!cell1!a", "api!cell1!b"}},
		{bc(wire.Down, 5), []string{"api!cell1!a", "api!cell1!b"}},
		{bc(wire.Up, 1), []string{"api"}},
		{bc(wire.Up, 0), nil},
	}
	for _, c := range bcases {
		d, err := s.route(c.env)
		if err != nil || !d.local {
			t.Errorf("broadcast %s %d: %+v, %v; want local", c.env.Direction, c.env.HopLimit, d, err)
			continue
		}
		var got []string
		for _, f := range d.next {
			got = append(got, f.to)
			if f.env.HopLimit != c.env.HopLimit-1 {
				t.Errorf("broadcast %s %d: copy to %s has hop limit %d", c.env.Direction, c.env.HopLimit, f.to, f.env.HopLimit)
			}
		}
		if !sameSet(got, c.next) {
			t.Errorf("broadcast %s %d: goes to %v, want %v", c.env.Direction, c.env.HopLimit, got, c.next)
		}
	}
	if _, err := s.route(&wire.Envelope{ID: "k", Kind: "sideways"}); !errors.Is(err, wire.ErrBadMessage) {
		t.Errorf("bad kind: %v, want bad_message", err)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

// TestPermanentErrorsAreNotRetried: a durable message whose handler says
// it can never apply (a bad payload, an invalid or conflicting request, no
// handler) is dropped, not redelivered for ever; an error that may pass
// (the database, a timeout, an instance gone meanwhile) is retried.
func TestPermanentErrorsAreNotRetried(t *testing.T) {
	for _, c := range []struct {
		err       error
		permanent bool
	}{
		{wire.Errorf(wire.CodeBadMessage, "x"), true},
		{wire.Errorf(wire.CodeInvalid, "no such service"), true},
		{wire.Errorf(wire.CodeConflict, "x"), true},
		{wire.Errorf(wire.CodeUnknownMethod, "x"), true},
		{wire.Errorf(wire.CodeTimeout, "x"), false},
		{wire.Errorf(wire.CodeInternal, "x"), false},
		{errors.New("database is locked"), false},
	} {
		if got := isPermanent(c.err); got != c.permanent {
			t.Errorf("isPermanent(%v) = %v, want %v", c.err, got, c.permanent)
		}
	}
}
