package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pollHome is the one package whose tests may poll by hand: the polling
// helper itself.
const pollHome = "internal/testpoll"

// TestOnePollingHelper fails when a test file outside internal/testpoll
// waits for a condition in a loop of its own (time.Sleep, or a bare
// <-time.After, inside a for loop): such a function is another polling
// helper, and the tests have one, testpoll.Eventually.
func TestOnePollingHelper(t *testing.T) {
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
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			if rel, _ := filepath.Rel(root, path); filepath.ToSlash(rel) == pollHome {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		scanned++
		for _, p := range pollLoops(fset, f) {
			rel, _ := filepath.Rel(root, p.pos.Filename)
			t.Errorf("%s:%d: %s waits in a loop with %s: use testpoll.Eventually, the tests' one polling helper",
				filepath.ToSlash(rel), p.pos.Line, p.fn, p.how)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 50 {
		t.Fatalf("scanned only %d test files under %s", scanned, root)
	}
}

// TestPollLoopsFinds keeps the scan honest: it finds the hand-written
// polling loops and passes the waits that are not polling.
func TestPollLoopsFinds(t *testing.T) {
	const src = `package p

import (
	"testing"
	tm "time"
)

func sleeps(cond func() bool) {
	for !cond() {
		tm.Sleep(tm.Millisecond)
	}
}

func deadline(t *testing.T, cond func() bool) {
	deadline := tm.Now().Add(tm.Second)
	for tm.Now().Before(deadline) {
		if cond() {
			return
		}
		<-tm.After(10 * tm.Millisecond)
	}
	t.Fatal("timeout")
}

func (x *T) method(cond func() bool) {
	go func() {
		for range 3 {
			if cond() {
				break
			}
			tm.Sleep(1)
		}
	}()
}

var lit = func() {
	for {
		tm.Sleep(1)
	}
}

func post(cond func() bool) {
	for ; !cond(); tm.Sleep(1) {
	}
}

func inSelect(done chan int) {
	for {
		select {
		case <-done:
			return
		default:
			tm.Sleep(1)
		}
	}
}

// Not polling: a single pause, a timeout on a channel in a loop, a loop
// that defines (but does not run) a function that sleeps.
func fine(done chan int) {
	tm.Sleep(1)
	for range 2 {
		select {
		case <-done:
		case <-tm.After(tm.Second):
		}
		f := func() { tm.Sleep(1) }
		_ = f
	}
}

type T struct{}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p_test.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pollLoops(fset, f) {
		got = append(got, fmt.Sprintf("%d %s %s", p.pos.Line, p.fn, p.how))
	}
	want := []string{
		"10 sleeps time.Sleep",
		"20 deadline <-time.After",
		"31 method time.Sleep",
		"38 lit time.Sleep",
		"43 post time.Sleep",
		"53 inSelect time.Sleep",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// pollLoop is a wait inside a loop.
type pollLoop struct {
	pos token.Position
	fn  string // the top-level function (or variable) it is in
	how string // "time.Sleep" or "<-time.After"
}

// pollLoops finds, in f, the calls to time.Sleep and the bare receives
// from time.After that sit in a loop of the function they are in (a
// function literal starts afresh: a loop around its definition is not a
// loop around its body).
func pollLoops(fset *token.FileSet, f *ast.File) []pollLoop {
	timePkg := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "time" {
			timePkg = "time"
			if imp.Name != nil {
				timePkg = imp.Name.Name
			}
		}
	}
	if timePkg == "" || timePkg == "_" {
		return nil
	}
	isTimeCall := func(e ast.Expr, name string) bool {
		call, ok := e.(*ast.CallExpr)
		if !ok {
			return false
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != name {
			return false
		}
		id, ok := sel.X.(*ast.Ident)
		return ok && id.Name == timePkg
	}
	var out []pollLoop
	var walk func(n ast.Node, fn string, inLoop bool)
	walk = func(n ast.Node, fn string, inLoop bool) {
		ast.Inspect(n, func(c ast.Node) bool {
			switch c := c.(type) {
			case *ast.FuncLit:
				walk(c.Body, fn, false)
				return false
			case *ast.ForStmt:
				if c.Post != nil {
					walk(c.Post, fn, true)
				}
				walk(c.Body, fn, true)
				return false
			case *ast.RangeStmt:
				walk(c.Body, fn, true)
				return false
			case *ast.CommClause:
				// A select's receive from time.After is a timeout on the
				// other cases, not a pause.
				for _, s := range c.Body {
					walk(s, fn, inLoop)
				}
				return false
			case *ast.ExprStmt:
				if !inLoop {
					return true
				}
				if isTimeCall(c.X, "Sleep") {
					out = append(out, pollLoop{fset.Position(c.Pos()), fn, "time.Sleep"})
					return false
				}
				if u, ok := c.X.(*ast.UnaryExpr); ok && u.Op == token.ARROW && isTimeCall(u.X, "After") {
					out = append(out, pollLoop{fset.Position(c.Pos()), fn, "<-time.After"})
					return false
				}
			}
			return true
		})
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Body != nil {
				walk(d.Body, d.Name.Name, false)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				if vs, ok := s.(*ast.ValueSpec); ok && len(vs.Names) > 0 {
					walk(vs, vs.Names[0].Name, false)
				}
			}
		}
	}
	return out
}
