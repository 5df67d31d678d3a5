package image

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/privfs"
)

// fileStore keeps image data, one file per image named by its id, in one
// directory. Data arrives in a temporary file in the same directory that
// is renamed into place only when complete, so a file named by an id is
// always whole.
type fileStore struct {
	dir string
}

// tmpPrefix starts the names of files still being received.
const tmpPrefix = ".upload-"

// errTooLarge is data over the upload limit.
var errTooLarge = errors.New("image data too large")

// readError is a failure to read the data from the client (as opposed to
// a failure to store it).
type readError struct{ err error }

func (e *readError) Error() string { return "reading image data: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// trackedReader remembers the read error it passed on.
type trackedReader struct {
	r   io.Reader
	err error
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

func newFileStore(dir string) (*fileStore, error) {
	// Private: 0700, and the data files 0600 (CreateTemp's mode), also
	// those an older version left readable by others.
	if err := privfs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if err := privfs.Tighten(dir); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return &fileStore{dir: abs}, nil
}

// path is the data file of image id. Ids are UUIDs: they come from the
// database, never straight from a URL.
func (s *fileStore) path(id string) string { return filepath.Join(s.dir, id) }

// receive copies r into a new temporary file, hashing it on the way, and
// syncs it. More than limit bytes is errTooLarge; a failure to read r is
// a *readError. On any error nothing is left behind.
func (s *fileStore) receive(r io.Reader, limit int64) (tmp string, d imagedb.Data, err error) {
	f, err := os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return "", d, fmt.Errorf("image store: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	sum, sha := md5.New(), sha512.New()
	src := &trackedReader{r: r}
	n, err := io.Copy(io.MultiWriter(f, sum, sha), io.LimitReader(src, limit+1))
	if src.err != nil {
		return "", d, &readError{src.err}
	}
	if err != nil {
		return "", d, fmt.Errorf("image store: %w", err)
	}
	if n > limit {
		return "", d, errTooLarge
	}
	if err := f.Sync(); err != nil {
		return "", d, fmt.Errorf("image store: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", d, fmt.Errorf("image store: %w", err)
	}
	return f.Name(), imagedb.Data{Size: n, Checksum: hex.EncodeToString(sum.Sum(nil)), HashAlgo: imagedb.HashAlgo,
		HashValue: hex.EncodeToString(sha.Sum(nil))}, nil
}

// commit moves a received file into place as the data of image id.
func (s *fileStore) commit(tmp, id string) error {
	if err := os.Rename(tmp, s.path(id)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("image store: %w", err)
	}
	return s.syncDir()
}

// syncDir makes renames and removals in the directory durable.
func (s *fileStore) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("image store: sync %s: %w", s.dir, err)
	}
	return nil
}

// remove deletes the data of image id; data that is not there is fine.
func (s *fileStore) remove(id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image store: %w", err)
	}
	return nil
}

func (s *fileStore) open(id string) (*os.File, error) { return os.Open(s.path(id)) }

// size is the size of the data of image id, or -1 when there is none.
func (s *fileStore) size(id string) int64 {
	st, err := os.Stat(s.path(id))
	if err != nil || !st.Mode().IsRegular() {
		return -1
	}
	return st.Size()
}

// entries lists the ids that have data files and the temporary files left
// by uploads that never finished. Other files are not the store's and are
// left alone.
func (s *fileStore) entries() (ids, tmps []string, err error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("image store: %w", err)
	}
	for _, de := range des {
		switch name := de.Name(); {
		case !de.Type().IsRegular():
		case strings.HasPrefix(name, tmpPrefix):
			tmps = append(tmps, filepath.Join(s.dir, name))
		case uuidRE.MatchString(name) && name == imagedb.NormalizeID(name):
			ids = append(ids, name)
		}
	}
	return ids, tmps, nil
}

// recoverStore undoes what a stopped process left half done: images left
// saving go back to queued, temporary files go, and so do data files that
// no active image owns.
func (a *API) recoverStore(ctx context.Context) error {
	var reset []string
	err := a.b.cfg.DB.InTx(ctx, func(tx *db.Tx) (err error) {
		reset, err = a.b.store.ResetUploads(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	if len(reset) > 0 {
		a.b.log.Warn("uploads left unfinished by a previous process; images back to queued", "images", reset)
	}
	ids, tmps, err := a.b.files.entries()
	if err != nil {
		return err
	}
	for _, t := range tmps {
		if err := os.Remove(t); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("image store: %w", err)
		}
	}
	removed := 0
	for _, id := range ids {
		keep, err := a.b.store.HasDataFile(ctx, a.b.cfg.DB, id)
		if err != nil {
			return err
		}
		if !keep {
			if err := a.b.files.remove(id); err != nil {
				return err
			}
			removed++
		}
	}
	if len(tmps)+removed > 0 {
		a.b.log.Info("image store cleaned", "partial_uploads", len(tmps), "orphaned_files", removed)
		return a.b.files.syncDir()
	}
	return nil
}
