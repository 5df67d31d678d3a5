package httpkit

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"

	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Fault is a refusal: what an API answers instead of a result. As an
// error it can travel up from a handler's helpers to Fail.
type Fault struct {
	Status int
	// Type is the API's name for the fault where its shape has one
	// (Neutron's "NetworkNotFound"); shapes without one ignore it.
	Type    string
	Message string
	// Header holds headers to add to the answer (Glance's Allow,
	// Accept-Patch).
	Header http.Header
}

func (f *Fault) Error() string { return f.Message }

// Errorf is a fault with a formatted message.
func Errorf(status int, format string, args ...any) *Fault {
	return &Fault{Status: status, Message: fmt.Sprintf(format, args...)}
}

// Shape writes a fault in an API's own body and status (and any header
// the API adds to every fault; Kit.Write has added f.Header).
type Shape func(w http.ResponseWriter, f *Fault)

// Row maps the errors that match Err (errors.Is) to a fault.
type Row struct {
	Err    error
	Status int
	// Type is the fault's type, for shapes that have one.
	Type string
	// Message is the fault's message; empty means the text of the error in
	// the chain that matched Err (for a *wire.Error, its Message).
	Message string
	// Detail, when set, reads the fault's type and message from the whole
	// error instead (Type and Message above are then ignored); ok false
	// means the row does not apply after all.
	Detail func(err error) (typ, msg string, ok bool)
}

// Table is an API's errors as data: the first row that matches wins.
type Table []Row

// Lookup finds the fault for err: the first row that matches it.
func (t Table) Lookup(err error) (*Fault, bool) {
	for _, row := range t {
		node := match(err, row.Err)
		if node == nil {
			continue
		}
		f := &Fault{Status: row.Status, Type: row.Type, Message: row.Message}
		switch {
		case row.Detail != nil:
			var ok bool
			if f.Type, f.Message, ok = row.Detail(err); !ok {
				continue
			}
		case f.Message == "":
			f.Message = text(node)
		}
		return f, true
	}
	return nil, false
}

// match is errors.Is that also says which error of the chain matched.
func match(err, target error) error {
	if target == nil {
		return nil
	}
	comparable := reflect.TypeOf(target).Comparable()
	for err != nil {
		if comparable && err == target {
			return err
		}
		if x, ok := err.(interface{ Is(error) bool }); ok && x.Is(target) {
			return err
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if m := match(e, target); m != nil {
					return m
				}
			}
			return nil
		default:
			return nil
		}
	}
	return nil
}

// text is an error's message for a client: a wire error's Message without
// its code, any other error's text.
func text(err error) string {
	if we, ok := err.(*wire.Error); ok && we.Message != "" {
		return we.Message
	}
	return err.Error()
}

// Fault is the fault err is answered with: the first *Fault in its chain,
// else the first row of the table that matches, else nil and false.
func (k *Kit) Fault(err error) (*Fault, bool) {
	var f *Fault
	if errors.As(err, &f) {
		return f, true
	}
	return k.table.Lookup(err)
}

// Fail answers err in the API's shape: as Fault finds it, or, for an error
// nothing maps, with the Internal fault after logging the error with the
// request id.
func (k *Kit) Fail(w http.ResponseWriter, r *http.Request, err error) {
	f, ok := k.Fault(err)
	if !ok {
		k.log.Error("request failed", "request_id", RequestID(r.Context()), "err", err)
		f = &k.internal
	}
	k.Write(w, f)
}

// Write writes f in the API's shape, with f's headers added.
func (k *Kit) Write(w http.ResponseWriter, f *Fault) {
	for name, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(name, v)
		}
	}
	k.shape(w, f)
}
