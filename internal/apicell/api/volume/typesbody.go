package volume

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// This file reads the request bodies of the types and quota routes as
// Cinder's wsgi layer and its JSON schemas (cinder/api/schemas,
// cinder/api/validation) do, with their texts. jsonschema reports the
// first error it meets; the checks here run in the order of the schemas'
// keywords.

// maxTypesBody bounds a request body (Cinder's
// osapi_max_request_body_size).
const maxTypesBody = 114688

// member is one key of a JSON object, in the order of the body.
type member struct {
	key   string
	value any
}

// object is a JSON object with its keys in the body's order.
type object []member

func (o object) get(key string) (any, bool) {
	for _, m := range o {
		if m.key == key {
			return m.value, true
		}
	}
	return nil, false
}

func (o object) keys() []string {
	ks := make([]string, len(o))
	for i, m := range o {
		ks[i] = m.key
	}
	return ks
}

// readJSONBody reads a request body: a Content-Type other than Cinder's
// JSON types is a 415, a body that is no JSON a 400 "Malformed request
// body". An empty body is nil (which the schemas then refuse as not an
// object).
func readJSONBody(w http.ResponseWriter, r *http.Request) (any, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTypesBody))
	if err != nil {
		return nil, fault(http.StatusRequestEntityTooLarge, "Request is too large.")
	}
	if len(b) == 0 {
		return nil, nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "application/json" && mt != "application/vnd.openstack.volume+json" {
			return nil, fault(http.StatusUnsupportedMediaType, "Unsupported Content-Type")
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeOrdered(dec)
	if err != nil {
		return nil, fault(http.StatusBadRequest, "Malformed request body")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fault(http.StatusBadRequest, "Malformed request body")
	}
	return v, nil
}

// decodeOrdered decodes one JSON value; objects become object (keys in
// order, a repeated key keeping its last value in its first place, as
// Python's json does), numbers json.Number.
func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				if i := slices.IndexFunc(o, func(m member) bool { return m.key == k }); i >= 0 {
					o[i].value = v
				} else {
					o = append(o, member{k, v})
				}
			}
			_, err := dec.Token()
			return o, err
		case '[':
			l := []any{}
			for dec.More() {
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			_, err := dec.Token()
			return l, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return tok, nil
	}
}

// pyRepr is Python's repr of a decoded JSON value (how jsonschema quotes
// values in its messages).
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case json.Number:
		return pyNumber(x)
	case string:
		return pyString(x)
	case object:
		parts := make([]string, len(x))
		for i, m := range x {
			parts[i] = pyString(m.key) + ": " + pyRepr(m.value)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// pyStr is Python's str: a string as it is, anything else as pyRepr.
func pyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return pyRepr(v)
}

// pyNumber is how Python shows a JSON number it parsed: an int as
// written, a float in its shortest form with a ".0" when whole.
func pyNumber(n json.Number) string {
	if _, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return string(n)
	}
	if isIntLiteral(string(n)) {
		return string(n)
	}
	f, err := n.Float64()
	if err != nil {
		return string(n)
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

func isIntLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func pyString(s string) string {
	q := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = `"`
	}
	var b strings.Builder
	b.WriteString(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case string(r) == q:
			b.WriteString(`\` + q)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(q)
	return b.String()
}

// invalid is Cinder's ValidationError of a value at path (the innermost
// key; "" for the body itself, whose message has no prefix).
func invalid(path string, value any, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path == "" {
		return fault(http.StatusBadRequest, msg)
	}
	return fault(http.StatusBadRequest, fmt.Sprintf("Invalid input for field/attribute %s. Value: %s. %s", path, pyStr(value), msg))
}

// typeNames is jsonschema's list of types in a "not of type" message.
func typeNames(types ...string) string {
	q := make([]string, len(types))
	for i, t := range types {
		q[i] = "'" + t + "'"
	}
	return strings.Join(q, ", ")
}

// requireObject is jsonschema's {"type": "object"} at path.
func requireObject(path string, v any) (object, error) {
	o, ok := v.(object)
	if !ok {
		return nil, invalid(path, v, "%s is not of type 'object'", pyRepr(v))
	}
	return o, nil
}

// checkRequired and checkAdditional are jsonschema's required and
// additionalProperties (without patternProperties) on an object at path.
func checkRequired(path string, o object, required ...string) error {
	for _, k := range required {
		if _, ok := o.get(k); !ok {
			return invalid(path, o, "%s is a required property", pyString(k))
		}
	}
	return nil
}

func checkAdditional(path string, o object, allowed ...string) error {
	var extra []string
	for _, k := range o.keys() {
		if !slices.Contains(allowed, k) {
			extra = append(extra, pyString(k))
		}
	}
	switch len(extra) {
	case 0:
		return nil
	case 1:
		return invalid(path, o, "Additional properties are not allowed (%s was unexpected)", extra[0])
	}
	return invalid(path, o, "Additional properties are not allowed (%s were unexpected)", strings.Join(extra, ", "))
}

// checkPatternKeys is additionalProperties false beside one
// patternProperties regex.
func checkPatternKeys(path string, o object, re *regexp.Regexp, pattern string) error {
	var extra []string
	for _, k := range o.keys() {
		if !re.MatchString(k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	slices.Sort(extra)
	for i := range extra {
		extra[i] = pyString(extra[i])
	}
	verb := "does"
	if len(extra) > 1 {
		verb = "do"
	}
	return invalid(path, o, "%s %s not match any of the regexes: %s", strings.Join(extra, ", "), verb, pyString(pattern))
}

// checkString is a {"type": "string" (or also null), minLength,
// maxLength} property at path.
func checkString(path string, v any, nullable bool, minLen, maxLen int) error {
	s, ok := v.(string)
	if !ok {
		if v == nil && nullable {
			return nil
		}
		if nullable {
			return invalid(path, v, "%s is not of type %s", pyRepr(v), typeNames("string", "null"))
		}
		return invalid(path, v, "%s is not of type 'string'", pyRepr(v))
	}
	n := len([]rune(s))
	if n < minLen {
		return invalid(path, v, "%s is too short", pyRepr(v))
	}
	if maxLen >= 0 && n > maxLen {
		return invalid(path, v, "%s is too long", pyRepr(v))
	}
	return nil
}

// booleanEnum is Cinder's parameter_types.boolean.
var booleanEnum = []string{"True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t",
	"False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f"}

// checkBoolean is parameter_types.boolean at path; it answers the value.
func checkBoolean(path string, v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		if slices.Contains(booleanEnum, x) {
			return slices.Index(booleanEnum, x) < 12, nil
		}
	default:
		return false, invalid(path, v, "%s is not of type %s", pyRepr(v), typeNames("boolean", "string"))
	}
	all := []string{"True"}
	for i, s := range booleanEnum {
		if i == 12 {
			all = append(all, "False")
		}
		all = append(all, pyString(s))
	}
	return false, invalid(path, v, "%s is not one of [%s]", pyRepr(v), strings.Join(all, ", "))
}

// printable is Cinder's valid_description_regex: no control or format
// characters, no separators but plain spaces.
func printable(s string) bool {
	for _, r := range s {
		if unicode.In(r, unicode.C) || (unicode.In(r, unicode.Z) && !unicode.Is(unicode.Zs, r)) {
			return false
		}
	}
	return true
}

// validateInteger is oslo's strutils.validate_integer as Cinder's
// api_utils raises it (a 400 with its text): int(str(value)), then the
// bounds.
func validateInteger(v any, name string, minValue, maxValue int64) (int64, error) {
	n, ok := pyInt(v)
	if !ok {
		return 0, fault(http.StatusBadRequest, name+" must be an integer")
	}
	if n < minValue {
		return 0, fault(http.StatusBadRequest, fmt.Sprintf("%s must be >= %d", name, minValue))
	}
	if n > maxValue {
		return 0, fault(http.StatusBadRequest, fmt.Sprintf("%s must be <= %d", name, maxValue))
	}
	return n, nil
}

// pyInt is Python's int(str(v)) for a JSON value: an integral number or
// a string of one (spaces around, a sign and underscores between digits
// allowed); not a bool, a float or anything else.
func pyInt(v any) (int64, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = strings.TrimSpace(x)
		if strings.Contains(s, "_") && !strings.HasPrefix(strings.TrimLeft(s, "+-"), "_") && !strings.HasSuffix(s, "_") && !strings.Contains(s, "__") {
			s = strings.ReplaceAll(s, "_", "")
		}
	default:
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64)
	if err != nil || strings.HasPrefix(s, "+-") || strings.HasPrefix(s, "+") && strings.HasPrefix(s[1:], "+") {
		return 0, false
	}
	return n, true
}

// stringLength is Cinder's wsgi.Controller.validate_string_length of a
// path value.
func stringLength(value, name string, minLen, maxLen int) error {
	n := len([]rune(value))
	if n < minLen {
		return fault(http.StatusBadRequest, fmt.Sprintf("%s has a minimum character requirement of %d.", name, minLen))
	}
	if n > maxLen {
		return fault(http.StatusBadRequest, fmt.Sprintf("%s has more than %d characters.", name, maxLen))
	}
	return nil
}
