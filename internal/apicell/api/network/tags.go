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

// Tags (Neutron's standard-attr-tag) of the security groups, networks and
// subnets: at most 50 unique strings of at most 255 characters per
// resource. Changing them gives the resource a new revision. Each tagged
// collection is a tagTarget (secgrouptags.go, nettags.go) served by the
// same routes.
const (
	maxTagLen   = 255
	maxTagCount = 50
)

// tagTarget is one collection's tags.
type tagTarget struct {
	// path is the collection's path ("security-groups"), name its
	// Neutron name and table ("security_groups") and member its singular
	// ("security_group", for the policy rules' names).
	path, name, member string
	// get reads the tags of resource id through q, as TagResourceNotFound
	// when the caller may not see it; with write, as PolicyNotAuthorized
	// (rule action) when the caller may see it but not change it.
	get func(r *http.Request, q db.Querier, id string, write bool, action string) ([]string, error)
	// set replaces the tags of resource id inside tx.
	set func(r *http.Request, tx *db.Tx, id string, tags []string) error
}

// tagsHandler is /v2.0/{collection}/{id}/tags of one tagTarget.
type tagsHandler struct {
	*base
	t tagTarget
}

func (h *tagsHandler) register(rt *router) {
	p := "/v2.0/" + h.t.path + "/{id}/tags"
	rt.handle("GET "+p, h.listTags)
	rt.handle("PUT "+p, h.replaceTags)
	rt.handle("DELETE "+p, h.deleteTags)
	rt.handle("GET "+p+"/{tag}", h.showTag)
	rt.handle("PUT "+p+"/{tag}", h.addTag)
	rt.handle("DELETE "+p+"/{tag}", h.deleteTag)
}

func (t tagTarget) notFound(id string) error {
	return fault(http.StatusNotFound, "TagResourceNotFound", fmt.Sprintf("Resource %s %s could not be found.", t.name, id))
}

func invalidInput(msg string) error {
	return fault(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: "+msg+".")
}

func tagNotFound(tag string) error {
	return fault(http.StatusNotFound, "TagNotFound", fmt.Sprintf("Tag %s could not be found.", tag))
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

func (t tagTarget) limit(tags []string) error {
	if len(tags) > maxTagCount {
		return fault(http.StatusBadRequest, "BadRequest", fmt.Sprintf(
			"Bad %s request: The number of tags exceed the per-resource limit of %d", t.name, maxTagCount))
	}
	return nil
}

func (h *tagsHandler) listTags(w http.ResponseWriter, r *http.Request) {
	tags, err := h.t.get(r, h.cfg.DB, r.PathValue("id"), false, "")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

func (h *tagsHandler) showTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	err := validTag(tag)
	var tags []string
	if err == nil {
		tags, err = h.t.get(r, h.cfg.DB, r.PathValue("id"), false, "")
	}
	if err == nil && !slices.Contains(tags, tag) {
		err = tagNotFound(tag)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// change changes a resource's tags to what f makes of them, in one
// transaction that holds the resource's row from the read to the write;
// action is the policy rule a caller who may see the resource
// but not change it is refused by.
func (h *tagsHandler) change(r *http.Request, action string, f func(have []string) ([]string, error)) error {
	id := r.PathValue("id")
	return h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
		if err := netdb.HoldTagged(r.Context(), tx, h.t.name, id); err != nil {
			return err
		}
		have, err := h.t.get(r, tx, id, true, action+"_"+h.t.member+":tags")
		if err != nil {
			return err
		}
		tags, err := f(slices.Clone(have))
		if err != nil {
			return err
		}
		return h.t.set(r, tx, id, tags)
	})
}

func (h *tagsHandler) replaceTags(w http.ResponseWriter, r *http.Request) {
	tags, err := readTags(w, r)
	if err == nil {
		err = h.change(r, "update", func([]string) ([]string, error) { return tags, h.t.limit(tags) })
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

func (h *tagsHandler) addTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	err := validTag(tag)
	if err == nil {
		err = h.change(r, "update", func(have []string) ([]string, error) {
			if slices.Contains(have, tag) {
				return have, nil
			}
			have = append(have, tag)
			return have, h.t.limit(have)
		})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (h *tagsHandler) deleteTags(w http.ResponseWriter, r *http.Request) {
	err := h.change(r, "delete", func([]string) ([]string, error) { return []string{}, nil })
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *tagsHandler) deleteTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	err := validTag(tag)
	if err == nil {
		err = h.change(r, "delete", func(have []string) ([]string, error) {
			i := slices.Index(have, tag)
			if i < 0 {
				return nil, tagNotFound(tag)
			}
			return slices.Delete(have, i, i+1), nil
		})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// notFoundAsTag turns a resource's not-found into TagResourceNotFound.
func (t tagTarget) notFoundAsTag(id string, err error) error {
	if errors.Is(err, netdb.ErrNotFound) {
		return t.notFound(id)
	}
	return err
}
