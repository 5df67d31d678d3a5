package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// celldbWriters are celldb's functions that write an instance row or a
// claim: only internal/computecell/instancestate calls them (and celldb's
// own tests).
var celldbWriters = map[string]bool{
	"Insert": true, "InsertStarting": true, "Update": true, "Set": true, "UpdateState": true, "UpdateStateQuery": true, "UpdateStateFrom": true,
	"UpdateClaimedQuery": true, "UpdateClaimedFrom": true, "PlaceAll": true, "Purge": true, "ClearAction": true,
	"Claim": true, "ClaimZone": true, "Release": true, "MoveClaim": true,
}

const stateOwner = "internal/computecell/instancestate"

// TestOnlyTheOwnerWritesInstances guards the one owner of an instance's
// state in a compute cell: no code but instancestate writes a compute
// cell's instance rows or claims through celldb, and no compute cell code
// but instancestate sends an instance_update.
func TestOnlyTheOwnerWritesInstances(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	root := strings.TrimSpace(string(out))
	fset := token.NewFileSet()
	scanned := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || rel == stateOwner) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		scanned++
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, v := range ownerViolations(f, strings.HasPrefix(rel, "internal/computecell/")) {
			t.Errorf("%s: %s", fset.Position(v.pos), v.why)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 100 {
		t.Fatalf("scanned only %d files under %s", scanned, root)
	}
}

type violation struct {
	pos token.Pos
	why string
}

// ownerViolations are the places in f that write instance state or send
// an instance_update behind the owner's back; computeCell says whether f is
// a compute cell's code.
func ownerViolations(f *ast.File, computeCell bool) []violation {
	var out []violation
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
		case x.Name == "celldb" && celldbWriters[sel.Sel.Name]:
			out = append(out, violation{sel.Pos(), "calls celldb." + sel.Sel.Name + "; a compute cell's instances and claims are written through instancestate"})
		case computeCell && x.Name == "wire" && sel.Sel.Name == "MethodInstanceUpdate":
			out = append(out, violation{sel.Pos(), "uses wire.MethodInstanceUpdate; a compute cell sends instance updates through instancestate"})
		}
		return true
	})
	return out
}

// TestOwnerViolationsFinds checks the scan on a planted violation of each
// kind, and on code that keeps the rule.
func TestOwnerViolationsFinds(t *testing.T) {
	const src = `package p
func f() {
	celldb.Update(ctx, tx, id, nil, c, now)     // a write behind the owner's back
	celldb.ClaimZone(ctx, tx, id, h, f, now)    // a claim behind the owner's back
	_ = wire.MethodInstanceUpdate               // an update sent behind the owner's back
	celldb.Get(ctx, tx, id)                     // a read is fine
	owner.Transition(ctx, tx, id, nil, c)       // the owner is fine
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ownerViolations(f, true); len(got) != 3 {
		t.Errorf("in a compute cell: %d violations, want 3: %v", len(got), got)
	}
	if got := ownerViolations(f, false); len(got) != 2 {
		t.Errorf("outside a compute cell (the API cell handles instance_update): %d violations, want 2: %v", len(got), got)
	}
}
