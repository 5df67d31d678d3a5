// Package cellpath parses and walks cell paths such as "api!cell1!a".
//
// A path names a cell by its place in the tree: the root (an API cell) first,
// then each child down to the cell, separated by "!". Routing a message is a
// walk along paths, one neighbour at a time.
package cellpath

import (
	"errors"
	"fmt"
	"strings"
)

// Sep separates the names in a path.
const Sep = "!"

// MaxDepth bounds how deep a tree may be; it is also the default hop limit.
const MaxDepth = 16

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid cell path")

// Validate checks that p is a well-formed path: one or more names of 1 to 63
// characters from [A-Za-z0-9-], separated by "!", at most MaxDepth deep.
func Validate(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty", ErrInvalid)
	}
	names := strings.Split(p, Sep)
	if len(names) > MaxDepth {
		return fmt.Errorf("%w: %q is deeper than %d cells", ErrInvalid, p, MaxDepth)
	}
	for _, n := range names {
		if err := ValidateName(n); err != nil {
			return fmt.Errorf("%w in path %q", err, p)
		}
	}
	return nil
}

// ValidateName checks one cell name.
func ValidateName(n string) error {
	if n == "" || len(n) > 63 {
		return fmt.Errorf("%w: cell name %q must be 1 to 63 characters", ErrInvalid, n)
	}
	for _, r := range n {
		ok := r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("%w: cell name %q may hold only letters, digits and '-'", ErrInvalid, n)
		}
	}
	return nil
}

// Parent returns the parent of p, or "" for a root.
func Parent(p string) string {
	i := strings.LastIndex(p, Sep)
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Root returns the first name of p.
func Root(p string) string {
	if i := strings.Index(p, Sep); i >= 0 {
		return p[:i]
	}
	return p
}

// Depth is the number of names in p.
func Depth(p string) int {
	if p == "" {
		return 0
	}
	return strings.Count(p, Sep) + 1
}

// Child joins a child's name onto p.
func Child(p, name string) string { return p + Sep + name }

// IsAncestor reports whether a is a strict ancestor of d.
func IsAncestor(a, d string) bool {
	return len(d) > len(a) && strings.HasPrefix(d, a) && d[len(a):len(a)+1] == Sep
}

// Contains reports whether p is q or an ancestor of q.
func Contains(p, q string) bool { return p == q || IsAncestor(p, q) }

// NextHop returns the neighbour of from that a message for to goes through:
// the child on the way down when to is below from, else the parent. It
// returns "" when from is to, or when to is not below from and from is a
// root (there is nowhere to go).
func NextHop(from, to string) string {
	if from == to {
		return ""
	}
	if IsAncestor(from, to) {
		rest := to[len(from)+1:]
		if i := strings.Index(rest, Sep); i >= 0 {
			rest = rest[:i]
		}
		return Child(from, rest)
	}
	return Parent(from)
}

// Hops is the number of hops a message takes from one cell to another.
func Hops(from, to string) int {
	n := 0
	for cur := from; cur != to; n++ {
		cur = NextHop(cur, to)
		if cur == "" {
			return -1
		}
	}
	return n
}
