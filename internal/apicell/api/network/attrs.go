package network

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// attrRule says what a body may do with an attribute.
type attrRule struct {
	post, put bool
}

// checkAttrs refuses attributes the resource does not have, attributes a
// create may not set and read-only ones in an update, with Neutron's
// messages.
func checkAttrs(body map[string]json.RawMessage, rules map[string]attrRule, create bool) error {
	var unknown []string
	for k := range body {
		if _, ok := rules[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return badRequest("Unrecognized attribute(s) '%s'", strings.Join(unknown, ", "))
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		r := rules[k]
		if create && !r.post {
			return badRequest("Attribute '%s' not allowed in POST", k)
		}
		if !create && !r.put {
			return badRequest("Cannot update read-only attribute %s", k)
		}
	}
	return nil
}

func required(body map[string]json.RawMessage, attr string) error {
	if _, ok := body[attr]; !ok {
		return badRequest("Failed to parse request. Required attribute '%s' not specified", attr)
	}
	return nil
}

// show renders a raw value in a message, strings without their quotes.
func show(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if string(raw) == "null" {
		return "None"
	}
	return string(raw)
}

// stringAttr reads a string attribute of at most maxLen characters.
func stringAttr(body map[string]json.RawMessage, attr string, maxLen int) (string, bool, error) {
	raw, ok := body[attr]
	if !ok {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, badAttr("HTTPBadRequest", attr, fmt.Sprintf("'%s' is not a valid string", show(raw)))
	}
	if maxLen > 0 && len([]rune(s)) > maxLen {
		return "", true, badAttr("HTTPBadRequest", attr, fmt.Sprintf("'%s' exceeds maximum length of %d", s, maxLen))
	}
	return s, true, nil
}

// parseBool is oslo's strict bool_from_string, as Neutron's
// convert_to_boolean uses it.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, true
	case "0", "f", "false", "off", "n", "no":
		return false, true
	}
	return false, false
}

func boolAttr(body map[string]json.RawMessage, attr string) (bool, bool, error) {
	raw, ok := body[attr]
	if !ok {
		return false, false, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, true, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if v, ok := parseBool(n.String()); ok {
			return v, true, nil
		}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if v, ok := parseBool(s); ok {
			return v, true, nil
		}
	}
	return false, true, badAttr("InvalidInput", attr, fmt.Sprintf("'%s' cannot be converted to boolean", show(raw)))
}

func intAttr(body map[string]json.RawMessage, attr string) (int, bool, error) {
	raw, ok := body[attr]
	if !ok {
		return 0, false, nil
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n, true, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return v, true, nil
		}
	}
	return 0, true, badAttr("InvalidInput", attr, fmt.Sprintf("'%s' is not an integer", show(raw)))
}

// projectAttr reads the owner a create asks for (tenant_id or project_id,
// which must agree). Only admins may name a project other than their own.
func projectAttr(body map[string]json.RawMessage, c httpkit.Caller) (string, error) {
	t, tok, err := stringAttr(body, "tenant_id", 255)
	if err != nil {
		return "", err
	}
	p, pok, err := stringAttr(body, "project_id", 255)
	if err != nil {
		return "", err
	}
	switch {
	case tok && pok && t != p:
		return "", badRequest("'project_id' and 'tenant_id' do not match")
	case pok:
	case tok:
		p = t
	default:
		return c.ProjectID, nil
	}
	if p == "" {
		return "", badAttr("HTTPBadRequest", "project_id", "'' is not a valid project id")
	}
	if p != c.ProjectID && !c.Admin {
		return "", badRequest("Specifying 'project_id' other than the authenticated project in request is not allowed for the current user.")
	}
	return p, nil
}

// isNull reports whether the attribute is present and JSON null.
func isNull(body map[string]json.RawMessage, attr string) bool {
	raw, ok := body[attr]
	return ok && strings.TrimSpace(string(raw)) == "null"
}
