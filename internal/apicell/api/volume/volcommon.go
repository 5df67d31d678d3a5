package volume

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
)

// The policy rules of volumes and snapshots: Cinder's names and defaults
// (cinder/policies/volumes.py, volume_actions.py, volume_access.py,
// volume_metadata.py, snapshots.py, snapshot_metadata.py,
// snapshot_actions.py, volume_admin_actions/snapshot_admin_actions).
const (
	ruleVolCreate          = "volume:create"
	ruleVolCreateFromImg   = "volume:create_from_image"
	ruleVolGet             = "volume:get"
	ruleVolGetAll          = "volume:get_all"
	ruleVolUpdate          = "volume:update"
	ruleVolDelete          = "volume:delete"
	ruleVolForceDelete     = "volume:force_delete"
	ruleVolExtend          = "volume:extend"
	ruleVolExtendAttached  = "volume:extend_attached_volume"
	ruleVolReadonly        = "volume:update_readonly_flag"
	ruleVolUploadImage     = "volume_extension:volume_actions:upload_image"
	ruleVolUploadPublic    = "volume_extension:volume_actions:upload_public"
	ruleVolResetStatus     = "volume_extension:volume_admin_actions:reset_status"
	ruleVolAdminForceDel   = "volume_extension:volume_admin_actions:force_delete"
	ruleVolTenantAttr      = "volume_extension:volume_tenant_attribute"
	ruleVolHostAttr        = "volume_extension:volume_host_attribute"
	ruleVolMigAttr         = "volume_extension:volume_mig_status_attribute"
	ruleVolImageMetaShow   = "volume_extension:volume_image_metadata:show"
	ruleVolImageMetaSet    = "volume_extension:volume_image_metadata:set"
	ruleVolImageMetaRemove = "volume_extension:volume_image_metadata:remove"
	ruleVolMetaGet         = "volume:get_volume_metadata"
	ruleVolMetaCreate      = "volume:create_volume_metadata"
	ruleVolMetaUpdate      = "volume:update_volume_metadata"
	ruleVolMetaDelete      = "volume:delete_volume_metadata"
	ruleSnapCreate         = "volume:create_snapshot"
	ruleSnapGet            = "volume:get_snapshot"
	ruleSnapGetAll         = "volume:get_all_snapshots"
	ruleSnapUpdate         = "volume:update_snapshot"
	ruleSnapDelete         = "volume:delete_snapshot"
	ruleSnapAttrs          = "volume_extension:extended_snapshot_attributes"
	ruleSnapMetaGet        = "volume:get_snapshot_metadata"
	ruleSnapMetaUpdate     = "volume:update_snapshot_metadata"
	ruleSnapMetaDelete     = "volume:delete_snapshot_metadata"
	ruleSnapResetStatus    = "volume_extension:snapshot_admin_actions:reset_status"
	ruleSnapAdminForceDel  = "volume_extension:snapshot_admin_actions:force_delete"
	ruleVolProviderID      = "volume:get_provider_id"
)

var volumeRules = []policy.Rule{
	{Name: ruleVolCreate, Check: policy.ProjectMemberOrAdmin, Description: "Create volume."},
	{Name: ruleVolCreateFromImg, Check: policy.ProjectMemberOrAdmin, Description: "Create volume from image."},
	{Name: ruleVolGet, Check: policy.ProjectReaderOrAdmin, Description: "Show volume."},
	{Name: ruleVolGetAll, Check: policy.ProjectReaderOrAdmin, Description: "List volumes or get summary of volumes."},
	{Name: ruleVolUpdate, Check: policy.ProjectMemberOrAdmin, Description: "Update volume or update a volume's bootable status."},
	{Name: ruleVolDelete, Check: policy.ProjectMemberOrAdmin, Description: "Delete volume."},
	{Name: ruleVolForceDelete, Check: policy.Admin, Description: "Force Delete a volume."},
	{Name: ruleVolExtend, Check: policy.ProjectMemberOrAdmin, Description: "Extend a volume."},
	{Name: ruleVolExtendAttached, Check: policy.ProjectMemberOrAdmin, Description: "Extend a attached volume."},
	{Name: ruleVolReadonly, Check: policy.ProjectMemberOrAdmin, Description: "Update volume read-only status."},
	{Name: ruleVolUploadImage, Check: policy.ProjectMemberOrAdmin, Description: "Upload a volume to image."},
	{Name: ruleVolUploadPublic, Check: policy.Admin, Description: "Upload a volume to image with public visibility."},
	{Name: ruleVolResetStatus, Check: policy.Admin, Description: "Reset status of a volume."},
	{Name: ruleVolAdminForceDel, Check: policy.Admin, Description: "Force delete a volume."},
	{Name: ruleVolTenantAttr, Check: policy.ProjectReaderOrAdmin, Description: "List or show volume with tenant attribute."},
	{Name: ruleVolHostAttr, Check: policy.Admin, Description: "List or show volume with host attribute."},
	{Name: ruleVolMigAttr, Check: policy.Admin, Description: "List or show volume with migration status attribute."},
	{Name: ruleVolImageMetaShow, Check: policy.ProjectReaderOrAdmin, Description: "Show volume's image metadata."},
	{Name: ruleVolRetype, Check: policy.ProjectMemberOrAdmin, Description: "Retype a volume."},
	{Name: ruleVolMultiattach, Check: policy.ProjectMemberOrAdmin, Description: "Create multiattach capable volume."},
	{Name: ruleVolImageMetaSet, Check: policy.ProjectMemberOrAdmin, Description: "Set image metadata for a volume"},
	{Name: ruleVolImageMetaRemove, Check: policy.ProjectMemberOrAdmin, Description: "Remove specific image metadata from a volume"},
	{Name: ruleVolProviderID, Check: policy.Admin, Description: "Show a volume's provider_id (3.21)."},
	{Name: ruleVolMetaGet, Check: policy.ProjectReaderOrAdmin, Description: "Show volume's metadata or one specified metadata with a given key."},
	{Name: ruleVolMetaCreate, Check: policy.ProjectMemberOrAdmin, Description: "Create volume metadata."},
	{Name: ruleVolMetaUpdate, Check: policy.ProjectMemberOrAdmin, Description: "Replace a volume's metadata dictionary or update a single metadatum with a given key."},
	{Name: ruleVolMetaDelete, Check: policy.ProjectMemberOrAdmin, Description: "Delete a volume's metadatum with the given key."},
	{Name: ruleSnapCreate, Check: policy.ProjectMemberOrAdmin, Description: "Create snapshot."},
	{Name: ruleSnapGet, Check: policy.ProjectReaderOrAdmin, Description: "Show snapshot."},
	{Name: ruleSnapGetAll, Check: policy.ProjectReaderOrAdmin, Description: "List snapshots."},
	{Name: ruleSnapUpdate, Check: policy.ProjectMemberOrAdmin, Description: "Update snapshot."},
	{Name: ruleSnapDelete, Check: policy.ProjectMemberOrAdmin, Description: "Delete snapshot."},
	{Name: ruleSnapAttrs, Check: policy.ProjectReaderOrAdmin, Description: "List or show snapshots with extended attributes."},
	{Name: ruleSnapMetaGet, Check: policy.ProjectReaderOrAdmin, Description: "Show snapshot's metadata or one specified metadata with a given key."},
	{Name: ruleSnapMetaUpdate, Check: policy.ProjectMemberOrAdmin, Description: "Update snapshot's metadata or one specified metadata with a given key."},
	{Name: ruleSnapMetaDelete, Check: policy.ProjectMemberOrAdmin, Description: "Delete snapshot's specified metadata with a given key."},
	{Name: ruleSnapResetStatus, Check: policy.Admin, Description: "Reset status of a snapshot."},
	{Name: ruleSnapAdminForceDel, Check: policy.Admin, Description: "Force delete a snapshot."},
}

// badRequest is a 400 with msg.
func badRequest(format string, args ...any) error {
	return fault(http.StatusBadRequest, fmt.Sprintf(format, args...))
}

// invalidInput is Cinder's InvalidInput.
func invalidInput(format string, args ...any) error {
	return badRequest("Invalid input received: "+format, args...)
}

// overQuota is a 413 (Cinder's QuotaError kinds), with Retry-After: 0.
func overQuota(format string, args ...any) error {
	return &httpkit.Fault{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf(format, args...),
		Header: http.Header{"Retry-After": []string{"0"}}}
}

func volumeNotFound(id string) error   { return notFound("Volume %s could not be found.", id) }
func snapshotNotFound(id string) error { return notFound("Snapshot %s could not be found.", id) }

// decodeBody reads a JSON request body into v: Cinder's 415 for another
// content type and 400 for what is not JSON.
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/vnd.openstack.volume+json") {
			return fault(http.StatusUnsupportedMediaType, "Unsupported Content-Type")
		}
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, 1<<20)); err != nil {
		return badRequest("Malformed message body: cannot understand JSON")
	}
	d := json.NewDecoder(&buf)
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return badRequest("Malformed message body: cannot understand JSON")
	}
	return nil
}

// body is a decoded JSON object.
type body map[string]any

// str reads a string field: ok false when absent or null; an error when
// it is not a string.
func (b body) str(key string) (string, bool, error) {
	v, present := b[key]
	if !present || v == nil {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", false, badRequest("Invalid input for field/attribute %s. Value: %v. %v is not of type 'string'", key, jsonText(v), jsonText(v))
	}
	return s, true, nil
}

// metadata reads a metadata object (Cinder's metadata schema: string
// keys of 1 to 255 of [a-zA-Z0-9-_:. ], string values up to 255).
func (b body) metadata(key string) (map[string]string, bool, error) {
	v, present := b[key]
	if !present || v == nil {
		return nil, false, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false, badRequest("Invalid input for field/attribute %s. Value: %s. %s is not of type 'object'", key, jsonText(v), jsonText(v))
	}
	out := make(map[string]string, len(m))
	for k, val := range m {
		s, ok := val.(string)
		if !ok {
			return nil, false, badRequest("Invalid input for field/attribute %s. Value: %s. %s is not of type 'string'", k, jsonText(val), jsonText(val))
		}
		if err := checkMetadataItem(k, s); err != nil {
			return nil, false, err
		}
		out[k] = s
	}
	return out, true, nil
}

// checkMetadataItem is Cinder's check of one metadata key and value.
func checkMetadataItem(k, v string) error {
	if k == "" {
		return badRequest("Invalid metadata: Metadata property key blank.")
	}
	if len(k) > 255 {
		return fault(http.StatusRequestEntityTooLarge, fmt.Sprintf("Invalid metadata size: Metadata property key %s greater than 255 characters.", k))
	}
	if len(v) > 255 {
		return fault(http.StatusRequestEntityTooLarge, fmt.Sprintf("Invalid metadata size: Metadata property key %s value greater than 255 characters.", k))
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_:. ", c)) {
			return badRequest("Invalid input for field/attribute metadata. Value: %s. Additional properties are not allowed ('%s' was unexpected)", k, k)
		}
	}
	return nil
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// strictBool is oslo's bool_from_string(strict=True) of a JSON value
// (a bool, or one of its strings).
func strictBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "t", "true", "on", "y", "yes":
			return true, nil
		case "0", "f", "false", "off", "n", "no":
			return false, nil
		}
		return false, badRequest("Unrecognized value '%s', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'", x)
	case json.Number:
		switch x.String() {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
	}
	return false, badRequest("Unrecognized value '%v', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'", jsonValue(v))
}

// jsonValue is v as Python would print it in a message.
func jsonValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return jsonText(v)
}

// intLike is Cinder's is_int_like followed by int(): an integer or a
// string of one.
func intLike(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.Atoi(x.String())
		return n, err == nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil && strings.TrimSpace(x) == strconv.Itoa(n)
	}
	return 0, false
}

// cinderTime is how Cinder writes a time (oslo's PERFECT_TIME_FORMAT);
// the zero time is null.
func cinderTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

// nullable is s, or null when empty.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// links are a resource's self and bookmark links, as Cinder's view
// builder writes them (the caller's project in both).
func links(r *http.Request, project, collection, id string) []map[string]string {
	base := baseURL(r)
	return []map[string]string{
		{"rel": "self", "href": base + "/v3/" + project + "/" + collection + "/" + id},
		{"rel": "bookmark", "href": base + "/" + project + "/" + collection + "/" + id},
	}
}

// nextLink is the "next" link of a full page: the request's query with
// marker set to the page's last id, on the collection's URL.
func nextLink(r *http.Request, project, collection, last string) []map[string]string {
	q := url.Values{}
	for k, vs := range r.URL.Query() {
		q[k] = vs
	}
	q.Set("marker", last)
	return []map[string]string{{"rel": "next", "href": baseURL(r) + "/v3/" + project + "/" + collection + "?" + q.Encode()}}
}

// maxLimit is osapi_max_limit.
const maxLimit = 1000

// listParams are a list request's paging, sort and the other keys.
type listParams struct {
	page      voldb.Page
	withCount bool
	// limit is the page size asked for or the maximum (for the next link).
	limit int
	// filters are the other query keys (first value each).
	filters map[string]string
}

// parseList reads the paging and sort parameters of a list as Cinder's
// common.py does; validKey says which sort keys exist.
func parseList(r *http.Request, validKey func(string) bool) (*listParams, error) {
	q := r.URL.Query()
	p := &listParams{limit: maxLimit, filters: map[string]string{}}
	for k, vs := range q {
		switch k {
		case "limit", "marker", "offset", "sort", "sort_key", "sort_dir", "with_count":
		default:
			p.filters[k] = vs[0]
		}
	}
	if s := q.Get("limit"); s != "" || q.Has("limit") {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, badRequest("limit param must be an integer")
		}
		if n < 0 {
			return nil, badRequest("limit param must be positive")
		}
		// Cinder's min(max_limit, limit or max_limit).
		if n > 0 {
			p.limit = min(n, maxLimit)
		}
	}
	p.page.Limit = p.limit
	if q.Has("offset") {
		n, err := strconv.Atoi(q.Get("offset"))
		if err != nil {
			return nil, badRequest("offset param must be an integer")
		}
		if n < 0 {
			return nil, badRequest("offset param must be positive")
		}
		p.page.Offset = n
	}
	p.page.Marker = q.Get("marker")
	if s := q.Get("sort"); s != "" {
		if q.Has("sort_key") || q.Has("sort_dir") {
			return nil, badRequest("The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.")
		}
		for item := range strings.SplitSeq(s, ",") {
			key, dir, _ := strings.Cut(item, ":")
			if err := p.addSort(strings.TrimSpace(key), strings.TrimSpace(dir), validKey); err != nil {
				return nil, err
			}
		}
	} else if q.Has("sort_key") || q.Has("sort_dir") {
		key := q.Get("sort_key")
		if key == "" {
			key = "created_at"
		}
		if err := p.addSort(key, q.Get("sort_dir"), validKey); err != nil {
			return nil, err
		}
	}
	if requestVersion(r.Context()).atLeast(3, 45) {
		if s := q.Get("with_count"); s != "" {
			b, err := strictBool(s)
			if err != nil {
				return nil, err
			}
			p.withCount = b
		}
	}
	return p, nil
}

func (p *listParams) addSort(key, dir string, validKey func(string) bool) error {
	switch strings.ToLower(dir) {
	case "", "desc":
		dir = "desc"
	case "asc":
	default:
		return invalidInput("Unknown sort direction, must be 'desc' or 'asc'")
	}
	if !validKey(key) {
		return invalidInput("Invalid sort key")
	}
	p.page.Sort = append(p.page.Sort, voldb.Sort{Key: key, Desc: dir == "desc"})
	return nil
}

// listError turns voldb's list errors into Cinder's answers.
func listError(err error, marker string) error {
	switch {
	case errors.Is(err, voldb.ErrMarkerNotFound):
		return notFound("Marker %s could not be found.", marker)
	case errors.Is(err, voldb.ErrSortKey):
		return invalidInput("Invalid sort key")
	}
	return err
}

// atLeast reports whether v is at least 3.minor (major given for clarity).
func (v version) atLeast(major, minor int) bool { return !v.less(version{major, minor}) }

// parseMetadataFilter reads a metadata filter: a Python dict literal
// ({'k': 'v'}) or JSON.
func parseMetadataFilter(s string) (map[string]string, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		if err := json.Unmarshal([]byte(strings.ReplaceAll(s, "'", `"`)), &m); err != nil {
			return nil, invalidInput("metadata = %s", s)
		}
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out, nil
}

// parseTimeFilter reads 3.60's created_at/updated_at filter:
// "op:time[,op:time…]".
func parseTimeFilter(key, s string) ([]voldb.TimeFilter, error) {
	var out []voldb.TimeFilter
	for item := range strings.SplitSeq(s, ",") {
		op, at, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			op, at = "eq", item
		}
		switch op {
		case "gt", "gte", "lt", "lte", "eq", "neq":
		default:
			return nil, invalidInput("Invalid filter keyword %s for %s", op, key)
		}
		var t time.Time
		var err error
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err = time.Parse(layout, at); err == nil {
				break
			}
		}
		if err != nil {
			return nil, invalidInput("Invalid time format %s for %s", at, key)
		}
		out = append(out, voldb.TimeFilter{Op: op, At: t.UTC()})
	}
	return out, nil
}

// truthy is Cinder's reading of all_tenants and the like (oslo's
// bool_from_string, not strict).
func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true
	}
	return false
}
