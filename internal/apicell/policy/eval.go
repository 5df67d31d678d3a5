package policy

import "strings"

// evalState is one evaluation. It lives on the caller's stack.
type evalState struct {
	ctxAdmin *node
	creds    *Credentials
	target   Target
	// credsAsTarget is set while deciding is_admin: Nova evaluates
	// context_is_admin with the caller's own attributes as the target.
	credsAsTarget bool
	admin         adminState
}

type adminState uint8

const (
	adminUnknown adminState = iota
	adminNo
	adminYes
)

func (s *evalState) eval(n *node) bool {
	switch n.op {
	case opTrue:
		return true
	case opAnd:
		for _, k := range n.kids {
			if !s.eval(k) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if s.eval(k) {
				return true
			}
		}
		return false
	case opNot:
		return !s.eval(n.kids[0])
	case opRule:
		return n.ref != nil && s.eval(n.ref)
	case opRole:
		for _, r := range s.creds.Roles {
			if r != "" && s.matches(n.tmpl, r, true) {
				return true
			}
		}
		return false
	case opCred:
		v := s.cred(n.cred)
		return v != "" && s.matches(n.tmpl, v, false)
	case opIsAdmin:
		return s.isAdmin() == n.want
	case opLiteral:
		return s.matches(n.tmpl, n.lit, false)
	}
	return false
}

// isAdmin decides is_admin once per evaluation: the legacy flag, or the
// context_is_admin rule. While that rule runs, is_admin is the flag alone.
func (s *evalState) isAdmin() bool {
	if s.admin == adminUnknown {
		s.admin = adminNo
		if s.creds.IsAdmin {
			s.admin = adminYes
		} else if s.ctxAdmin != nil {
			saved := s.credsAsTarget
			s.credsAsTarget = true
			if s.eval(s.ctxAdmin) {
				s.admin = adminYes
			}
			s.credsAsTarget = saved
		}
	}
	return s.admin == adminYes
}

func (s *evalState) cred(a credAttr) string {
	switch a {
	case credProjectID:
		return s.creds.ProjectID
	case credUserID:
		return s.creds.UserID
	case credDomainID:
		return s.creds.DomainID
	case credIsAdmin:
		if s.isAdmin() {
			return "True"
		}
		return "False"
	}
	return ""
}

// lookup is the target's attribute attr.
func (s *evalState) lookup(attr string) (string, bool) {
	if !s.credsAsTarget {
		v, ok := s.target[attr]
		return v, ok
	}
	switch attr {
	case "project_id":
		return s.creds.ProjectID, true
	case "user_id":
		return s.creds.UserID, true
	case "domain_id":
		return s.creds.DomainID, true
	case "is_admin":
		return s.cred(credIsAdmin), true
	}
	return "", false
}

// matches reports whether v equals t with the target's attributes filled
// in, without building the string. A missing attribute never matches.
func (s *evalState) matches(t template, v string, fold bool) bool {
	for _, seg := range t {
		part := seg.text
		if seg.attr {
			var ok bool
			if part, ok = s.lookup(seg.text); !ok {
				return false
			}
		}
		if len(v) < len(part) {
			return false
		}
		if fold {
			if !strings.EqualFold(v[:len(part)], part) {
				return false
			}
		} else if v[:len(part)] != part {
			return false
		}
		v = v[len(part):]
	}
	return v == ""
}
