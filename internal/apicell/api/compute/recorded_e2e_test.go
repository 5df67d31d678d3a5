package compute_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestDeleteRightAfterCreate: a server deleted as soon as its create is
// answered is deleted in the compute cell that took it, and nothing of it
// stays in any cell. At two levels the API cell records the compute cell
// when it sends the build. At three, the copy names the routing cell until
// the compute cell reports, and a delete sent in that window goes on to the
// compute cell when it does.
func TestDeleteRightAfterCreate(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{2, 3} {
		t.Run(fmt.Sprintf("depth %d", depth), func(t *testing.T) {
			tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2, Depth: depth})
			var ids []string
			for i := range 12 {
				id := create(t, tr, demo, map[string]any{"name": fmt.Sprintf("quick-%d", i), "flavorRef": "1", "imageRef": imageID})
				if r := tr.Do(t, http.MethodDelete, "/v2.1/servers/"+id, demo, nil); r.Status != http.StatusNoContent {
					t.Fatalf("delete %s right after its create: %s", id, r)
				}
				ids = append(ids, id)
			}
			sc := tr.Compute(demo)
			for _, id := range ids {
				waitGone(t, sc, id)
			}
			testpoll.Eventually(t, wait, "every cell empty", func() (bool, string) {
				for _, n := range tr.Cells {
					var live, claims, ips int
					err := n.DB.QueryRow(context.Background(), `SELECT (SELECT COUNT(*) FROM instances WHERE deleted = 0),
						(SELECT COUNT(*) FROM claims), (SELECT COUNT(*) FROM fixed_ips WHERE instance_uuid IS NOT NULL)`).Scan(&live, &claims, &ips)
					if err != nil {
						return false, err.Error()
					}
					if live+claims+ips > 0 {
						return false, fmt.Sprintf("%s holds %d live instances, %d claims, %d addresses", n.Config().Cell, live, claims, ips)
					}
				}
				return true, ""
			})
		})
	}
}
