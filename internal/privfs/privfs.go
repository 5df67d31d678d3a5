// Package privfs keeps a cell's files private to the user that runs it:
// data directories 0700, files 0600. The databases hold password hashes
// and users' data, the broker's store holds messages with user data, and
// the openrc files hold passwords.
package privfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The modes of what cellcloud creates.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// open is the permission bits that let a group or others in.
const open fs.FileMode = 0o077

// MkdirAll creates dir (and its missing parents) with DirMode, and takes
// the group's and others' permissions off dir itself when it already
// existed. Parents that existed are left alone.
func MkdirAll(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return err
	}
	return tighten(dir)
}

// Tighten takes the group's and others' permissions off root and every
// directory and regular file below it, so that a tree written by an
// older version (0755 directories, 0644 files) becomes private. Symbolic
// links are not followed, and entries that vanish meanwhile are skipped.
func Tighten(root string) error {
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		return tighten(path)
	})
	if err != nil {
		return fmt.Errorf("private files: %w", err)
	}
	return nil
}

// TightenFile tightens one file if it exists.
func TightenFile(path string) error {
	err := tighten(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// CreateFile creates an empty file with FileMode unless path exists, so
// that what is written there later (SQLite copies its database file's
// mode to its -wal and -shm files) starts private.
func CreateFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

func tighten(path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return err
	}
	m := st.Mode()
	if m&fs.ModeSymlink != 0 || m.Perm()&open == 0 {
		return nil
	}
	if err := os.Chmod(path, m.Perm()&^open); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
