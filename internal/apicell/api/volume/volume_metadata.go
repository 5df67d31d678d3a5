package volume

import (
	"context"
	"errors"
	"maps"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// volumeMetadataHandler is /volumes/{id}/metadata (Cinder's
// volume_metadata controller): the user metadata of a volume, which the
// API cell alone owns.
type volumeMetadataHandler struct{ *base }

func (h *volumeMetadataHandler) register(rt *router) {
	if !h.volumesServed() {
		return
	}
	m := &metadataRoutes{base: h.base, collection: "volumes",
		read: func(ctx context.Context, q db.Querier, id string, write bool) (map[string]string, error) {
			v, err := h.getVolume(ctx, q, id)
			if err != nil {
				return nil, err
			}
			if write && (v.Status == voldb.StatusMaintenance || v.Status == voldb.StatusUploading) {
				return nil, badRequest("Invalid volume: Updating volume metadata is not allowed for volumes in %s status.", v.Status)
			}
			return v.Metadata, nil
		},
		update: voldb.UpdateFields,
		missingKey: func(id, key string) error {
			return notFound("Volume %s has no metadata with key %s.", id, key)
		},
	}
	m.register(rt, ruleVolMetaGet, ruleVolMetaCreate, ruleVolMetaUpdate, ruleVolMetaDelete)
}

// metadataRoutes are the metadata routes of volumes and of snapshots:
// GET/POST/PUT {collection}/{id}/metadata, GET/PUT/DELETE …/metadata/{key}.
type metadataRoutes struct {
	*base
	collection string
	// read reads the metadata of id, checking that the caller may see
	// it and, for a write, that its status allows one.
	read       func(ctx context.Context, q db.Querier, id string, write bool) (map[string]string, error)
	update     func(ctx context.Context, tx *db.Tx, id string, f voldb.Fields) error
	missingKey func(id, key string) error
}

func (m *metadataRoutes) register(rt *router, get, create, update, del string) {
	p := "/v3/{project_id}/" + m.collection + "/{id}/metadata"
	rt.handle("GET "+p, get, m.index)
	rt.handle("POST "+p, create, func(w http.ResponseWriter, r *http.Request) { m.setAll(w, r, false) })
	rt.handle("PUT "+p, update, func(w http.ResponseWriter, r *http.Request) { m.setAll(w, r, true) })
	rt.handle("GET "+p+"/{key}", get, m.show)
	rt.handle("PUT "+p+"/{key}", update, m.setOne)
	rt.handle("DELETE "+p+"/{key}", del, m.delete)
}

func (m *metadataRoutes) index(w http.ResponseWriter, r *http.Request) {
	md, err := m.read(r.Context(), m.cfg.DB, r.PathValue("id"), false)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"metadata": md})
}

// setAll is POST (merge) and PUT (replace) of the whole metadata; both
// answer the metadata as it is after.
func (m *metadataRoutes) setAll(w http.ResponseWriter, r *http.Request, replace bool) {
	var top map[string]any
	if err := decodeBody(r, &top); err != nil {
		m.fail(w, r, err)
		return
	}
	md, ok, err := body(top).metadata("metadata")
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if !ok {
		m.fail(w, r, badRequest("Malformed request body"))
		return
	}
	out, err := m.write(r.Context(), r.PathValue("id"), voldb.Fields{Metadata: md, ReplaceMetadata: replace})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"metadata": out})
}

// write applies f to id's metadata in a transaction and returns the
// metadata after.
func (m *metadataRoutes) write(ctx context.Context, id string, f voldb.Fields) (map[string]string, error) {
	var out map[string]string
	err := m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		md, err := m.read(ctx, tx, id, true)
		if err != nil {
			return err
		}
		f.Now = m.cfg.Now().UTC()
		if err := m.update(ctx, tx, id, f); err != nil {
			return err
		}
		if f.ReplaceMetadata {
			out = f.Metadata
		} else {
			out = maps.Clone(md)
			if out == nil {
				out = map[string]string{}
			}
			maps.Copy(out, f.Metadata)
		}
		if f.DeleteMetadataKey != nil {
			delete(out, *f.DeleteMetadataKey)
		}
		return nil
	})
	if out == nil && err == nil {
		out = map[string]string{}
	}
	return out, err
}

func (m *metadataRoutes) show(w http.ResponseWriter, r *http.Request) {
	id, key := r.PathValue("id"), r.PathValue("key")
	md, err := m.read(r.Context(), m.cfg.DB, id, false)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	v, ok := md[key]
	if !ok {
		m.fail(w, r, m.missingKey(id, key))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
}

func (m *metadataRoutes) setOne(w http.ResponseWriter, r *http.Request) {
	id, key := r.PathValue("id"), r.PathValue("key")
	var top map[string]any
	if err := decodeBody(r, &top); err != nil {
		m.fail(w, r, err)
		return
	}
	meta, ok, err := body(top).metadata("meta")
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if !ok {
		m.fail(w, r, badRequest("Malformed request body"))
		return
	}
	if _, match := meta[key]; !match {
		m.fail(w, r, badRequest("Request body and URI mismatch"))
		return
	}
	if len(meta) > 1 {
		m.fail(w, r, badRequest("Request body contains too many items"))
		return
	}
	if _, err := m.write(r.Context(), id, voldb.Fields{Metadata: meta}); err != nil {
		m.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"meta": meta})
}

func (m *metadataRoutes) delete(w http.ResponseWriter, r *http.Request) {
	id, key := r.PathValue("id"), r.PathValue("key")
	_, err := m.write(r.Context(), id, voldb.Fields{DeleteMetadataKey: &key})
	if errors.Is(err, voldb.ErrNoMetadataKey) {
		err = m.missingKey(id, key)
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
