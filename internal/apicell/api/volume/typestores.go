package volume

import (
	"context"

	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
)

// The volume types and quotas as the volumes use them (the contract's
// TypeStore and QuotaStore). The types branch defines this file in full
// (the managers of the type and quota routes): on a merge, take its
// typestores.go over this one; the names and methods here are its own.

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

// TypeManager is what the routes need of the volume types (here only the
// TypeStore; the types branch adds the management).
type TypeManager interface {
	TypeStore
}

// QuotaManager is what the routes need of the volume quotas (here only
// the QuotaStore; the types branch adds the management).
type QuotaManager interface {
	QuotaStore
}

// TypeUsage says whether volumes have a type. The lead wires voldb.
type TypeUsage interface {
	TypeInUse(ctx context.Context, q db.Querier, typeID string) (bool, error)
}

// QuotaUsage is what a project uses of its volume quotas, by the keys of
// QuotaStore.Limits (a missing key is 0). The lead wires voldb.Usage.
type QuotaUsage interface {
	Usage(ctx context.Context, q db.Querier, project string) (map[string]int64, error)
}
