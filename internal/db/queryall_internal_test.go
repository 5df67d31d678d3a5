package db

import (
	"database/sql"
	"database/sql/driver"
	"testing"
)

// TestAssignConvertsAsScanDoes: a QueryAll answer's values go into the
// destinations as database/sql's Scan would put them (the conversions
// the queries read with), and a NULL into a plain value, or a destination
// it cannot fill, is an error.
func TestAssignConvertsAsScanDoes(t *testing.T) {
	var (
		b   bool
		s   string
		ps  *string
		pn  *int64
		n   int
		n64 int64
		f   float64
		raw []byte
		ns  sql.NullString
		a   any
	)
	for _, c := range []struct {
		dest  any
		v     driver.Value
		check func() bool
	}{
		{&b, int64(1), func() bool { return b }},
		{&b, "f", func() bool { return !b }},
		{&b, true, func() bool { return b }},
		{&s, []byte("x"), func() bool { return s == "x" }},
		{&s, int64(42), func() bool { return s == "42" }},
		{&ps, nil, func() bool { return ps == nil }},
		{&ps, "y", func() bool { return ps != nil && *ps == "y" }},
		{&pn, int64(7), func() bool { return pn != nil && *pn == 7 }},
		{&n, []byte("5"), func() bool { return n == 5 }},
		{&n64, "9", func() bool { return n64 == 9 }},
		{&f, int64(3), func() bool { return f == 3 }},
		{&f, "1.5", func() bool { return f == 1.5 }},
		{&raw, "z", func() bool { return string(raw) == "z" }},
		{&ns, nil, func() bool { return !ns.Valid }},
		{&a, int64(2), func() bool { return a == int64(2) }},
	} {
		if err := assign(c.dest, c.v); err != nil || !c.check() {
			t.Errorf("assign %T <- %#v: %v", c.dest, c.v, err)
		}
	}
	for _, c := range []struct {
		dest any
		v    driver.Value
	}{{&s, nil}, {&n, nil}, {&b, "maybe"}, {new(chan int), int64(1)}, {&n, 1.5}} {
		if err := assign(c.dest, c.v); err == nil {
			t.Errorf("assign %T <- %#v: no error", c.dest, c.v)
		}
	}
}
