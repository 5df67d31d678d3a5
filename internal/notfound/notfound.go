// Package notfound is the one not-found convention: every package's
// not-found sentinel (apidb, celldb, imagedb, netdb, identity's
// NotFoundError, the wire's not_found code) keeps its own identity and
// text, and each also matches Err with errors.Is, so one rule (one row of
// an API's error table) can cover them all.
package notfound

// Err is the kind every not-found error matches with errors.Is.
var Err error = kind{}

type kind struct{}

func (kind) Error() string { return "not found" }

// New returns a sentinel with its own text (errors.Is matches it by
// identity, as errors.New's) that also matches Err.
func New(text string) error { return &sentinel{text} }

type sentinel struct{ text string }

func (e *sentinel) Error() string { return e.text }

// Is reports whether target is Err.
func (e *sentinel) Is(target error) bool { return target == Err }
