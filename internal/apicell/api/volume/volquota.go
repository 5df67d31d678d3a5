package volume

import (
	"context"

	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// quotaAsk is what a create or an extend adds to a project's use: volumes
// (or snapshots) and GiB, of a volume type; perVolume is the size of the
// volume checked against per_volume_gigabytes (0: none checked).
type quotaAsk struct {
	typeName             string
	volumes, snapshots   int64
	gigabytes, perVolume int64
	// typeOnly checks the type's keys alone (a retype: the totals do not
	// change).
	typeOnly bool
}

// limits are the project's quota limits (none without a quota store).
func (b *base) limits(ctx context.Context, q db.Querier, project string) (map[string]int64, error) {
	if b.cfg.Quotas == nil {
		return map[string]int64{}, nil
	}
	return b.cfg.Quotas.Limits(ctx, q, project)
}

// volumesServed says whether the configuration has what the volumes
// and snapshots need.
func (b *base) volumesServed() bool {
	return b.cfg.DB != nil && b.cfg.Types != nil && b.cfg.Sender != nil
}

// checkQuota takes the project's volume quota lock in tx and checks that
// a fits in its limits, counting the use from the copy in tx, so that
// concurrent creates are checked one after the other. It answers Cinder's
// 413s, in Cinder's order (per_volume_gigabytes first, then the deltas
// in the order it reserves them: volumes or snapshots, gigabytes, then
// the type's).
func (b *base) checkQuota(ctx context.Context, tx *db.Tx, project string, a quotaAsk) error {
	if err := voldb.LockQuota(ctx, tx, project); err != nil {
		return err
	}
	lim, err := b.limits(ctx, tx, project)
	if err != nil {
		return err
	}
	if a.perVolume > 0 {
		if l, ok := lim["per_volume_gigabytes"]; ok && l >= 0 && a.perVolume > l {
			return overQuota("Requested volume size %dG is larger than maximum allowed limit %dG.", a.perVolume, l)
		}
	}
	use, err := voldb.Usage(ctx, tx, project)
	if err != nil {
		return err
	}
	type delta struct {
		key  string
		n    int64
		kind string
	}
	var ds []delta
	if a.typeOnly {
		// Only the type's keys below.
	} else if a.volumes > 0 {
		ds = append(ds, delta{"volumes", a.volumes, "volumes"})
	}
	if a.snapshots > 0 && !a.typeOnly {
		ds = append(ds, delta{"snapshots", a.snapshots, "snapshots"})
	}
	if a.gigabytes > 0 && !a.typeOnly {
		ds = append(ds, delta{"gigabytes", a.gigabytes, "gigabytes"})
	}
	if a.typeName != "" {
		if a.volumes > 0 {
			ds = append(ds, delta{"volumes_" + a.typeName, a.volumes, "volumes"})
		}
		if a.snapshots > 0 {
			ds = append(ds, delta{"snapshots_" + a.typeName, a.snapshots, "snapshots"})
		}
		if a.gigabytes > 0 {
			ds = append(ds, delta{"gigabytes_" + a.typeName, a.gigabytes, "gigabytes"})
		}
	}
	for _, d := range ds {
		l, ok := lim[d.key]
		if !ok || l < 0 || use[d.key]+d.n <= l {
			continue
		}
		switch d.kind {
		case "gigabytes":
			return overQuota("Requested volume or snapshot exceeds allowed %s quota. Requested %dG, quota is %dG and %dG has been consumed.",
				d.key, d.n, l, use[d.key])
		case "volumes":
			return overQuota("Maximum number of volumes allowed (%d) exceeded for quota '%s'.", l, d.key)
		default:
			return overQuota("Maximum number of snapshots allowed (%d) exceeded for quota '%s'.", l, d.key)
		}
	}
	return nil
}
