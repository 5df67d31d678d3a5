package up_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/up"
)

// modesOpenToOthers walks dir and names each directory or regular file
// that its group or others may read, write or enter, and reports whether
// it saw the files that matter: SQLite databases and their -wal files,
// the broker's store, the image data and the openrc files.
func modesOpenToOthers(t *testing.T, dir string) (open []string, seen map[string]bool) {
	t.Helper()
	seen = map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a file the broker or SQLite removed meanwhile
		}
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		for _, k := range []string{"cell.db", "cell.db-wal", "broker", "images", "openrc-admin", "openrc-demo"} {
			if filepath.Base(rel) == k {
				seen[k] = true
			}
		}
		if info.Mode().Perm()&0o077 != 0 {
			open = append(open, rel+" "+info.Mode().Perm().String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return open, seen
}

// TestDataIsPrivate: everything a tree writes under its data directory
// (databases with their -wal and -shm files, the brokers' stores, the
// image data, the openrc files) is 0600 in 0700 directories, and a data
// directory an older version left open (0755, 0644) is tightened at start.
func TestDataIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	log := testtree.Logger(t, slog.LevelWarn)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := up.Options{DataDir: dir, Cells: 1, HostsPerCell: 1, Listen: "127.0.0.1:0", ReportInterval: 200 * time.Millisecond}
	check := func(when string) {
		t.Helper()
		open, seen := modesOpenToOthers(t, dir)
		if len(open) > 0 {
			t.Errorf("%s, open to others: %s", when, strings.Join(open, ", "))
		}
		for _, k := range []string{"cell.db", "cell.db-wal", "broker", "images", "openrc-admin", "openrc-demo"} {
			if !seen[k] {
				t.Errorf("%s: no %s under the data directory, so its mode went unchecked", when, k)
			}
		}
	}

	tr, err := up.Start(ctx, opts, log)
	if err != nil {
		t.Fatal(err)
	}
	check("after a first start")
	tr.Shutdown(ctx)

	// As an older version left it: directories 0755, files 0644.
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Chmod(path, 0o755)
		case d.Type().IsRegular():
			return os.Chmod(path, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tr, err = up.Start(ctx, opts, log)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(ctx)
	check("after a restart on a data directory left open")
}
