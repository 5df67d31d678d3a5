package compute

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/cellcloud/cellcloud/internal/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/wire"
)

// resize is the resize action: a new flavor the caller may use, not the
// one the server has.
func (a *API) resize(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	ctx := r.Context()
	c := caller(ctx)
	var p struct {
		FlavorRef  json.RawMessage `json:"flavorRef"`
		DiskConfig string          `json:"OS-DCF:diskConfig"`
	}
	if err := strictDecode(arg, &p); err != nil || len(p.FlavorRef) == 0 {
		a.fail(w, r, bad("Invalid input for field/attribute resize. 'flavorRef' is a required property"))
		return
	}
	var ref string
	if err := json.Unmarshal(p.FlavorRef, &ref); err != nil {
		var n int64
		if json.Unmarshal(p.FlavorRef, &n) != nil || n <= 0 {
			a.fail(w, r, bad("Invalid input for field/attribute flavorRef. Value: %s. is not valid", p.FlavorRef))
			return
		}
		ref = strconv.FormatInt(n, 10)
	}
	fd, err := apidb.GetFlavorDetail(ctx, a.cfg.DB, ref, apidb.FlavorViewer{ProjectID: c.ProjectID, Admin: c.Admin})
	if errors.Is(err, apidb.ErrNotFound) || (err == nil && fd.Disabled) {
		a.fail(w, r, bad("Unable to find flavor %s", ref))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if fd.ID == in.FlavorID {
		a.fail(w, r, bad("When resizing, instances must change flavor!"))
		return
	}
	params, _ := json.Marshal(wire.ActionParams{Flavor: &fd.Flavor})
	a.startAction(w, r, in, "resize", params, nil)
}

// rebuild re-creates the server from an image (the same or another) on its
// host; name and metadata given with it apply at once. It answers 202 with
// the server, as Nova does.
func (a *API) rebuild(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	ctx := r.Context()
	var p struct {
		ImageRef    string            `json:"imageRef"`
		Name        *string           `json:"name"`
		AdminPass   string            `json:"adminPass"`
		Metadata    map[string]string `json:"metadata"`
		Preserve    *bool             `json:"preserve_ephemeral"`
		AccessIPv4  string            `json:"accessIPv4"`
		AccessIPv6  string            `json:"accessIPv6"`
		DiskConfig  string            `json:"OS-DCF:diskConfig"`
		Personality []any             `json:"personality"`
	}
	if err := strictDecode(arg, &p); err != nil {
		a.fail(w, r, bad("Invalid input for field/attribute rebuild: %v", jsonFieldError(err)))
		return
	}
	if p.ImageRef == "" {
		a.fail(w, r, bad("Invalid input for field/attribute rebuild. 'imageRef' is a required property"))
		return
	}
	if p.Name != nil && (*p.Name == "" || len(*p.Name) > 255) {
		a.fail(w, r, bad("Invalid input for field/attribute name. Value: %s. must be 1 to 255 characters", *p.Name))
		return
	}
	if err := a.checkImage(ctx, p.ImageRef, in.Flavor); err != nil {
		a.fail(w, r, err)
		return
	}
	if p.Name != nil || p.Metadata != nil {
		err := a.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			return apidb.Rename(ctx, tx, in.UUID, p.Name, p.Metadata, a.cfg.Now())
		})
		if err != nil {
			a.fail(w, r, err)
			return
		}
	}
	params, _ := json.Marshal(wire.ActionParams{ImageRef: p.ImageRef})
	pass := p.AdminPass
	if pass == "" {
		pass = randomString(12)
	}
	rec := &statusRecorder{ResponseWriter: w}
	a.startAction(rec, r, in, "rebuild", params, nil)
	if rec.status != http.StatusAccepted {
		return
	}
	cur, err := apidb.Get(ctx, a.cfg.DB, in.UUID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v := a.serverView(r, cur)
	v["adminPass"] = pass
	writeJSON(w, http.StatusAccepted, map[string]any{"server": v})
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
