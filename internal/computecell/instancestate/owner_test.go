package instancestate_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// writers are celldb's functions that write an instance row or a claim:
// only this package calls them (and celldb's own tests).
var writers = map[string]bool{
	"Insert": true, "Update": true, "Set": true, "UpdateClaimed": true, "Purge": true, "ClearAction": true,
	"Claim": true, "ClaimZone": true, "Release": true, "MoveClaim": true,
}

// computeCell are the packages of a compute cell that must not send an
// instance_update themselves.
var computeCell = map[string]bool{
	"celldb": true, "compute": true, "conductor": true, "hostops": true, "hostsched": true,
	"instanceops": true, "netdb": true, "network": true, "scheduler": true,
}

// TestOnlyTheOwnerWritesInstances guards the rule of this package: no
// other code writes a compute cell's instance rows or claims through
// celldb, and no compute cell package sends an instance_update.
func TestOnlyTheOwnerWritesInstances(t *testing.T) {
	root := filepath.Join("..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		pkg := strings.Split(filepath.ToSlash(rel), "/")[0]
		if pkg == "instancestate" {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			switch {
			case x.Name == "celldb" && writers[sel.Sel.Name]:
				t.Errorf("%s: calls celldb.%s; a compute cell's instances and claims are written through instancestate", fset.Position(sel.Pos()), sel.Sel.Name)
			case x.Name == "wire" && sel.Sel.Name == "MethodInstanceUpdate" && computeCell[pkg]:
				t.Errorf("%s: uses wire.MethodInstanceUpdate; a compute cell sends instance updates through instancestate", fset.Position(sel.Pos()))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
