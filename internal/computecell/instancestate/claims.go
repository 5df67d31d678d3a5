package instancestate

import (
	"context"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

// Claims: an instance's claim reserves its flavor on a host (the
// instance's own, keyed by its UUID, and during a resize one on the
// destination, keyed by celldb.DestClaimKey). They are taken and given
// back here and nowhere else.
//
// On the boot path the conductor takes the claim when it places an
// instance (Place), and the compute host checks it in the statement that
// begins the spawn (BeginSpawnQuery). A spawn on a host the instance holds no
// claim on (an alternate after a failed spawn, an unshelve) takes it there.

// The flavor an instance claims is celldb.Instance.Need: a volume-backed
// instance claims no root disk.

// Place claims host for an instance waiting to be scheduled and records
// the host on it (task state scheduling to networking; a Step). Like Nova,
// an instance that asked for no availability zone takes its host's.
func (o *Owner) Place(ctx context.Context, tx *db.Tx, in *celldb.Instance, host string) error {
	return o.PlaceAll(ctx, tx, []*celldb.Instance{in}, []string{host})[0]
}

// PlaceAll is Place of each instance on its host (hosts[i]), in order, and
// returns each one's error: on PostgreSQL their statements go to the
// database in one round trip (celldb.PlaceAll).
func (o *Owner) PlaceAll(ctx context.Context, tx *db.Tx, insts []*celldb.Instance, hosts []string) []error {
	ps := make([]celldb.Placement, len(insts))
	for i, in := range insts {
		ps[i] = celldb.Placement{UUID: in.UUID, Host: hosts[i], Need: in.Need(), TakeZone: in.AvailabilityZone == ""}
	}
	return celldb.PlaceAll(ctx, tx, ps, o.now())
}

// Unplace gives back the claim of an instance caught between host choice
// and ACTIVE (in task state task) and puts it back to scheduling with no
// host (a Step), so that it is placed again.
func (o *Owner) Unplace(ctx context.Context, tx *db.Tx, uuid, task string) error {
	if err := o.Release(ctx, tx, uuid); err != nil {
		return err
	}
	scheduling, noHost := celldb.TaskScheduling, ""
	return o.Step(ctx, tx, uuid, &task, celldb.Change{TaskState: &scheduling, Host: &noHost})
}

// BeginSpawnQuery and BeginSpawnFrom move an instance to task state
// spawning on host (a change the API cell learns with the spawn's end):
// the query is the transaction's first statement, which a caller runs
// with others' (db.GroupQuery), and From goes on from its answer and
// returns the instance. When the instance holds its claim on host, as
// after Place, the query does it all, checking the claim; otherwise it
// changes nothing and the claim is taken in From. From fails with
// celldb.ErrGone for an instance deleted or being deleted, and with
// celldb.ErrClaimFailed for a host without room.
func (o *Owner) BeginSpawnQuery(uuid, host string) db.Query {
	return celldb.UpdateClaimedQuery(uuid, host, spawnOn(host), o.now())
}

// BeginSpawnFrom goes on from the answer a of BeginSpawnQuery of the same
// instance and host.
func (o *Owner) BeginSpawnFrom(ctx context.Context, tx *db.Tx, uuid, host string, a db.Answer) (*celldb.Instance, error) {
	change := spawnOn(host)
	if in, err := celldb.UpdateClaimedFrom(ctx, tx, uuid, change, a); in != nil || err != nil {
		return in, err
	}
	cur, err := celldb.Get(ctx, tx, uuid)
	if err != nil {
		return nil, err
	}
	if cur.Deleted || cur.TaskState == celldb.TaskDeleting {
		return nil, celldb.ErrGone
	}
	if err := o.Claim(ctx, tx, uuid, host, cur.Need()); err != nil {
		return nil, err
	}
	return celldb.Update(ctx, tx, uuid, nil, change, o.now())
}

// spawnOn is the change that begins a spawn on host.
func spawnOn(host string) celldb.Change {
	spawning := celldb.TaskSpawning
	return celldb.Change{Host: &host, TaskState: &spawning}
}

// Claim reserves f on host under key (an instance's UUID, or a
// destination's celldb.DestClaimKey). It succeeds again for the same key
// and host and fails with celldb.ErrClaimFailed when the host is full.
func (o *Owner) Claim(ctx context.Context, tx *db.Tx, key, host string, f capacity.Flavor) error {
	return celldb.Claim(ctx, tx, key, host, f, o.now())
}

// Release gives the claim under key back to its host; a no-op when there
// is none.
func (o *Owner) Release(ctx context.Context, tx *db.Tx, key string) error {
	return celldb.Release(ctx, tx, key)
}

// MoveClaim renames a claim (a confirmed resize's destination claim
// becomes the instance's own).
func (o *Owner) MoveClaim(ctx context.Context, tx *db.Tx, from, to string) error {
	return celldb.MoveClaim(ctx, tx, from, to)
}

// ReleaseIn is Release in a transaction of its own.
func (o *Owner) ReleaseIn(ctx context.Context, d *db.DB, key string) error {
	return d.Group(ctx, func(tx *db.Tx) error { return o.Release(ctx, tx, key) })
}
