// Package voltypes is the Block Storage API's volume types and quotas in
// the API cell's database (migration set "voltypes"): the types, their
// extra specs and their project access list, and the quota limits of
// projects and of quota classes, as Cinder keeps them
// (cinder/volume/volume_types.py, cinder/quota.py, cinder/db/api.py).
//
// Usage is never stored here: it is counted from the volumes themselves
// (package voldb). A check of usage against a limit runs in the
// transaction that creates, after LockQuota.
//
// Every method takes the database or transaction to work in, so callers
// can join it to their own transaction. Times are microseconds since the
// epoch, as everywhere in cellcloud.
package voltypes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
)

// MigrationSet names the schema's migration set.
const MigrationSet = "voltypes"

// DefaultTypeID and DefaultTypeName are Cinder's __DEFAULT__ type, which
// the first migration creates (Cinder's own id is random per deployment;
// this one is fixed so that every API cell agrees on it).
const (
	DefaultTypeID          = "6b9f2c6e-3d0a-4f5e-9a51-0c7d8e2f4a10"
	DefaultTypeName        = "__DEFAULT__"
	defaultTypeDescription = "Default Volume Type"
)

// DefaultQuotaClass is the quota class whose limits are every project's
// defaults (Cinder's _DEFAULT_QUOTA_NAME).
const DefaultQuotaClass = "default"

// Migrations is the schema. It lives in the API cell's database.
var Migrations = []db.Migration{
	{Version: 1, Name: "volume types, extra specs, type access, volume quotas and quota classes", SQL: `
CREATE TABLE volume_types (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	description TEXT,
	is_public INTEGER NOT NULL DEFAULT 1,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL DEFAULT 0,
	deleted_at {{bigint}} NOT NULL DEFAULT 0,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX volume_types_live_name ON volume_types (name) WHERE deleted = 0;
CREATE TABLE volume_type_extra_specs (
	volume_type_id TEXT NOT NULL REFERENCES volume_types (id),
	spec_key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (volume_type_id, spec_key)
);
CREATE TABLE volume_type_projects (
	volume_type_id TEXT NOT NULL REFERENCES volume_types (id),
	project_id TEXT NOT NULL,
	PRIMARY KEY (volume_type_id, project_id)
);
CREATE INDEX volume_type_projects_project ON volume_type_projects (project_id);
CREATE TABLE volume_quotas (
	project_id TEXT NOT NULL,
	resource TEXT NOT NULL,
	hard_limit {{bigint}} NOT NULL,
	PRIMARY KEY (project_id, resource)
);
CREATE TABLE volume_quota_classes (
	class_name TEXT NOT NULL,
	resource TEXT NOT NULL,
	hard_limit {{bigint}} NOT NULL,
	PRIMARY KEY (class_name, resource)
)`,
		// The default type, and the default quota class with Cinder's
		// defaults, as Cinder's migrations create them (the per-type
		// resources have no row: their default is unlimited).
		Go: func(ctx context.Context, tx *db.Tx) error {
			now := time.Now().UnixMicro()
			if _, err := tx.Exec(ctx, `INSERT INTO volume_types (id, name, description, is_public, created_at, updated_at)
				VALUES (?, ?, ?, 1, ?, ?)`, DefaultTypeID, DefaultTypeName, defaultTypeDescription, now, now); err != nil {
				return err
			}
			for _, r := range globalResources {
				if _, err := tx.Exec(ctx, `INSERT INTO volume_quota_classes (class_name, resource, hard_limit) VALUES (?, ?, ?)`,
					DefaultQuotaClass, r, builtinDefaults[r]); err != nil {
					return err
				}
			}
			return nil
		}},
}

// Config configures a Store.
type Config struct {
	// DefaultType is the name of the default volume type (Cinder's
	// default_volume_type); "" is __DEFAULT__.
	DefaultType string
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Store reads and writes volume types and volume quotas.
type Store struct {
	defaultName string
	now         func() time.Time
}

// New builds a store.
func New(cfg Config) (*Store, error) {
	if cfg.DefaultType == "" {
		cfg.DefaultType = DefaultTypeName
	}
	if len(cfg.DefaultType) > 255 {
		return nil, errors.New("voltypes: the default type's name is longer than 255 characters")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{defaultName: cfg.DefaultType, now: cfg.Now}, nil
}

// DefaultName is the configured default type's name.
func (s *Store) DefaultName() string { return s.defaultName }

// LockQuota serialises the volume quota checks of a project until tx
// ends (apidb's quota lock, on a key of its own): a create that checks
// usage against Limits, and SetLimits's check of a new limit against
// usage, take it first.
func LockQuota(ctx context.Context, tx *db.Tx, project string) error {
	return apidb.LockQuota(ctx, tx, "volume:"+project)
}

// Errors. Their texts are Cinder's exception messages; each not-found
// matches notfound.Err.
var (
	// ErrNotFound is the kind of every missing or invisible type.
	ErrNotFound = notfound.New("volume type not found")
	// ErrExists is a type name already used by a live type.
	ErrExists = errors.New("volume type exists")
	// ErrSpecNotFound is a missing extra spec.
	ErrSpecNotFound = notfound.New("volume type extra spec not found")
	// ErrAccessNotFound is a missing access entry.
	ErrAccessNotFound = notfound.New("volume type access not found")
	// ErrAccessExists is an access entry already there.
	ErrAccessExists = errors.New("volume type access exists")
	// ErrPublicAccess is an access change on a public type.
	ErrPublicAccess = errors.New("access change on a public volume type")
	// ErrDefaultDeletion is the delete of the default type.
	ErrDefaultDeletion = errors.New("default volume type deletion")
	// ErrOnlyType is the delete of the only type.
	ErrOnlyType = errors.New("only volume type deletion")
	// ErrInUse is the delete of a type that volumes have.
	ErrInUse = errors.New("volume type in use")
	// ErrDefaultMisconfigured is a configured default type that does not
	// exist.
	ErrDefaultMisconfigured = errors.New("default volume type misconfigured")
	// ErrBadKeys is a quota set naming resources that do not exist.
	ErrBadKeys = errors.New("bad quota keys")
)

// Error is one of the errors above with Cinder's text.
type Error struct {
	Kind error
	Text string
}

func (e *Error) Error() string { return e.Text }

// Is reports whether target is e's kind (or, for a not-found, notfound.Err).
func (e *Error) Is(target error) bool {
	return target == e.Kind || errors.Is(e.Kind, target)
}

func fail(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Text: fmt.Sprintf(format, args...)}
}

// TypeNotFound is Cinder's VolumeTypeNotFound.
func TypeNotFound(id string) error {
	return fail(ErrNotFound, "Volume type %s could not be found.", id)
}

// TypeNotFoundByName is Cinder's VolumeTypeNotFoundByName.
func TypeNotFoundByName(name string) error {
	return fail(ErrNotFound, "Volume type with name %s could not be found.", name)
}

// LockQuota is the package's LockQuota, for callers that hold a Store
// behind an interface.
func (s *Store) LockQuota(ctx context.Context, tx *db.Tx, project string) error {
	return LockQuota(ctx, tx, project)
}
