package image

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
)

// Glance's limit_param_default and api_limit_max.
const (
	defaultLimit = 25
	maxLimit     = 1000
)

// listImages answers GET /v2/images: a page of the images the caller can
// see, newest first unless sorted otherwise, with a "next" link when the
// page is full (Glance's rule, so the last page may be empty).
func (h *imagesHandler) listImages(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	params := r.URL.Query()
	o, err := listOptions(params)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	o.Project, o.Admin = c.ProjectID, c.Admin
	var imgs []*imagedb.Image
	if o.Limit > 0 {
		imgs, err = h.store.List(ctx, h.cfg.DB, o)
	}
	if err != nil {
		h.fail(w, r, onImage(params.Get("marker"), err))
		return
	}
	out := make([]map[string]any, len(imgs))
	for i, img := range imgs {
		out[i] = view(img)
	}
	params.Del("marker")
	body := map[string]any{"images": out, "first": "/v2/images", "schema": "/v2/schemas/images"}
	if q := params.Encode(); q != "" {
		body["first"] = "/v2/images?" + q
	}
	if len(imgs) > 0 && len(imgs) == o.Limit {
		params.Set("marker", imgs[len(imgs)-1].ID)
		body["next"] = "/v2/images?" + params.Encode()
	}
	httpkit.WriteMarshal(w, http.StatusOK, body)
}

// listOptions parses a list's query as Glance's RequestDeserializer.index
// does. Parameters that are not Glance's own filter custom properties.
func listOptions(params url.Values) (imagedb.ListOptions, error) {
	o := imagedb.ListOptions{Limit: defaultLimit, Properties: map[string]string{}}
	bad := func(format string, args ...any) error { return errorf(http.StatusBadRequest, format, args...) }
	if v, ok := params["limit"]; ok {
		n, err := strconv.Atoi(v[len(v)-1])
		if err != nil {
			return o, bad("limit param must be an integer")
		}
		if n < 0 {
			return o, bad("limit param must be positive")
		}
		o.Limit = min(n, maxLimit)
	}
	o.Marker = params.Get("marker")
	if ms := params.Get("member_status"); ms != "" && !slices.Contains([]string{"pending", "accepted", "rejected", "all"}, ms) {
		return o, bad("Invalid status: %s", ms)
	}
	if v := params.Get("visibility"); v != "" {
		if !slices.Contains(append(slices.Clone(visibilities), "all"), v) {
			return o, bad("Invalid visibility value: %s", v)
		}
		o.Visibility = v
	}
	if _, ok := params["changes-since"]; ok {
		return o, bad(`The "changes-since" filter is no longer available on v2.`)
	}
	if v := params.Get("os_hidden"); v != "" {
		v = strings.ToLower(v)
		if v != "true" && v != "false" {
			return o, bad("Invalid value '%s' for 'os_hidden' filter. Valid values are 'true' or 'false'.", v)
		}
		o.Hidden = v == "true"
	}
	if v, ok := params["protected"]; ok {
		p := v[len(v)-1]
		if p != "true" && p != "false" {
			return o, bad("Invalid value '%s' for 'protected' filter. Valid values are 'true' or 'false'.", p)
		}
		b := p == "true"
		o.Protected = &b
	}
	for _, t := range params["tag"] {
		o.Tags = append(o.Tags, strings.TrimSpace(t))
	}
	var err error
	if o.Sort, err = sortParams(params); err != nil {
		return o, err
	}
	for _, f := range []struct {
		name string
		dst  *[]string
	}{{"id", &o.IDs}, {"name", &o.Names}, {"status", &o.Statuses}, {"container_format", &o.ContainerFormats}, {"disk_format", &o.DiskFormats}} {
		v, ok := params[f.name]
		if !ok {
			continue
		}
		op, val := splitFilterOp(v[len(v)-1])
		switch op {
		case "eq":
			*f.dst = []string{val}
		case "in":
			*f.dst = splitQuoted(val)
		default:
			return o, bad("Unable to filter by unknown operator '%s'.", op)
		}
	}
	o.Owner = params.Get("owner")
	for _, f := range []struct {
		name string
		dst  **int64
	}{{"size_min", &o.SizeMin}, {"size_max", &o.SizeMax}} {
		if v, ok := params[f.name]; ok {
			n, err := strconv.ParseInt(v[len(v)-1], 10, 64)
			if err != nil {
				return o, bad("Unable to filter on a range with a non-numeric value.")
			}
			*f.dst = &n
		}
	}
	for _, f := range []struct {
		name string
		dst  **int
	}{{"min_ram", &o.MinRAM}, {"min_disk", &o.MinDisk}} {
		if v, ok := params[f.name]; ok {
			n, err := strconv.Atoi(v[len(v)-1])
			if err != nil {
				return o, bad("Invalid value '%s' for '%s' filter.", v[len(v)-1], f.name)
			}
			*f.dst = &n
		}
	}
	o.Checksum = params.Get("checksum")
	o.HashValue = params.Get("os_hash_value")
	for _, f := range []struct {
		name string
		dst  *[]imagedb.TimeFilter
	}{{"created_at", &o.CreatedAt}, {"updated_at", &o.UpdatedAt}} {
		for _, v := range params[f.name] {
			op, val := splitFilterOp(v)
			if !slices.Contains([]string{"eq", "neq", "gt", "gte", "lt", "lte"}, op) {
				return o, bad("Invalid operator '%s' for the '%s' filter.", op, f.name)
			}
			t, err := parseISOTime(val)
			if err != nil {
				return o, bad(`Bad "%s" query filter format. Use ISO 8601 DateTime notation.`, f.name)
			}
			*f.dst = append(*f.dst, imagedb.TimeFilter{Op: op, At: t})
		}
	}
	known := []string{"limit", "marker", "member_status", "visibility", "os_hidden", "protected", "tag", "sort", "sort_key",
		"sort_dir", "id", "name", "status", "container_format", "disk_format", "owner", "size_min", "size_max", "min_ram",
		"min_disk", "checksum", "os_hash_value", "created_at", "updated_at"}
	for k, v := range params {
		if !slices.Contains(known, k) {
			o.Properties[k] = v[len(v)-1]
		}
	}
	return o, nil
}

// sortParams reads the classic (sort_key, sort_dir) or the new
// (sort=key:dir,...) sort syntax, and completes it with created_at and id
// as Glance does.
func sortParams(params url.Values) ([]imagedb.Sort, error) {
	bad := func(format string, args ...any) error { return errorf(http.StatusBadRequest, format, args...) }
	checkKey := func(k string) error {
		if !slices.Contains(imagedb.SortKeys, k) {
			return bad("Invalid sort key: %s. It must be one of the following: %s.", k, strings.Join(imagedb.SortKeys, ", "))
		}
		return nil
	}
	checkDir := func(d string) error {
		if d != "asc" && d != "desc" {
			return bad("Invalid sort direction: %s", d)
		}
		return nil
	}
	var keys, dirs []string
	if s, ok := params["sort"]; ok {
		if params.Has("sort_key") || params.Has("sort_dir") {
			return nil, bad("Old and new sorting syntax cannot be combined")
		}
		for _, part := range strings.Split(strings.TrimSpace(s[len(s)-1]), ",") {
			k, d, _ := strings.Cut(part, ":")
			k, d = strings.TrimSpace(k), strings.TrimSpace(d)
			if d == "" {
				d = "desc"
			}
			if err := checkKey(k); err != nil {
				return nil, err
			}
			if err := checkDir(d); err != nil {
				return nil, err
			}
			keys, dirs = append(keys, k), append(dirs, d)
		}
	} else {
		for _, k := range params["sort_key"] {
			k = strings.TrimSpace(k)
			if err := checkKey(k); err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		for _, d := range params["sort_dir"] {
			d = strings.TrimSpace(d)
			if err := checkDir(d); err != nil {
				return nil, err
			}
			dirs = append(dirs, d)
		}
		if len(dirs) > 1 && len(dirs) != len(keys) {
			return nil, bad("Number of sort dirs does not match the number of sort keys")
		}
	}
	// The direction of added keys: the one sort_dir given, else desc.
	def := "desc"
	if len(dirs) == 1 {
		def = dirs[0]
	}
	if len(keys) == 0 {
		keys = []string{"created_at"}
	}
	out := make([]imagedb.Sort, 0, len(keys)+2)
	for i, k := range keys {
		d := def
		if i < len(dirs) && len(dirs) > 1 {
			d = dirs[i]
		}
		out = append(out, imagedb.Sort{Key: k, Desc: d == "desc"})
	}
	for _, k := range []string{"created_at", "id"} {
		if !slices.Contains(keys, k) {
			out = append(out, imagedb.Sort{Key: k, Desc: def == "desc"})
		}
	}
	return out, nil
}

// splitFilterOp splits "op:value" (Glance's split_filter_op): no colon, or
// a value that is an ISO 8601 time, means eq.
func splitFilterOp(expr string) (op, value string) {
	left, right, ok := strings.Cut(expr, ":")
	if !ok {
		return "eq", expr
	}
	if _, err := parseISOTime(expr); err == nil {
		return "eq", expr
	}
	return left, right
}

// splitQuoted splits an "in:" list on commas, honouring double quotes
// around values that hold commas.
func splitQuoted(s string) []string {
	var out []string
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '"':
			quoted = !quoted
		case ch == ',' && !quoted:
			out = append(out, b.String())
			b.Reset()
		default:
			b.WriteByte(ch)
		}
	}
	return append(out, b.String())
}

// parseISOTime reads the ISO 8601 forms clients send.
func parseISOTime(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999", "2006-01-02"} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}
