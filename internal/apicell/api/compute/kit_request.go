package compute

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

func isNull(b json.RawMessage) bool { return len(b) == 0 || string(b) == "null" }

// strictDecode decodes an object, refusing unknown fields.
func strictDecode(b json.RawMessage, v any) error {
	if isNull(b) {
		return errors.New("a body is required")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// readObject reads a JSON request body that must be an object; numbers
// stay json.Number so that their text survives.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, tooLarge()
	}
	return readObjectBytes(b)
}

// readAction reads a POST …/action body of the resources whose action is
// the body's one key (flavors, aggregates): the action's name and the body.
func readAction(w http.ResponseWriter, r *http.Request) (string, map[string]any, error) {
	body, err := readObject(w, r)
	if err != nil {
		return "", nil, err
	}
	if len(body) != 1 {
		return "", nil, bad("Malformed request body")
	}
	for k := range body {
		return k, body, nil
	}
	return "", body, nil
}

// readObjectBytes is readObject of a body read already.
func readObjectBytes(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, bad("Malformed request body")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("Malformed request body")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, bad("%s is not of type 'object'", pyRepr(v))
	}
	return m, nil
}

// objectField checks body = {key: {...}}: key an object whose fields are
// among allowed, with required ones, and check passing; nothing else at
// the top. It returns the inner object.
func objectField(body map[string]any, key string, allowed, required []string, check func(map[string]any) error) (map[string]any, error) {
	raw, ok := body[key]
	if ok {
		inner, isObj := raw.(map[string]any)
		if !isObj {
			return nil, invalid(key, raw, "%s is not of type 'object'", pyRepr(raw))
		}
		if err := check(inner); err != nil {
			return nil, err
		}
		for _, f := range required {
			if _, ok := inner[f]; !ok {
				return nil, invalid(key, inner, "'%s' is a required property", f)
			}
		}
		if err := noOtherKeys(inner, key, allowed...); err != nil {
			return nil, err
		}
	} else {
		return nil, bad("'%s' is a required property", key)
	}
	if err := noOtherKeys(body, "", key); err != nil {
		return nil, err
	}
	return body[key].(map[string]any), nil
}

// noOtherKeys refuses keys of m not in allowed (additionalProperties:
// false); field names m when it is not the whole body.
func noOtherKeys(m map[string]any, field string, allowed ...string) error {
	var extra []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	msg := additional(extra)
	if field == "" {
		return bad("%s", msg)
	}
	return invalid(field, m, "%s", msg)
}

// additional is jsonschema's message for unexpected properties.
func additional(extra []string) string {
	sort.Strings(extra)
	quoted := make([]string, len(extra))
	for i, k := range extra {
		quoted[i] = pyRepr(k)
	}
	if len(extra) == 1 {
		return fmt.Sprintf("Additional properties are not allowed (%s was unexpected)", quoted[0])
	}
	return fmt.Sprintf("Additional properties are not allowed (%s were unexpected)", strings.Join(quoted, ", "))
}

// checkQuery refuses query parameters not in allowed (Nova's strict query
// schemas, from 2.75).
func checkQuery(q url.Values, allowed ...string) error {
	var extra []string
	for k := range q {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	return bad("%s", additional(extra))
}

// lastValue is the value webob gives for a repeated query parameter.
func lastValue(q url.Values, key string) string {
	v := q[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// printable is Nova's printable character (parameter_types._is_printable
// over the Basic Multilingual Plane): not a control, format, private use or
// unassigned character, nor a line or paragraph separator.
func printable(r rune, spaces bool) bool {
	if r > 0xFFFE || !unicode.IsGraphic(r) {
		return false
	}
	return spaces || !unicode.Is(unicode.Zs, r)
}

// checkName checks Nova's parameter_types.name: a string of 1 to 255
// printable characters, not starting or ending with whitespace.
func checkName(field string, v any) error {
	s, ok := v.(string)
	if !ok {
		return invalid(field, v, "%s is not of type 'string'", pyRepr(v))
	}
	if !validName(s) {
		return bad("An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.")
	}
	return checkString(field, s, 1, 255)
}

func validName(s string) bool {
	if s == "" {
		return true
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if !printable(first, false) || !printable(last, false) {
		return false
	}
	for _, r := range s {
		if !printable(r, true) {
			return false
		}
	}
	return true
}

// checkString checks a string's type and length (minLength, maxLength).
func checkString(field string, v any, minLen, maxLen int) error {
	s, ok := v.(string)
	if !ok {
		return invalid(field, v, "%s is not of type 'string'", pyRepr(v))
	}
	n := utf8.RuneCountInString(s)
	if n < minLen {
		if minLen == 1 {
			return invalid(field, s, "%s should be non-empty", pyRepr(s))
		}
		return invalid(field, s, "%s is too short", pyRepr(s))
	}
	if n > maxLen {
		return invalid(field, s, "%s is too long", pyRepr(s))
	}
	return nil
}

// booleans are the values of Nova's parameter_types.boolean.
var booleans = []any{true, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
	false, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"}

func checkBoolean(field string, v any) error {
	switch v.(type) {
	case bool, string:
		if slices.Contains(booleans, v) {
			return nil
		}
		return invalid(field, v, "%s is not one of %s", pyRepr(v), pyRepr(booleans))
	}
	return invalid(field, v, "%s is not of type 'boolean', 'string'", pyRepr(v))
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// queryBool reads a strict boolean query parameter (Nova's
// parameter_types.boolean); absent is false.
func queryBool(q url.Values, name string) (bool, error) {
	vs, ok := q[name]
	if !ok {
		return false, nil
	}
	if len(vs) > 1 {
		return false, bad("Invalid input for query parameters %s. Value: %s. %s is too long", name, pyList(vs), pyList(vs))
	}
	b, ok := parseBool(json.RawMessage(strconv.Quote(vs[0])))
	if !ok {
		return false, bad("Invalid input for query parameters %s. Value: %s. %s is not valid under any of the given schemas", name, vs[0], pyRepr(vs[0]))
	}
	return b, nil
}

// readBody reads a request body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, tooLarge()
	}
	return b, nil
}

// maxBody bounds a request body (Nova's osapi_max_request_body_size).
const maxBody = 112 << 10

// decodeBody reads a JSON object body with one top-level key.
func decodeBody(w http.ResponseWriter, r *http.Request, key string) (map[string]json.RawMessage, json.RawMessage, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, nil, tooLarge()
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil || top == nil {
		return nil, nil, bad("Malformed request body")
	}
	inner, ok := top[key]
	if !ok {
		return nil, nil, bad("Invalid input for field/attribute %s. Value: None. '%s' is a required property", key, key)
	}
	return top, inner, nil
}

func jsonFieldError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s is not of type '%s'", te.Field, jsonType(te.Type.Kind().String()))
	}
	return err.Error()
}

func jsonType(k string) string {
	switch k {
	case "string":
		return "string"
	case "map", "struct":
		return "object"
	case "slice":
		return "array"
	}
	return k
}

func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// boolStrings are oslo's bool_from_string values.
var (
	trueStrings  = []string{"1", "t", "true", "on", "y", "yes"}
	falseStrings = []string{"0", "f", "false", "off", "n", "no"}
)

// strictBool is oslo's bool_from_string(s, strict=True).
func strictBool(s string) (bool, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch {
	case slices.Contains(trueStrings, v):
		return true, nil
	case slices.Contains(falseStrings, v):
		return false, nil
	}
	all := append(slices.Clone(trueStrings), falseStrings...)
	sort.Strings(all)
	q := make([]string, len(all))
	for i, a := range all {
		q[i] = "'" + a + "'"
	}
	return false, bad("Invalid input received: Unrecognized value '%s', acceptable values are: %s", s, strings.Join(q, ", "))
}
