package network

import (
	"errors"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// portTags are a port's tags (tags.go), a column of its row: whoever sees
// the port (its project, admins) may change them.
func portTags(b *base) tagTarget {
	t := tagTarget{path: "ports", name: "ports", member: "port"}
	h := &portsHandler{base: b}
	t.get = func(r *http.Request, q db.Querier, id string, _ bool, _ string) ([]string, error) {
		p, err := h.visiblePort(r, q, id)
		var f *httpkit.Fault
		if errors.As(err, &f) && f.Status == http.StatusNotFound {
			return nil, t.notFound(id)
		}
		if err != nil {
			return nil, t.notFoundAsTag(id, err)
		}
		return p.Tags, nil
	}
	t.set = func(r *http.Request, tx *db.Tx, id string, tags []string) error {
		_, err := netdb.UpdatePort(r.Context(), tx, id, netdb.PortPatch{Tags: &tags}, nil, b.cfg.Now())
		return err
	}
	return t
}
