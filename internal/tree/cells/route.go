package cells

import (
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// decision is what routing decided for a message at this cell.
type decision struct {
	// local: the message is for this cell (or, for a broadcast, this cell
	// is one of its receivers).
	local bool
	// next are the neighbours the message goes on to, each with its copy.
	next []forward
}

type forward struct {
	to  string
	env *wire.Envelope
}

// route is the one place where a cell decides where a message goes. Every
// message a cell receives or originates passes through it.
func (s *Service) route(env *wire.Envelope) (decision, error) {
	switch env.Kind {
	case wire.Targeted, wire.Response:
		if env.Target == s.path {
			return decision{local: true}, nil
		}
		nh := cellpath.NextHop(s.path, env.Target)
		if nh == "" {
			return decision{}, wire.Errorf(wire.CodeNoRoute, "cell %q is not in the tree of cell %q", env.Target, s.path)
		}
		if _, ok := s.neighbour(nh); !ok {
			if nh == cellpath.Parent(s.path) {
				return decision{}, wire.Errorf(wire.CodeNoRoute, "cell %q has no parent in its cells table to reach %q", s.path, env.Target)
			}
			return decision{}, wire.Errorf(wire.CodeNoRoute, "cell %q does not exist (no child %q in the cells table of %q)", env.Target, nh, s.path)
		}
		return decision{next: []forward{{to: nh, env: s.hop(env)}}}, nil
	case wire.Broadcast:
		d := decision{local: true}
		if env.HopLimit <= 0 {
			return d, nil
		}
		var targets []string
		if env.Direction == wire.Down {
			for _, c := range s.children() {
				targets = append(targets, c.Path)
			}
		} else if p := cellpath.Parent(s.path); p != "" {
			if _, ok := s.neighbour(p); ok {
				targets = append(targets, p)
			}
		}
		for _, t := range targets {
			c := s.hop(env)
			c.HopLimit = env.HopLimit - 1
			d.next = append(d.next, forward{to: t, env: c})
		}
		return d, nil
	}
	return decision{}, wire.Errorf(wire.CodeBadMessage, "message %s has kind %q", env.ID, env.Kind)
}

// hop copies env for the next hop, with this cell appended to its route
// (unless the route already ends here, as a message this cell originated
// does: its route starts with the sender).
func (s *Service) hop(env *wire.Envelope) *wire.Envelope {
	c := *env
	c.Route = append(make([]string, 0, len(env.Route)+1), env.Route...)
	if len(c.Route) == 0 || c.Route[len(c.Route)-1] != s.path {
		c.Route = append(c.Route, s.path)
	}
	return &c
}
