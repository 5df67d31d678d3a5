package testtree_test

import (
	"net/http"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

func TestStart(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{})
	r := tr.Do(t, http.MethodGet, "/", "", nil)
	if r.Status != 200 {
		t.Fatalf("GET /: %s", r)
	}
	if len(tr.Cells) != 2 {
		t.Fatalf("%d cells", len(tr.Cells))
	}
}
