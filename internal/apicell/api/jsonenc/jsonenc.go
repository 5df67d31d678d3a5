// Package jsonenc writes the API's responses as JSON, byte for byte as
// encoding/json's Encoder does (keys sorted, HTML characters escaped, a
// newline at the end), but without reflection for the values the views are
// made of: maps of strings to values, slices, strings, numbers, booleans and
// nil. Any other value is handed to encoding/json.
//
// The views are maps, and encoding/json spends most of a large server list
// sorting map keys through reflection; this is several times faster.
package jsonenc

import (
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
)

// chunk is how much Encode gathers before it writes to its writer.
const chunk = 32 << 10

// Encode writes v and a newline to w, as json.NewEncoder(w).Encode(v)
// does. It writes as it goes, a chunk at a time, so a large value needs no
// buffer of its size; a value encoding/json refuses may thus leave part of
// its JSON written before the error.
func Encode(w io.Writer, v any) error {
	e := encoder{w: w, b: make([]byte, 0, chunk+chunk/4)}
	if err := e.value(v); err != nil {
		return err
	}
	e.b = append(e.b, '\n')
	return e.flush()
}

// Append appends v's JSON to b, as json.Marshal would write it.
func Append(b []byte, v any) ([]byte, error) {
	e := encoder{b: b}
	err := e.value(v)
	return e.b, err
}

// encoder appends to b and, when it has a writer, writes b out whenever
// it holds a chunk.
type encoder struct {
	w   io.Writer
	b   []byte
	err error
}

func (e *encoder) flush() error {
	if e.w == nil || e.err != nil {
		return e.err
	}
	_, e.err = e.w.Write(e.b)
	e.b = e.b[:0]
	return e.err
}

func (e *encoder) value(v any) error {
	if e.w != nil && len(e.b) >= chunk {
		if err := e.flush(); err != nil {
			return err
		}
	}
	switch x := v.(type) {
	case nil:
		e.b = append(e.b, "null"...)
	case string:
		e.b = appendString(e.b, x)
	case bool:
		e.b = strconv.AppendBool(e.b, x)
	case int:
		e.b = strconv.AppendInt(e.b, int64(x), 10)
	case int64:
		e.b = strconv.AppendInt(e.b, x, 10)
	case int32:
		e.b = strconv.AppendInt(e.b, int64(x), 10)
	case uint64:
		e.b = strconv.AppendUint(e.b, x, 10)
	case map[string]any:
		return object(e, x, e.value)
	case map[string]string:
		return object(e, x, func(s string) error { e.b = appendString(e.b, s); return nil })
	case map[string][]map[string]any:
		return object(e, x, func(s []map[string]any) error { return array(e, s) })
	case []any:
		return array(e, x)
	case []string:
		return array(e, x)
	case []map[string]any:
		return array(e, x)
	case []map[string]string:
		return array(e, x)
	default:
		// Anything else (structs, pointers, named types, floats, other
		// integers) is encoding/json's.
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		e.b = append(e.b, j...)
	}
	return nil
}

// object writes m with its keys sorted, each value with val.
func object[V any](e *encoder, m map[string]V, val func(V) error) error {
	if m == nil {
		e.b = append(e.b, "null"...)
		return nil
	}
	var buf [64]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.b = append(e.b, '{')
	for i, k := range keys {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = append(appendString(e.b, k), ':')
		if err := val(m[k]); err != nil {
			return err
		}
	}
	e.b = append(e.b, '}')
	return nil
}

func array[E any](e *encoder, s []E) error {
	if s == nil {
		e.b = append(e.b, "null"...)
		return nil
	}
	e.b = append(e.b, '[')
	for i, v := range s {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		if err := e.value(v); err != nil {
			return err
		}
	}
	e.b = append(e.b, ']')
	return nil
}

const hex = "0123456789abcdef"

// plain tells the ASCII bytes a JSON string holds as they are. It is never
// written to.
var plain = func() (p [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		p[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return p
}()

// appendString quotes s as encoding/json does with HTML escaping: <, > and
// & as \u003c, \u003e and \u0026, U+2028 and U+2029 escaped, invalid UTF-8
// replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(append(b, s[start:]...), '"')
}
