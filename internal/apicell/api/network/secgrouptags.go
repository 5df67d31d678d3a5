package network

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/db"
)

// securityGroupTags are a security group's tags (tags.go), a column of its
// row: only its project (and admins) see a group, so whoever sees it may
// change them.
func securityGroupTags(b *base) tagTarget {
	t := tagTarget{path: "security-groups", name: "security_groups", member: "security_group"}
	t.get = func(r *http.Request, q db.Querier, id string, _ bool, _ string) ([]string, error) {
		g, err := b.visibleGroup(r, q, id)
		if err != nil {
			return nil, t.notFoundAsTag(id, err)
		}
		return g.Tags, nil
	}
	t.set = func(r *http.Request, tx *db.Tx, id string, tags []string) error {
		_, err := sgsync.UpdateGroup(r.Context(), tx, b.cfg.Sender, httpkit.RequestID(r.Context()), id, netdb.SecurityGroupPatch{Tags: &tags}, nil, b.cfg.Now())
		return err
	}
	return t
}
