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

// A security group's tags (Neutron's standard-attr-tag): at most 50 unique
// strings of at most 255 characters. Changing them gives the group a new
// revision.
const (
	maxTagLen   = 255
	maxTagCount = 50
)

func tagResourceNotFound(id string) error {
	return fault(http.StatusNotFound, "TagResourceNotFound", fmt.Sprintf("Resource security_groups %s could not be found.", id))
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

func tagLimit(tags []string) error {
	if len(tags) > maxTagCount {
		return fault(http.StatusBadRequest, "BadRequest", fmt.Sprintf(
			"Bad security_groups request: The number of tags exceed the per-resource limit of %d", maxTagCount))
	}
	return nil
}

// taggedGroup reads the group whose tags a request is about, as
// TagResourceNotFound when the caller may not see it.
func (h *securityGroupsHandler) taggedGroup(r *http.Request, q db.Querier) (*netdb.SecurityGroup, error) {
	id := r.PathValue("id")
	g, err := h.visibleGroup(r, q, id)
	if errors.Is(err, netdb.ErrNotFound) {
		return nil, tagResourceNotFound(id)
	}
	return g, err
}

func (h *securityGroupsHandler) listTags(w http.ResponseWriter, r *http.Request) {
	g, err := h.taggedGroup(r, h.cfg.DB)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"tags": g.Tags})
}

func (h *securityGroupsHandler) showTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	err := validTag(tag)
	var g *netdb.SecurityGroup
	if err == nil {
		g, err = h.taggedGroup(r, h.cfg.DB)
	}
	if err == nil && !slices.Contains(g.Tags, tag) {
		err = fault(http.StatusNotFound, "TagNotFound", fmt.Sprintf("Tag %s could not be found.", tag))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setTags changes a group's tags to what change makes of them, in one
// transaction.
func (h *securityGroupsHandler) setTags(r *http.Request, change func(have []string) ([]string, error)) (*netdb.SecurityGroup, error) {
	var out *netdb.SecurityGroup
	err := h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
		g, err := h.taggedGroup(r, tx)
		if err != nil {
			return err
		}
		tags, err := change(slices.Clone(g.Tags))
		if err != nil {
			return err
		}
		out, err = netdb.UpdateSecurityGroup(r.Context(), tx, g.ID, netdb.SecurityGroupPatch{Tags: &tags}, nil, h.cfg.Now())
		return err
	})
	return out, err
}

func (h *securityGroupsHandler) replaceTags(w http.ResponseWriter, r *http.Request) {
	tags, err := readTags(w, r)
	if err == nil {
		_, err = h.setTags(r, func([]string) ([]string, error) { return tags, tagLimit(tags) })
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

func (h *securityGroupsHandler) addTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	err := validTag(tag)
	if err == nil {
		_, err = h.setTags(r, func(have []string) ([]string, error) {
			if slices.Contains(have, tag) {
				return have, nil
			}
			have = append(have, tag)
			return have, tagLimit(have)
		})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (h *securityGroupsHandler) deleteTags(w http.ResponseWriter, r *http.Request) {
	_, err := h.setTags(r, func([]string) ([]string, error) { return []string{}, nil })
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *securityGroupsHandler) deleteTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	err := validTag(tag)
	if err == nil {
		_, err = h.setTags(r, func(have []string) ([]string, error) {
			i := slices.Index(have, tag)
			if i < 0 {
				return nil, fault(http.StatusNotFound, "TagNotFound", fmt.Sprintf("Tag %s could not be found.", tag))
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
