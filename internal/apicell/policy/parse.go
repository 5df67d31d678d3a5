package policy

import (
	"errors"
	"fmt"
	"strings"
)

// op is the kind of a node of a parsed rule.
type op uint8

const (
	opTrue    op = iota // allow
	opFalse             // deny
	opAnd               // all kids
	opOr                // any kid
	opNot               // not kids[0]
	opRule              // the rule named name (ref, once linked)
	opRole              // a role of the caller matches tmpl
	opCred              // the caller's attribute cred equals tmpl
	opIsAdmin           // the caller's admin status equals want
	opLiteral           // lit equals tmpl
)

// node is one node of a parsed rule.
type node struct {
	op   op
	kids []*node
	tmpl template
	cred credAttr
	want bool
	lit  string
	name string // opRule: the rule referred to
	ref  *node  // opRule: its root, set when the rules are linked
}

var (
	nodeTrue  = &node{op: opTrue}
	nodeFalse = &node{op: opFalse}
)

// credAttr names an attribute of Credentials that a generic check compares.
type credAttr uint8

const (
	credProjectID credAttr = iota
	credUserID
	credDomainID
	credIsAdmin
)

var credAttrs = map[string]credAttr{
	"project_id": credProjectID,
	"user_id":    credUserID,
	"domain_id":  credDomainID,
	"is_admin":   credIsAdmin,
}

// segment is a piece of a match: literal text, or a target attribute.
type segment struct {
	text string
	attr bool // text names a target attribute
}

// template is a match, as Python's "text %(attr)s" % target.
type template []segment

// maxDepth bounds the nesting of a rule, so a hostile rule cannot exhaust
// the stack.
const maxDepth = 100

// parseText parses a check string. The empty string allows.
func parseText(s string) (*node, []string, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, nil, err
	}
	if len(toks) == 0 {
		if s == "" {
			return nodeTrue, nil, nil
		}
		return nil, nil, fmt.Errorf("%w: a rule of only white space (write \"\" or @ to allow)", ErrSyntax)
	}
	p := parser{toks: toks}
	n, err := p.or(0)
	if err != nil {
		return nil, nil, err
	}
	if p.pos < len(p.toks) {
		return nil, nil, fmt.Errorf("%w: unexpected %s", ErrSyntax, p.toks[p.pos])
	}
	return n, p.refs, nil
}

// parseList parses the legacy list form: or of ands. An empty list allows;
// a list of only empty lists denies, as in oslo.policy.
func parseList(list [][]string) (*node, []string, error) {
	if len(list) == 0 {
		return nodeTrue, nil, nil
	}
	var refs []string
	or := &node{op: opOr}
	for _, inner := range list {
		if len(inner) == 0 {
			continue
		}
		and := &node{op: opAnd}
		for _, c := range inner {
			n, err := parseCheck(c)
			if err != nil {
				return nil, nil, err
			}
			if n.op == opRule {
				refs = append(refs, n.name)
			}
			and.kids = append(and.kids, n)
		}
		if len(and.kids) == 1 {
			or.kids = append(or.kids, and.kids[0])
		} else {
			or.kids = append(or.kids, and)
		}
	}
	switch len(or.kids) {
	case 0:
		return nodeFalse, nil, nil
	case 1:
		return or.kids[0], refs, nil
	}
	return or, refs, nil
}

// listText renders the list form in the text language, for Rules.
func listText(list [][]string) string {
	if len(list) == 0 {
		return ""
	}
	var ors []string
	for _, inner := range list {
		if len(inner) == 0 {
			continue
		}
		s := strings.Join(inner, " and ")
		if len(inner) > 1 {
			s = "(" + s + ")"
		}
		ors = append(ors, s)
	}
	if len(ors) == 0 {
		return "!"
	}
	return strings.Join(ors, " or ")
}

type tokKind uint8

const (
	tokLParen tokKind = iota
	tokRParen
	tokAnd
	tokOr
	tokNot
	tokCheck
)

type token struct {
	kind  tokKind
	text  string
	check *node
}

func (t token) String() string { return fmt.Sprintf("%q", t.text) }

// tokenize splits a check string as oslo.policy does: on white space, with
// parentheses peeled off the start and end of each word.
func tokenize(s string) ([]token, error) {
	var toks []token
	for _, w := range strings.Fields(s) {
		for w != "" && w[0] == '(' {
			toks = append(toks, token{kind: tokLParen, text: "("})
			w = w[1:]
		}
		if w == "" {
			continue
		}
		clean := strings.TrimRight(w, ")")
		switch strings.ToLower(clean) {
		case "and":
			toks = append(toks, token{kind: tokAnd, text: clean})
		case "or":
			toks = append(toks, token{kind: tokOr, text: clean})
		case "not":
			toks = append(toks, token{kind: tokNot, text: clean})
		case "":
		default:
			if _, ok := unquote(clean); ok {
				return nil, fmt.Errorf("%w: quoted string %s is not a check", ErrSyntax, clean)
			}
			n, err := parseCheck(clean)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokCheck, text: clean, check: n})
		}
		for range len(w) - len(clean) {
			toks = append(toks, token{kind: tokRParen, text: ")"})
		}
	}
	return toks, nil
}

// parser is a recursive descent parser over tokens:
//
//	or    = and { "or" and }
//	and   = unary { "and" unary }
//	unary = "not" unary | "(" or ")" | check
type parser struct {
	toks []token
	pos  int
	refs []string
}

func (p *parser) peek(k tokKind) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind == k
}

func (p *parser) or(depth int) (*node, error) {
	n, err := p.and(depth)
	if err != nil || !p.peek(tokOr) {
		return n, err
	}
	or := &node{op: opOr, kids: []*node{n}}
	for p.peek(tokOr) {
		p.pos++
		n, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		or.kids = append(or.kids, n)
	}
	return or, nil
}

func (p *parser) and(depth int) (*node, error) {
	n, err := p.unary(depth)
	if err != nil || !p.peek(tokAnd) {
		return n, err
	}
	and := &node{op: opAnd, kids: []*node{n}}
	for p.peek(tokAnd) {
		p.pos++
		n, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		and.kids = append(and.kids, n)
	}
	return and, nil
}

func (p *parser) unary(depth int) (*node, error) {
	if depth >= maxDepth {
		return nil, fmt.Errorf("%w: nested more than %d deep", ErrSyntax, maxDepth)
	}
	if p.pos >= len(p.toks) {
		return nil, fmt.Errorf("%w: rule ends where a check was expected", ErrSyntax)
	}
	t := p.toks[p.pos]
	p.pos++
	switch t.kind {
	case tokNot:
		n, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &node{op: opNot, kids: []*node{n}}, nil
	case tokLParen:
		n, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.peek(tokRParen) {
			return nil, fmt.Errorf("%w: missing \")\"", ErrSyntax)
		}
		p.pos++
		return n, nil
	case tokCheck:
		if t.check.op == opRule {
			p.refs = append(p.refs, t.check.name)
		}
		return t.check, nil
	}
	return nil, fmt.Errorf("%w: expected a check, found %s", ErrSyntax, t)
}

// parseCheck parses one check: "@", "!" or KIND:MATCH.
func parseCheck(s string) (*node, error) {
	switch s {
	case "@":
		return nodeTrue, nil
	case "!":
		return nodeFalse, nil
	}
	kind, match, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("%w: check %q is not @, ! or KIND:MATCH", ErrSyntax, s)
	}
	switch kind {
	case "rule":
		if match == "" {
			return nil, fmt.Errorf("%w: check %q names no rule", ErrSyntax, s)
		}
		return &node{op: opRule, name: match}, nil
	case "http", "https":
		return nil, fmt.Errorf("%w: check %q: %s checks are not supported", ErrSyntax, s, kind)
	}
	tmpl, err := parseMatch(match)
	if err != nil {
		return nil, fmt.Errorf("%w: check %q: %v", ErrSyntax, s, err)
	}
	if len(tmpl) == 0 {
		return nil, fmt.Errorf("%w: check %q has nothing to match", ErrSyntax, s)
	}
	if kind == "role" {
		return &node{op: opRole, tmpl: tmpl}, nil
	}
	if lit, ok := unquote(kind); ok {
		return &node{op: opLiteral, lit: lit, tmpl: tmpl}, nil
	}
	if kind == "True" || kind == "False" {
		return &node{op: opLiteral, lit: kind, tmpl: tmpl}, nil
	}
	attr, ok := credAttrs[kind]
	if !ok {
		return nil, fmt.Errorf("%w: check %q: unknown credential attribute %q (known: project_id, user_id, domain_id, is_admin)", ErrSyntax, s, kind)
	}
	if attr == credIsAdmin && len(tmpl) == 1 && !tmpl[0].attr {
		switch strings.ToLower(tmpl[0].text) {
		case "true":
			return &node{op: opIsAdmin, want: true}, nil
		case "false":
			return &node{op: opIsAdmin, want: false}, nil
		}
		return nil, fmt.Errorf("%w: check %q: is_admin is True or False", ErrSyntax, s)
	}
	return &node{op: opCred, cred: attr, tmpl: tmpl}, nil
}

// parseMatch parses the MATCH of a check: a quoted literal, or text with
// %(attr)s references to the target.
func parseMatch(s string) (template, error) {
	if lit, ok := unquote(s); ok {
		return template{{text: lit}}, nil
	}
	var t template
	var lit strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			lit.WriteByte(c)
			i++
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "%%"):
			lit.WriteByte('%')
			i += 2
		case strings.HasPrefix(s[i:], "%("):
			end := strings.IndexByte(s[i:], ')')
			if end < 0 || !strings.HasPrefix(s[i+end:], ")s") {
				return nil, errors.New(`a reference to the target is written %(attr)s`)
			}
			if lit.Len() > 0 {
				t = append(t, segment{text: lit.String()})
				lit.Reset()
			}
			t = append(t, segment{text: s[i+2 : i+end], attr: true})
			i += end + 2
		default:
			return nil, errors.New(`a lone "%" (write %% for a percent sign)`)
		}
	}
	if lit.Len() > 0 {
		t = append(t, segment{text: lit.String()})
	}
	return t, nil
}

// unquote strips matching single or double quotes.
func unquote(s string) (string, bool) {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1], true
	}
	return "", false
}
