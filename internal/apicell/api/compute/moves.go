package compute

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// movesHandler is the server actions that move or remake a server: resize,
// rebuild and createImage.
type movesHandler struct {
	*base
	servers *serversHandler
	actions *actionsHandler
	quota   *quotaChecker
}

func (h *movesHandler) register(rt *router) {
	rt.action("resize", h.resize)
	rt.action("rebuild", h.rebuildUnlocked)
	rt.action("createImage", h.createImage)
}

// rebuildUnlocked is rebuild, which renames before it starts the action:
// it refuses a locked server first, so that nothing is written.
func (h *movesHandler) rebuildUnlocked(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	if err := checkLocked(r.Context(), in); err != nil {
		h.fail(w, r, err)
		return
	}
	h.rebuild(w, r, in, arg)
}

// statusRecorder holds back a 202 without body so the caller can write its
// own answer; anything else (an error) goes through.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	if code != http.StatusAccepted {
		s.ResponseWriter.WriteHeader(code)
	}
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// resize is the resize action: a new flavor the caller may use, not the
// one the server has.
func (h *movesHandler) resize(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	var p struct {
		FlavorRef  json.RawMessage `json:"flavorRef"`
		DiskConfig string          `json:"OS-DCF:diskConfig"`
	}
	if err := strictDecode(arg, &p); err != nil || len(p.FlavorRef) == 0 {
		h.fail(w, r, bad("Invalid input for field/attribute resize. 'flavorRef' is a required property"))
		return
	}
	var ref string
	if err := json.Unmarshal(p.FlavorRef, &ref); err != nil {
		var n int64
		if json.Unmarshal(p.FlavorRef, &n) != nil || n <= 0 {
			h.fail(w, r, bad("Invalid input for field/attribute flavorRef. Value: %s. is not valid", p.FlavorRef))
			return
		}
		ref = strconv.FormatInt(n, 10)
	}
	fd, err := apidb.GetFlavorDetail(ctx, h.cfg.DB, ref, apidb.FlavorViewer{ProjectID: c.ProjectID, Admin: c.Admin})
	if errors.Is(err, apidb.ErrNotFound) || (err == nil && fd.Disabled) {
		h.fail(w, r, bad("Unable to find flavor %s", ref))
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if fd.ID == in.FlavorID {
		h.fail(w, r, bad("When resizing, instances must change flavor!"))
		return
	}
	// Nova: a resize sets auto_disk_config to what it asks for, MANUAL
	// when it asks nothing; AUTO is refused for an image that disables it.
	if p.DiskConfig != "" {
		if err := checkEnum("OS-DCF:diskConfig", p.DiskConfig, "AUTO", "MANUAL"); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	auto := p.DiskConfig == "AUTO"
	if auto {
		img, err := (&imagedb.Store{}).GetWithoutDetails(ctx, h.cfg.DB, in.ImageRef)
		if err == nil {
			_, err = autoDiskConfig(p.DiskConfig, img.ID, img.AutoDiskConfig)
		}
		if err != nil && !errors.Is(err, imagedb.ErrNotFound) {
			h.fail(w, r, err)
			return
		}
	}
	params, _ := json.Marshal(wire.ActionParams{Flavor: &fd.Flavor})
	h.actions.startActionWith(w, r, in, "resize", params, nil, func(ctx context.Context, tx *db.Tx) error {
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if err := h.quota.checkResize(ctx, tx, cur, fd.Flavor); err != nil {
			return err
		}
		if cur.AutoDiskConfig == auto {
			return nil
		}
		return apidb.UpdateServer(ctx, tx, in.UUID, apidb.ServerUpdate{AutoDiskConfig: &auto}, h.cfg.Now())
	})
}

// createImage is the createImage action: a queued private image in the
// API cell's image store, which the instance's cell fills with a snapshot.
// It answers 202 with the image's Location (and, from 2.45, its id).
func (h *movesHandler) createImage(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	p, err := readCreateImage(arg)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	vb, err := isVolumeBacked(ctx, h.cfg.DB, in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if vb {
		h.createImageVolumeBacked(w, r, in, p)
		return
	}
	spec := vmstate.Actions["create_image"]
	id := uuid.NewString()
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if err := spec.Check(cur.UUID, cur.VMState, cur.TaskState); err != nil {
			return fault(http.StatusConflict, err.Error())
		}
		if cur.Cell == "" {
			return conflict("Instance %s is not ready yet", cur.UUID)
		}
		img := snapshotImage(ctx, tx, cur, id, p.name, c.ProjectID, p.metadata)
		if err := (&imagedb.Store{}).Create(ctx, tx, img); err != nil {
			return err
		}
		if err := apidb.SetTaskState(ctx, tx, cur.UUID, spec.Task, h.cfg.Now()); err != nil {
			return err
		}
		params, _ := json.Marshal(wire.ActionParams{ImageRef: id})
		return h.cfg.Sender.Send(ctx, tx, cur.Cell, wire.MethodInstanceAction, httpkit.RequestID(ctx), &wire.InstanceAction{
			UUID: cur.UUID, Action: "create_image", Params: params, UserID: c.UserID, ProjectID: c.ProjectID})
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// From 2.45 the image id in the body, without the Location header.
	if apiVersion(ctx).AtLeast(Version{2, 45}) {
		httpkit.WriteJSON(w, http.StatusAccepted, map[string]any{"image_id": id})
		return
	}
	w.Header().Set("Location", httpkit.Origin(r)+"/image/v2/images/"+id)
	w.WriteHeader(http.StatusAccepted)
}

// createImageArgs are a checked createImage action.
type createImageArgs struct {
	name     string
	metadata map[string]string
}

// readCreateImage checks a createImage action's value as Nova's
// create_image schema does: an object with a name (parameter_types.name)
// and optional metadata (parameter_types.metadata: keys of 1 to 255 of
// [a-zA-Z0-9-_:. ], string values of at most 255 characters), nothing else.
func readCreateImage(arg json.RawMessage) (*createImageArgs, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(arg)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, bad("Invalid input for field/attribute createImage. Value: %s. is not valid JSON", abbreviate(string(arg)))
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("createImage", v, "%s is not of type 'object'", pyRepr(v))
	}
	if err := noOtherKeys(m, "createImage", "name", "metadata"); err != nil {
		return nil, err
	}
	name, ok := m["name"]
	if !ok {
		return nil, invalid("createImage", m, "'name' is a required property")
	}
	if err := checkName("name", name); err != nil {
		return nil, err
	}
	out := &createImageArgs{name: name.(string)}
	if md, ok := m["metadata"]; ok {
		meta, err := checkMetadata("metadata", md)
		if err != nil {
			return nil, err
		}
		out.metadata = meta
	}
	return out, nil
}
