package celldb

import (
	"context"
	"encoding/json"
	"strings"
)

// GroupHosts counts, by host, this cell's live instances that joined server
// group uuid and have a host: those whose build context carries the group
// (BuildContext.Group), whatever build they came in. It is what the host
// scheduler needs for the group's policy, and it sees instances the API
// cell's copy does not know the host of yet.
//
// The group is found in the build column's JSON, so the query reads every
// live instance with a host; the compute schema has no group column.
func GroupHosts(ctx context.Context, q Querier, uuid string) (map[string]int, error) {
	rows, err := q.Query(ctx, `SELECT host, COUNT(*) FROM instances WHERE deleted = 0 AND host <> '' AND build LIKE ? ESCAPE '\'
		GROUP BY host`, groupPattern(uuid))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var h string
		var n int
		if err := rows.Scan(&h, &n); err != nil {
			return nil, err
		}
		out[h] = n
	}
	return out, rows.Err()
}

// groupPattern is the LIKE pattern that matches a build context whose
// group is uuid: `"group":{"uuid":<uuid as JSON>` (the first field of
// wire.GroupPlacement), with LIKE's wildcards escaped.
func groupPattern(uuid string) string {
	lit, _ := json.Marshal(uuid)
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(`"group":{"uuid":` + string(lit))
	return "%" + esc + "%"
}
