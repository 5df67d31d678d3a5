package volume

import (
	"context"
	"errors"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
)

// TypeStore finds volume types (the contract's: what a volume create
// needs of them).
type TypeStore interface {
	// Type finds a type by id or name visible to project (admin: all).
	// notfound convention.
	Type(ctx context.Context, q db.Querier, idOrName, project string, admin bool) (*voltypes.Type, error)
	Default(ctx context.Context, q db.Querier) (*voltypes.Type, error)
}

// QuotaStore reads a project's volume quota limits (the contract's).
type QuotaStore interface {
	// Limits are the project's hard limits by Cinder key (volumes,
	// gigabytes, snapshots, per_volume_gigabytes, volumes_<type>,
	// gigabytes_<type>, snapshots_<type>, backups, backup_gigabytes,
	// groups); -1 unlimited.
	Limits(ctx context.Context, q db.Querier, project string) (map[string]int64, error)
}

// TypeManager is what the types, extra specs and type access routes need
// of the volume types (package voltypes implements it).
type TypeManager interface {
	TypeStore
	// Get finds a type by id only, visible to project (admin: all).
	Get(ctx context.Context, q db.Querier, id, project string, admin bool) (*voltypes.Type, error)
	// List lists types: isPublic nil all, true the public ones and those
	// project has access to, false the private ones.
	List(ctx context.Context, q db.Querier, project string, isPublic *bool) ([]*voltypes.Type, error)
	Create(ctx context.Context, tx *db.Tx, n voltypes.NewType) (*voltypes.Type, error)
	Update(ctx context.Context, tx *db.Tx, id string, c voltypes.TypeChange) (*voltypes.Type, error)
	Delete(ctx context.Context, tx *db.Tx, id string, inUse voltypes.InUse) error
	SetSpecs(ctx context.Context, tx *db.Tx, typeID string, specs map[string]string) error
	DeleteSpec(ctx context.Context, tx *db.Tx, typeID, key string) error
	Access(ctx context.Context, q db.Querier, typeID string) ([]string, error)
	AddAccess(ctx context.Context, tx *db.Tx, typeID, project string) error
	RemoveAccess(ctx context.Context, tx *db.Tx, typeID, project string) error
}

// QuotaManager is what os-quota-sets, os-quota-class-sets and the limits
// need of the volume quotas (package voltypes implements it).
type QuotaManager interface {
	QuotaStore
	// Resources are every quota resource (the global ones and each
	// type's).
	Resources(ctx context.Context, q db.Querier) ([]string, error)
	// Defaults are every resource's default limit.
	Defaults(ctx context.Context, q db.Querier) (map[string]int64, error)
	// ProjectLimits are the limits a project set of its own.
	ProjectLimits(ctx context.Context, q db.Querier, project string) (map[string]int64, error)
	SetLimits(ctx context.Context, tx *db.Tx, project string, limits map[string]int64) error
	DeleteLimits(ctx context.Context, tx *db.Tx, project string) error
	ClassLimits(ctx context.Context, q db.Querier, class string) (map[string]int64, error)
	SetClassLimits(ctx context.Context, tx *db.Tx, class string, limits map[string]int64) error
	// LockQuota serialises the project's volume quota checks until tx
	// ends.
	LockQuota(ctx context.Context, tx *db.Tx, project string) error
}

// TypeUsage says whether volumes have a type (the delete of a type in use
// and the change of its extra specs are refused). The lead wires voldb.
type TypeUsage interface {
	TypeInUse(ctx context.Context, q db.Querier, typeID string) (bool, error)
}

// QuotaUsage is what a project uses of its volume quotas, by the keys of
// QuotaStore.Limits (a missing key is 0). The lead wires voldb.Usage.
type QuotaUsage interface {
	Usage(ctx context.Context, q db.Querier, project string) (map[string]int64, error)
}

// typesFault is a voltypes error as Cinder answers it; any other error
// as it is.
func typesFault(err error) error {
	var e *voltypes.Error
	if !errors.As(err, &e) {
		return err
	}
	status := http.StatusBadRequest
	msg := e.Text
	switch {
	case errors.Is(e, voltypes.ErrNotFound), errors.Is(e, voltypes.ErrSpecNotFound), errors.Is(e, voltypes.ErrAccessNotFound):
		status = http.StatusNotFound
	case errors.Is(e, voltypes.ErrExists), errors.Is(e, voltypes.ErrAccessExists):
		status = http.StatusConflict
	case errors.Is(e, voltypes.ErrInUse):
		msg = "Target volume type is still in use."
	case errors.Is(e, voltypes.ErrDefaultMisconfigured):
		status = http.StatusInternalServerError
	}
	return &httpkit.Fault{Status: status, Message: msg}
}
