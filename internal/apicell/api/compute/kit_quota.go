package compute

import (
	"context"
	"fmt"
	"sync"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The quota checks. Each runs inside the transaction that writes the new
// records, after apidb.LockQuota, and counts usage from the API cell's
// records there: two concurrent requests of one project are checked one
// after the other, each seeing what the other created.

// quotaChecker runs the quota checks of the rooms that create records
// (servers, metadata, key pairs, server groups) and reads the limits in
// force.
type quotaChecker struct {
	defaults quota.Defaults
	// unlimited remembers, by project, whether its last create found
	// every limit it checks unlimited: its next create then takes the
	// quota lock shared, and does not wait for the project's other
	// creates (fitInstances). A hint only: a wrong one costs a retry.
	unlimited sync.Map
}

// allUnlimited reports whether none of rs is limited.
func allUnlimited(l quota.Limits, rs ...string) bool {
	for _, r := range rs {
		if l[r] >= 0 {
			return false
		}
	}
	return true
}

// limitsFor are the limits in force for a project, and for the user when
// the user has limits of their own in it.
func (h *quotaChecker) limitsFor(ctx context.Context, q db.Querier, projectID, userID string) (project, user quota.Limits, err error) {
	return apidb.LimitsFor(ctx, q, h.defaults, projectID, userID)
}

// fitInstances is how many of min..max instances of a flavor fit the
// project's (and the user's) instances, cores and RAM quota, and the
// other resources named, whose usage the caller counts under the lock
// (quota.ServerGroupMembers for a create into a server group).
//
// When every limit it checks is unlimited, for the project and for the
// user, nothing is counted, and on PostgreSQL the project's quota lock is
// taken shared: the creates of one project then run side by side rather
// than one at a time. A change of the project's limits takes the lock
// exclusively, so either it commits before the create reads the limits
// (read after the lock: the create sees them, and runs again under the
// exclusive lock if one is now limited), or it waits until the create
// has committed and counts its instances in the usage it checks the new
// limit against. Which lock to take is remembered per project: a create
// that guessed wrong runs its transaction again (db.ErrRetry).
func (h *quotaChecker) fitInstances(ctx context.Context, tx *db.Tx, projectID, userID string, f wire.Flavor, min, max int, also ...string) (int, error) {
	checked := append([]string{quota.Instances, quota.Cores, quota.RAM}, also...)
	shared := false
	if tx.Dialect == db.Postgres {
		if v, ok := h.unlimited.Load(projectID); ok && v.(bool) {
			shared = true
		}
	}
	if err := lockQuotaOnce(ctx, tx, projectID, shared); err != nil {
		return 0, err
	}
	project, user, err := h.heldLimits(ctx, tx, projectID, userID)
	if err != nil {
		return 0, err
	}
	unlimited := allUnlimited(project, checked...) && (user == nil || allUnlimited(user, checked...))
	if tx.Dialect == db.Postgres {
		h.unlimited.Store(projectID, unlimited)
	}
	if unlimited {
		return max, nil
	}
	if shared {
		return 0, fmt.Errorf("quota of %s: a limit is set: %w", projectID, db.ErrRetry)
	}
	n := max
	for _, lim := range []struct {
		l    quota.Limits
		user string
	}{{project, ""}, {user, userID}} {
		if lim.l == nil || allUnlimited(lim.l, quota.Instances, quota.Cores, quota.RAM) {
			continue
		}
		usage, err := apidb.Usage(ctx, tx, projectID, lim.user)
		if err != nil {
			return 0, err
		}
		if n, err = quota.Fit(lim.l, usage, int64(f.VCPUs), f.RAMMB, min, n); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// The creates that db.Group commits together run in one transaction: a
// quota lock one of them took is held for the others until it ends, and
// the limits it read under that lock cannot change before then (a change
// of them takes the lock exclusively). So each is taken and read once a
// transaction, per project (db.Tx.Remember; a rollback to a savepoint
// forgets them, as it undoes the lock taken under it).

// quotaLockKey is the key of the quota lock of a project held by the
// transaction: "shared" or "exclusive".
func quotaLockKey(projectID string) string { return "quota lock\x00" + projectID }

// lockQuotaOnce takes the project's quota lock, shared or exclusive,
// unless the transaction holds it already in that mode or exclusively.
func lockQuotaOnce(ctx context.Context, tx *db.Tx, projectID string, shared bool) error {
	held, _ := tx.Recall(quotaLockKey(projectID))
	if held == "exclusive" || (shared && held == "shared") {
		return nil
	}
	lock, mode := apidb.LockQuota, "exclusive"
	if shared {
		lock, mode = apidb.LockQuotaShared, "shared"
	}
	if err := lock(ctx, tx, projectID); err != nil {
		return err
	}
	tx.Remember(quotaLockKey(projectID), mode)
	return nil
}

// heldLimits are limitsFor's, read once a transaction under the
// project's quota lock (lockQuotaOnce).
func (h *quotaChecker) heldLimits(ctx context.Context, tx *db.Tx, projectID, userID string) (project, user quota.Limits, err error) {
	key := "quota limits\x00" + projectID + "\x00" + userID
	if v, ok := tx.Recall(key); ok {
		l := v.([2]quota.Limits)
		return l[0], l[1], nil
	}
	if project, user, err = h.limitsFor(ctx, tx, projectID, userID); err != nil {
		return nil, nil, err
	}
	tx.Remember(key, [2]quota.Limits{project, user})
	return project, user, nil
}

// checkResize checks the increase of a resize's new flavor over the old
// against the project's (and user's) cores and RAM, and records the new
// flavor, which the instance counts from now on.
func (h *quotaChecker) checkResize(ctx context.Context, tx *db.Tx, in *apidb.Instance, to wire.Flavor) error {
	if err := apidb.LockQuota(ctx, tx, in.ProjectID); err != nil {
		return err
	}
	deltas := quota.Limits{}
	if d := int64(to.VCPUs - in.Flavor.VCPUs); d > 0 {
		deltas[quota.Cores] = d
	}
	if d := to.RAMMB - in.Flavor.RAMMB; d > 0 {
		deltas[quota.RAM] = d
	}
	if len(deltas) > 0 {
		project, user, err := h.limitsFor(ctx, tx, in.ProjectID, in.UserID)
		if err != nil {
			return err
		}
		for _, lim := range []struct {
			l    quota.Limits
			user string
		}{{project, ""}, {user, in.UserID}} {
			if lim.l == nil {
				continue
			}
			usage, err := apidb.Usage(ctx, tx, in.ProjectID, lim.user)
			if err != nil {
				return err
			}
			if err := quota.Check(lim.l, usage, deltas, nil); err != nil {
				return err
			}
		}
	}
	return apidb.SetResizeFlavor(ctx, tx, in.UUID, to)
}

// checkMetadataItems checks a server's number of metadata items. None is
// within any limit, and needs no reading of the limits.
func (h *quotaChecker) checkMetadataItems(ctx context.Context, q db.Querier, projectID, userID string, n int) error {
	if n == 0 {
		return nil
	}
	project, user, err := h.limitsFor(ctx, q, projectID, userID)
	if err != nil {
		return err
	}
	for _, l := range []quota.Limits{project, user} {
		if l != nil && quota.Over(l[quota.MetadataItems], 0, int64(n)) {
			return quota.MetadataError(l[quota.MetadataItems])
		}
	}
	return nil
}

// checkKeyPairs checks that a user may have one more key pair.
func (h *quotaChecker) checkKeyPairs(ctx context.Context, tx *db.Tx, projectID, userID string) error {
	// Key pairs are the user's, in every project: lock on the user.
	if err := apidb.LockQuota(ctx, tx, "user:"+userID); err != nil {
		return err
	}
	project, user, err := h.limitsFor(ctx, tx, projectID, userID)
	if err != nil {
		return err
	}
	n, err := apidb.CountKeyPairs(ctx, tx, userID)
	if err != nil {
		return err
	}
	for _, l := range []quota.Limits{project, user} {
		if l != nil && quota.Over(l[quota.KeyPairs], n, 1) {
			return quota.ErrKeyPairs
		}
	}
	return nil
}

// checkServerGroups checks that a project (and user) may have one more
// server group.
func (h *quotaChecker) checkServerGroups(ctx context.Context, tx *db.Tx, projectID, userID string) error {
	if err := apidb.LockQuota(ctx, tx, projectID); err != nil {
		return err
	}
	project, user, err := h.limitsFor(ctx, tx, projectID, userID)
	if err != nil {
		return err
	}
	for _, lim := range []struct {
		l    quota.Limits
		user string
	}{{project, ""}, {user, userID}} {
		if lim.l == nil {
			continue
		}
		usage, err := apidb.Usage(ctx, tx, projectID, lim.user)
		if err != nil {
			return err
		}
		if quota.Over(lim.l[quota.ServerGroups], usage[quota.ServerGroups], 1) {
			return quota.ErrServerGroups
		}
	}
	return nil
}

// checkGroupMembers checks that n more of the user's servers fit in a
// server group. The caller holds the project's quota lock.
func (h *quotaChecker) checkGroupMembers(ctx context.Context, tx *db.Tx, group, projectID, userID string, n int) error {
	project, user, err := h.limitsFor(ctx, tx, projectID, userID)
	if err != nil {
		return err
	}
	have, err := apidb.CountGroupMembers(ctx, tx, group, userID)
	if err != nil {
		return err
	}
	for _, l := range []quota.Limits{project, user} {
		if l != nil && quota.Over(l[quota.ServerGroupMembers], have, int64(n)) {
			return quota.ErrGroupMembers
		}
	}
	return nil
}
