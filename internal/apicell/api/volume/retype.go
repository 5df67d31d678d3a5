package volume

import (
	"context"
	"maps"
	"slices"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// os-retype (Cinder's volume/api.py retype). Every volume type here is
// served by the same backend (each cell's file backend), so a retype
// never needs a migration: Cinder's same-backend retype, which changes
// the type and moves the per-type quota, is done by the API cell on its
// copy (the API owns a volume's type) in the request's transaction, and
// the volume's status is what it was (Cinder shows retyping until its
// volume manager is done; here it is done at once). The cell's row keeps
// the type it was made with, which nothing there reads.

const (
	ruleVolRetype      = "volume:retype"
	ruleVolMultiattach = "volume:multiattach"
)

func (h *volumeActionsHandler) retype(ctx context.Context, id string, args body) (any, error) {
	const action = "os-retype"
	for _, k := range slices.Sorted(maps.Keys(args)) {
		if k != "new_type" && k != "migration_policy" {
			return nil, badRequest("Invalid input for field/attribute %s. Value: %s. Additional properties are not allowed ('%s' was unexpected)", action, jsonText(args), k)
		}
	}
	raw, ok := args["new_type"]
	if !ok {
		return nil, badRequest("Invalid input for field/attribute %s. Value: %s. 'new_type' is a required property", action, jsonText(args))
	}
	newType, ok := raw.(string)
	if !ok {
		return nil, badRequest("Invalid input for field/attribute new_type. Value: %s. %s is not of type 'string'", jsonText(raw), jsonText(raw))
	}
	if p, ok := args["migration_policy"]; ok && p != nil {
		s, isString := p.(string)
		if !isString {
			return nil, badRequest("Invalid input for field/attribute migration_policy. Value: %s. %s is not of type 'string', 'null'", jsonText(p), jsonText(p))
		}
		if s != "on-demand" && s != "never" {
			return nil, badRequest("Invalid input for field/attribute migration_policy. Value: %s. '%s' is not one of ['on-demand', 'never']", s, s)
		}
	}
	c := httpkit.CallerFrom(ctx)
	_, info := h.reqLog(ctx)
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		v, err := h.getVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		if !c.Allowed(h.cfg.Policy, ruleVolRetype) {
			return forbidden(ruleVolRetype)
		}
		t, err := h.findTypeAs(ctx, tx, newType, true)
		if err != nil {
			return err
		}
		multi := t.ExtraSpecs["multiattach"] == "<is> True"
		if multi != v.Multiattach {
			if v.Status != voldb.StatusAvailable {
				return invalidInput("Invalid volume_type passed, retypes affecting multiattach are only allowed on available volumes, the specified volume however currently has a status of: %s.", v.Status)
			}
			if multi && !c.Allowed(h.cfg.Policy, ruleVolMultiattach) {
				return forbidden(ruleVolMultiattach)
			}
		}
		n, snapGB, err := voldb.SnapshotUsage(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := h.checkQuota(ctx, tx, v.ProjectID, quotaAsk{typeName: t.Name, typeOnly: true, volumes: 1,
			snapshots: int64(n), gigabytes: int64(v.SizeGB) + snapGB}); err != nil {
			return err
		}
		ok, err := voldb.Retype(ctx, tx, id, t.ID, t.Name, multi, h.cfg.Now().UTC())
		if err != nil {
			return err
		}
		if !ok || v.Cell == "" {
			return badRequest("Invalid volume: Retype needs volume to be in available or in-use state, not be part of an active migration or a consistency group, requested type has to be different that the one from the volume, and for in-use volumes front-end qos specs cannot change.")
		}
		info("volume retyped", "volume", id, "from", v.TypeName, "to", t.Name)
		return nil
	})
	return nil, err
}
