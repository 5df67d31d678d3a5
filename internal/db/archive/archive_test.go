package archive_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/db/archive"
)

var plan = archive.Merge(archive.Plan{Tables: []archive.Table{
	{Name: "parents", Key: "id", Deleted: "deleted <> 0", Time: "deleted_at", Children: []archive.Child{
		{Name: "kids", Column: "parent_id", Key: "id", Children: []archive.Child{{Name: "grandkids", Column: "kid_id", Key: "id"}}},
		{Name: "links", Column: "parent_id", Drop: true},
		{Name: "shared", Column: "parent_id", Key: "id"},
	}},
}}, archive.Plan{Tables: []archive.Table{
	{Name: "others", Key: "id", Deleted: "deleted <> 0", Time: "updated_at", Children: []archive.Child{{Name: "shared", Column: "other_id", Key: "id"}}},
	{Name: "log", Key: "id", Time: "updated_at", Option: "log"},
}, Expire: []archive.Expire{{Name: "tokens", Key: "hash", Time: "expires_at"}}})

// Shadow tables: dependents before their parents, each once, none for a
// dropped dependent or an expiring table.
func TestShadowTables(t *testing.T) {
	got := plan.ShadowTables()
	want := []string{"grandkids", "kids", "shared", "parents", "others", "log"}
	if !slices.Equal(got, want) {
		t.Errorf("ShadowTables = %v, want %v", got, want)
	}
	if len(plan.Expire) != 1 {
		t.Errorf("Merge lost the expiring table: %+v", plan.Expire)
	}
}

func TestShadowSQL(t *testing.T) {
	sql := archive.ShadowSQL(plan)
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS shadow_grandkids AS SELECT * FROM grandkids WHERE 1 = 0;",
		"CREATE INDEX IF NOT EXISTS shadow_parents_deleted_at ON shadow_parents (deleted_at);",
		"CREATE INDEX IF NOT EXISTS shadow_parents_id ON shadow_parents (id);",
		"CREATE INDEX IF NOT EXISTS shadow_grandkids_kid_id ON shadow_grandkids (kid_id);",
		"CREATE INDEX IF NOT EXISTS shadow_shared_other_id ON shadow_shared (other_id);",
		"CREATE INDEX IF NOT EXISTS archive_parents ON parents (deleted_at, id) WHERE deleted <> 0;",
		"CREATE INDEX IF NOT EXISTS archive_log ON log (updated_at, id);",
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("ShadowSQL lacks %q:\n%s", want, sql)
		}
	}
	for _, not := range []string{"shadow_links", "shadow_tokens"} {
		if strings.Contains(sql, not) {
			t.Errorf("ShadowSQL makes %s, which is dropped or expires:\n%s", not, sql)
		}
	}
	if n := strings.Count(sql, "CREATE TABLE IF NOT EXISTS shadow_shared "); n != 1 {
		t.Errorf("shadow_shared made %d times", n)
	}
}
