package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
)

// maxBody bounds a JSON request body.
const maxBody = 1 << 20

// Glance's default quotas: image_property_quota and image_tag_quota.
const (
	maxProperties = 128
	maxTags       = 128
)

// maxInt is the largest min_ram / min_disk (Glance stores them in 32 bits).
const maxInt = math.MaxInt32

var (
	// readOnly are attributes a client may never set (Glance's
	// _readonly_properties and _disallowed_properties).
	readOnly = []string{"created_at", "updated_at", "status", "checksum", "size", "virtual_size", "direct_url", "self",
		"file", "schema", "id", "os_hash_algo", "os_hash_value", "stores"}
	// reserved are names a custom property may not have.
	reserved = []string{"location", "locations", "deleted", "deleted_at", "owner"}
	// reservedPrefix is Glance's reserved namespace.
	reservedPrefix = "os_glance"
	// baseAttrs are the image attributes that are not custom properties
	// and that a client may change.
	baseAttrs = []string{"name", "visibility", "protected", "os_hidden", "owner", "min_ram", "min_disk", "disk_format",
		"container_format", "tags"}
)

var uuidRE = regexp.MustCompile(`^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$`)

func isReserved(key string) bool {
	return slices.Contains(reserved, key) || strings.HasPrefix(key, reservedPrefix)
}

// readJSON reads a JSON body (Glance's JSONRequestDeserializer).
func readJSON(w http.ResponseWriter, r *http.Request) (json.RawMessage, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errorf(http.StatusRequestEntityTooLarge, "Request body is larger than %d bytes.", maxBody)
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "Could not read the request body: %v", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errorf(http.StatusBadRequest, "Body expected in request.")
	}
	if !json.Valid(b) {
		return nil, errorf(http.StatusBadRequest, "Malformed JSON in request body.")
	}
	if b[0] != '{' && b[0] != '[' {
		return nil, errorf(http.StatusBadRequest, "Unexpected body type. Expected list/dict.")
	}
	return b, nil
}

// schemaError is a value that does not match the image schema; like
// jsonschema's message, it names the attribute.
func schemaError(field, reason string, value json.RawMessage) *httpkit.Fault {
	return errorf(http.StatusBadRequest, "Provided object does not match schema 'image': %s\n\nOn instance['%s']:\n    %s",
		reason, field, pyRepr(value))
}

// pyRepr shows a JSON value the way Glance's (Python) messages do.
func pyRepr(raw json.RawMessage) string {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return string(raw)
	}
	return reprValue(v)
}

func reprValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return "'" + strings.ReplaceAll(strings.ReplaceAll(x, `\`, `\\`), "'", `\'`) + "'"
	case json.Number:
		return x.String()
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = reprValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = reprValue(k) + ": " + reprValue(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func enumRepr(vals []string, nullable bool) string {
	var parts []string
	if nullable {
		parts = append(parts, "None")
	}
	for _, v := range vals {
		parts = append(parts, "'"+v+"'")
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// nullableString decodes a string or null ("" for null) of at most max
// characters.
func nullableString(field string, raw json.RawMessage, max int) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", schemaError(field, pyRepr(raw)+" is not of type 'null', 'string'", raw)
	}
	if utf8.RuneCountInString(s) > max {
		return "", schemaError(field, pyRepr(raw)+" is too long", raw)
	}
	return s, nil
}

func enumValue(field string, raw json.RawMessage, vals []string, nullable bool) (string, error) {
	if nullable && isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || !slices.Contains(vals, s) {
		return "", schemaError(field, pyRepr(raw)+" is not one of "+enumRepr(vals, nullable), raw)
	}
	return s, nil
}

func boolValue(field string, raw json.RawMessage) (bool, error) {
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, schemaError(field, pyRepr(raw)+" is not of type 'boolean'", raw)
	}
	return b, nil
}

// intValue decodes min_ram or min_disk: an integer (a number with no
// fraction), not negative, that fits Glance's column.
func intValue(field string, raw json.RawMessage) (int, error) {
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&n); err != nil {
		return 0, schemaError(field, pyRepr(raw)+" is not of type 'integer'", raw)
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || f != math.Trunc(f) {
		return 0, schemaError(field, pyRepr(raw)+" is not of type 'integer'", raw)
	}
	if f < 0 {
		return 0, errorf(http.StatusBadRequest, "Invalid value '%s' for parameter '%s': Cannot be a negative value", n, field)
	}
	if f > maxInt {
		return 0, errorf(http.StatusBadRequest, "Invalid value '%s' for parameter '%s': Must be at most %d", n, field, maxInt)
	}
	return int(f), nil
}

func tagsValue(field string, raw json.RawMessage) ([]string, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, schemaError(field, pyRepr(raw)+" is not of type 'array'", raw)
	}
	tags := make([]string, 0, len(items))
	for _, it := range items {
		var s string
		if err := json.Unmarshal(it, &s); err != nil {
			return nil, schemaError(field, pyRepr(it)+" is not of type 'string'", raw)
		}
		if err := checkTag(s); err != nil {
			return nil, err
		}
		tags = append(tags, s)
	}
	return tags, nil
}

func checkTag(tag string) error {
	if utf8.RuneCountInString(tag) > 255 {
		return schemaError("tags", reprValue(tag)+" is too long", json.RawMessage(strconv.Quote(tag)))
	}
	return nil
}

// maxPropertyValue is the most bytes a custom property's value may hold:
// Glance stores it in image_properties.value, a Text column
// (glance/db/sqlalchemy/models.py ImageProperty), 65535 bytes in MySQL.
const maxPropertyValue = 65535

// customValue decodes a custom property's value: a string (the schema's
// additionalProperties) that fits Glance's column (maxPropertyValue).
func customValue(key string, raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", schemaError(key, pyRepr(raw)+" is not of type 'string'", raw)
	}
	if len(s) > maxPropertyValue {
		return "", errorf(http.StatusBadRequest, "Provided object does not match schema 'image': the value of property '%s' is too long "+
			"(%d bytes, at most %d)", key, len(s), maxPropertyValue)
	}
	return s, nil
}

// setAttr checks value against the schema and sets the base attribute
// field of img (one of baseAttrs). It does not apply policy.
func setAttr(img *imagedb.Image, field string, raw json.RawMessage) error {
	var err error
	switch field {
	case "name":
		img.Name, err = nullableString(field, raw, 255)
	case "owner":
		img.Owner, err = nullableString(field, raw, 255)
	case "visibility":
		img.Visibility, err = enumValue(field, raw, visibilities, false)
	case "disk_format":
		img.DiskFormat, err = enumValue(field, raw, diskFormats, true)
	case "container_format":
		img.ContainerFormat, err = enumValue(field, raw, containerFormats, true)
	case "protected":
		img.Protected, err = boolValue(field, raw)
	case "os_hidden":
		img.Hidden, err = boolValue(field, raw)
	case "min_ram":
		img.MinRAM, err = intValue(field, raw)
	case "min_disk":
		img.MinDisk, err = intValue(field, raw)
	case "tags":
		var tags []string
		if tags, err = tagsValue(field, raw); err == nil {
			img.Tags = imagedb.SortTags(tags)
		}
	default:
		err = errorf(http.StatusBadRequest, "Unknown attribute '%s'.", field)
	}
	return err
}

// checkQuotas applies Glance's property and tag quotas (413).
func checkQuotas(img *imagedb.Image) error {
	if n := len(img.Properties); n > maxProperties {
		return errorf(http.StatusRequestEntityTooLarge,
			"The limit has been exceeded on the number of allowed image properties. Attempted: %d, Maximum: %d", n, maxProperties)
	}
	if n := len(img.Tags); n > maxTags {
		return errorf(http.StatusRequestEntityTooLarge,
			"The limit has been exceeded on the number of allowed image tags. Attempted: %d, Maximum: %d", n, maxTags)
	}
	return nil
}

// checkCustomKey checks a custom property's name.
func checkCustomKey(key string) error {
	if utf8.RuneCountInString(key) > 255 {
		return errorf(http.StatusBadRequest, "Custom property should not be greater than 255 characters.")
	}
	if key == "" {
		return errorf(http.StatusBadRequest, "Custom property name must not be empty.")
	}
	if isReserved(key) {
		return errorf(http.StatusForbidden, "Attribute '%s' is reserved.", key)
	}
	return nil
}
