package compute

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apidb"
	"github.com/cellcloud/cellcloud/internal/wire"
)

func flavorView(base, project string, f wire.Flavor, detail bool) map[string]any {
	v := map[string]any{"id": f.ID, "name": f.Name, "links": links(base, project, "flavors", f.ID)}
	if !detail {
		return v
	}
	swap := any("")
	if f.SwapMB > 0 {
		swap = f.SwapMB
	}
	v["vcpus"] = f.VCPUs
	v["ram"] = f.RAMMB
	v["disk"] = f.RootGB
	v["OS-FLV-EXT-DATA:ephemeral"] = f.EphemeralGB
	v["swap"] = swap
	v["rxtx_factor"] = 1.0
	v["os-flavor-access:is_public"] = true
	v["OS-FLV-DISABLED:disabled"] = false
	return v
}

func (a *API) listFlavors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fs, err := apidb.ListFlavors(r.Context(), a.cfg.DB)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		base, project := baseURL(r), caller(r.Context()).ProjectID
		out := make([]any, 0, len(fs))
		for _, f := range fs {
			out = append(out, flavorView(base, project, f, detail))
		}
		writeJSON(w, http.StatusOK, map[string]any{"flavors": out})
	}
}

func (a *API) showFlavor(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f, err := apidb.GetFlavor(r.Context(), a.cfg.DB, id)
	if errors.Is(err, apidb.ErrNotFound) {
		writeFault(w, http.StatusNotFound, fmt.Sprintf("Flavor %s could not be found.", id))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flavor": flavorView(baseURL(r), caller(r.Context()).ProjectID, f, true)})
}
