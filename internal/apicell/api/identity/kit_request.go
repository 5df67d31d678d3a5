package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// decode reads a JSON body with one top-level key into v.
func (b *base) decode(w http.ResponseWriter, r *http.Request, key string, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, b.cfg.maxBytes))
	if err != nil {
		return &httpkit.Fault{Status: http.StatusRequestEntityTooLarge, Message: "Request is too large."}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return badRequest("Malformed request body: it is not a JSON object.")
	}
	inner, ok := top[key]
	if !ok {
		return badRequest("Invalid input for field '%s': '%s' is a required property.", key, key)
	}
	if err := json.Unmarshal(inner, v); err != nil {
		return badRequest("Invalid input for field '%s': %s", key, jsonError(err))
	}
	return nil
}

func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("'%s' must be of type %s, not %s.", te.Field, te.Type.String(), te.Value)
	}
	return "the value is not valid JSON."
}

// boolQuery reads a boolean filter (?enabled=true); nil when absent.
func boolQuery(r *http.Request, key string) (*bool, error) {
	if !r.URL.Query().Has(key) {
		return nil, nil
	}
	v, err := strconv.ParseBool(r.URL.Query().Get(key))
	if err != nil {
		return nil, badRequest("Invalid input for query parameter '%s': %q is not a boolean.", key, r.URL.Query().Get(key))
	}
	return &v, nil
}

// rootURL is this API's root (where GET / lists the versions) as the
// client reached it.
func (b *base) rootURL(r *http.Request) string {
	for _, e := range b.cfg.Catalog {
		if e.Type == "identity" {
			return strings.TrimSuffix(e.URL(httpkit.Origin(r)), "/")
		}
	}
	return httpkit.Origin(r)
}

func links(self string) map[string]any { return map[string]any{"self": self} }

func (b *base) collectionLinks(r *http.Request) map[string]any {
	self := b.rootURL(r) + r.URL.Path
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	return map[string]any{"self": self, "previous": nil, "next": nil}
}

// timestamp is Keystone's time format.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }
