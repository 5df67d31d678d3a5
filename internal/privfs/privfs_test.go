package privfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestTightenMakesATreePrivate: 0755 directories and 0644 files (as an
// older version left them) become 0700 and 0600; a symbolic link's
// target outside the tree is left alone.
func TestTightenMakesATreePrivate(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cell.db", "a/x", "a/b/y"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{root, filepath.Join(root, "a"), filepath.Join(root, "a", "b"), filepath.Join(root, "cell.db")} {
		if err := os.Chmod(p, perm(t, p)|0o055); err != nil {
			t.Fatal(err)
		}
	}
	if err := Tighten(root); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", "a", "a/b"} {
		if got := perm(t, filepath.Join(root, d)); got != DirMode {
			t.Errorf("directory %q has mode %v, want %v", d, got, DirMode)
		}
	}
	for _, f := range []string{"cell.db", "a/x", "a/b/y"} {
		if got := perm(t, filepath.Join(root, f)); got != FileMode {
			t.Errorf("file %s has mode %v, want %v", f, got, FileMode)
		}
	}
	if got := perm(t, outside); got != 0o644 {
		t.Errorf("the target of a link was changed to %v", got)
	}
	if err := Tighten(filepath.Join(root, "missing")); err != nil {
		t.Errorf("Tighten of a missing tree: %v", err)
	}
}

// TestMkdirAllAndCreateFile: new directories are 0700 and an existing
// one is tightened; CreateFile makes a 0600 file and leaves an existing
// file's contents.
func TestMkdirAllAndCreateFile(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "new", "dir")
	if err := MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if got := perm(t, d); got != DirMode {
			t.Errorf("new directory %s has mode %v, want %v", d, got, DirMode)
		}
	}
	old := filepath.Join(base, "old")
	if err := os.Mkdir(old, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(old, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(old); err != nil {
		t.Fatal(err)
	}
	if got := perm(t, old); got != DirMode {
		t.Errorf("existing directory has mode %v after MkdirAll, want %v", got, DirMode)
	}
	f := filepath.Join(dir, "cell.db")
	if err := CreateFile(f); err != nil {
		t.Fatal(err)
	}
	if got := perm(t, f); got != FileMode {
		t.Errorf("new file has mode %v, want %v", got, FileMode)
	}
	if err := os.WriteFile(f, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CreateFile(f); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f); string(b) != "keep" {
		t.Errorf("CreateFile changed an existing file to %q", b)
	}
}
