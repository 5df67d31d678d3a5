package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// Tags of security groups and ports (Neutron's standard-attr-tag): at most
// 50 unique strings of at most 255 characters. Changing them gives the
// resource a new revision.
const (
	maxTagLen   = 255
	maxTagCount = 50
)

func tagResourceNotFound(resource, id string) error {
	return fault(http.StatusNotFound, "TagResourceNotFound", fmt.Sprintf("Resource %s %s could not be found.", resource, id))
}

func invalidInput(msg string) error {
	return fault(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: "+msg+".")
}

// validTag is Neutron's validate_tag.
func validTag(tag string) error {
	if len([]rune(tag)) > maxTagLen {
		return invalidInput(fmt.Sprintf("'%s' exceeds maximum length of %d", tag, maxTagLen))
	}
	return nil
}

// readTags reads a {"tags": [...]} body (Neutron's validate_tags).
func readTags(w http.ResponseWriter, r *http.Request) ([]string, error) {
	var body map[string]json.RawMessage
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fault(http.StatusRequestEntityTooLarge, "HTTPRequestEntityTooLarge", "Request is too large.")
		}
		return nil, badRequest("Body contains invalid data")
	}
	if json.Unmarshal(raw, &body) != nil {
		return nil, badRequest("Body contains invalid data")
	}
	tr, ok := body["tags"]
	if !ok {
		return nil, invalidInput("Invalid tags body")
	}
	var list []json.RawMessage
	if json.Unmarshal(tr, &list) != nil || list == nil {
		return nil, invalidInput(fmt.Sprintf("'%s' is not a list", show(tr)))
	}
	tags := make([]string, 0, len(list))
	for _, t := range list {
		var s string
		if json.Unmarshal(t, &s) != nil {
			return nil, invalidInput(fmt.Sprintf("'%s' is not a valid string", show(t)))
		}
		if err := validTag(s); err != nil {
			return nil, err
		}
		if slices.Contains(tags, s) {
			return nil, invalidInput(fmt.Sprintf("Duplicate items in the list: '%s'", s))
		}
		tags = append(tags, s)
	}
	return tags, nil
}

func tagLimit(resource string, tags []string) error {
	if len(tags) > maxTagCount {
		return fault(http.StatusBadRequest, "BadRequest", fmt.Sprintf(
			"Bad %s request: The number of tags exceed the per-resource limit of %d", resource, maxTagCount))
	}
	return nil
}

// tagger serves the tags of one kind of resource (Neutron's
// standard-attr-tag): /v2.0/<resource>/{id}/tags[/{tag}].
type tagger struct {
	*base
	// resource is the collection's name, e.g. "security_groups".
	resource string
	// read gives the tags of the resource the request names, as
	// ErrNotFound (any not-found) when the caller may not see it.
	read func(r *http.Request, q db.Querier, id string) ([]string, error)
	// save replaces them.
	save func(r *http.Request, tx *db.Tx, id string, tags []string) error
}

func (t *tagger) register(rt *router, path string) {
	rt.handle("GET "+path+"/{id}/tags", t.listTags)
	rt.handle("PUT "+path+"/{id}/tags", t.replaceTags)
	rt.handle("DELETE "+path+"/{id}/tags", t.deleteTags)
	rt.handle("GET "+path+"/{id}/tags/{tag}", t.showTag)
	rt.handle("PUT "+path+"/{id}/tags/{tag}", t.addTag)
	rt.handle("DELETE "+path+"/{id}/tags/{tag}", t.deleteTag)
}

// tagsOf reads the tags of the resource a request is about, as
// TagResourceNotFound when the caller may not see it.
func (t *tagger) tagsOf(r *http.Request, q db.Querier) ([]string, error) {
	id := r.PathValue("id")
	tags, err := t.read(r, q, id)
	if errors.Is(err, netdb.ErrNotFound) {
		return nil, tagResourceNotFound(t.resource, id)
	}
	var f *httpkit.Fault
	if errors.As(err, &f) && f.Status == http.StatusNotFound {
		return nil, tagResourceNotFound(t.resource, id)
	}
	return tags, err
}

func (t *tagger) listTags(w http.ResponseWriter, r *http.Request) {
	tags, err := t.tagsOf(r, t.cfg.DB)
	if err != nil {
		t.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

func (t *tagger) showTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	err := validTag(tag)
	var tags []string
	if err == nil {
		tags, err = t.tagsOf(r, t.cfg.DB)
	}
	if err == nil && !slices.Contains(tags, tag) {
		err = fault(http.StatusNotFound, "TagNotFound", fmt.Sprintf("Tag %s could not be found.", tag))
	}
	if err != nil {
		t.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setTags changes the tags to what change makes of them, in one
// transaction.
func (t *tagger) setTags(r *http.Request, change func(have []string) ([]string, error)) error {
	return t.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
		have, err := t.tagsOf(r, tx)
		if err != nil {
			return err
		}
		tags, err := change(slices.Clone(have))
		if err != nil {
			return err
		}
		return t.save(r, tx, r.PathValue("id"), tags)
	})
}

func (t *tagger) replaceTags(w http.ResponseWriter, r *http.Request) {
	tags, err := readTags(w, r)
	if err == nil {
		err = t.setTags(r, func([]string) ([]string, error) { return tags, tagLimit(t.resource, tags) })
	}
	if err != nil {
		t.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

func (t *tagger) addTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	err := validTag(tag)
	if err == nil {
		err = t.setTags(r, func(have []string) ([]string, error) {
			if slices.Contains(have, tag) {
				return have, nil
			}
			have = append(have, tag)
			return have, tagLimit(t.resource, have)
		})
	}
	if err != nil {
		t.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (t *tagger) deleteTags(w http.ResponseWriter, r *http.Request) {
	if err := t.setTags(r, func([]string) ([]string, error) { return []string{}, nil }); err != nil {
		t.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (t *tagger) deleteTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	err := validTag(tag)
	if err == nil {
		err = t.setTags(r, func(have []string) ([]string, error) {
			i := slices.Index(have, tag)
			if i < 0 {
				return nil, fault(http.StatusNotFound, "TagNotFound", fmt.Sprintf("Tag %s could not be found.", tag))
			}
			return slices.Delete(have, i, i+1), nil
		})
	}
	if err != nil {
		t.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
