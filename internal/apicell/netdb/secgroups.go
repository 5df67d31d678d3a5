package netdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
)

// DefaultSecurityGroupName is the name of a project's default group.
const DefaultSecurityGroupName = "default"

// defaultSecurityGroupDescription is its description, as Neutron's.
const defaultSecurityGroupDescription = "Default security group"

// SecurityGroup is a project's named set of rules. Each project has one
// default group ("default"), made the first time the project uses security
// groups (EnsureDefaultSecurityGroup).
type SecurityGroup struct {
	ID          string
	Name        string
	ProjectID   string
	Description string
	Stateful    bool
	IsDefault   bool
	Tags        []string
	// Rules are the group's rules, oldest first.
	Rules          []*SecurityGroupRule
	RevisionNumber int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

const securityGroupCols = `id, name, project_id, description, stateful, is_default, tags, revision_number, created_at, updated_at`

func scanSecurityGroup(r db.Scanner) (*SecurityGroup, error) {
	var g SecurityGroup
	var stateful, isDefault int
	var tags string
	var created, updated int64
	if err := r.Scan(&g.ID, &g.Name, &g.ProjectID, &g.Description, &stateful, &isDefault, &tags, &g.RevisionNumber, &created, &updated); err != nil {
		return nil, err
	}
	g.Stateful, g.IsDefault = stateful != 0, isDefault != 0
	if err := json.Unmarshal([]byte(tags), &g.Tags); err != nil {
		return nil, fmt.Errorf("security group %s: tags: %w", g.ID, err)
	}
	if g.Tags == nil {
		g.Tags = []string{}
	}
	g.CreatedAt, g.UpdatedAt = db.FromMicros(created), db.FromMicros(updated)
	g.Rules = []*SecurityGroupRule{}
	return &g, nil
}

// SecurityGroupNotFound is Neutron's SecurityGroupNotFound.
func SecurityGroupNotFound(id string) error {
	return fail(ErrNotFound, "SecurityGroupNotFound", fmt.Sprintf("Security group %s does not exist", id))
}

// ListSecurityGroups returns the groups of project (every project's when
// project is ""), by id, each with its rules.
func ListSecurityGroups(ctx context.Context, q db.Querier, project string) ([]*SecurityGroup, error) {
	query, args := `SELECT `+securityGroupCols+` FROM security_groups ORDER BY id`, []any(nil)
	if project != "" {
		query, args = `SELECT `+securityGroupCols+` FROM security_groups WHERE project_id = ? ORDER BY id`, []any{project}
	}
	groups, err := db.Collect(ctx, q, scanSecurityGroup, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list security groups: %w", err)
	}
	if len(groups) == 0 {
		return groups, nil
	}
	byID := make(map[string]*SecurityGroup, len(groups))
	for _, g := range groups {
		byID[g.ID] = g
	}
	rules, err := listRules(ctx, q, project)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		if g := byID[r.SecurityGroupID]; g != nil {
			g.Rules = append(g.Rules, r)
		}
	}
	return groups, nil
}

// SecurityGroupByID reads one group and its rules. It does not check who
// may see it.
func SecurityGroupByID(ctx context.Context, q db.Querier, id string) (*SecurityGroup, error) {
	g, err := scanSecurityGroup(q.QueryRow(ctx, `SELECT `+securityGroupCols+` FROM security_groups WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, SecurityGroupNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get security group %s: %w", id, err)
	}
	g.Rules, err = db.Collect(ctx, q, scanRule, `SELECT `+ruleSelect+` WHERE r.security_group_id = ? ORDER BY r.created_at, r.id`, id)
	if err != nil {
		return nil, fmt.Errorf("rules of security group %s: %w", id, err)
	}
	return g, nil
}

// defaultSecurityGroupID is the project's default group, "" when it has
// none yet.
func defaultSecurityGroupID(ctx context.Context, q db.Querier, project string) (string, error) {
	var id string
	err := q.QueryRow(ctx, `SELECT id FROM security_groups WHERE project_id = ? AND is_default = 1`, project).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("default security group of %s: %w", project, err)
	}
	return id, nil
}

// EnsureDefaultSecurityGroup makes sure the project has its default group,
// with Neutron's default rules (egress to anywhere over IPv4 and IPv6;
// ingress over IPv4 and IPv6 from members of the group itself), and returns
// its id. It runs its own transaction: callers call it before theirs, as
// Neutron does on a project's first use of security groups. It is safe to
// run at once from several requests or processes: a unique index allows
// one default group per project, and whoever loses the insert reads the
// winner's group.
func EnsureDefaultSecurityGroup(ctx context.Context, d *db.DB, project string, now time.Time) (string, error) {
	if id, err := defaultSecurityGroupID(ctx, d, project); err != nil || id != "" {
		return id, err
	}
	var id string
	for attempt := 0; ; attempt++ {
		err := d.InTx(ctx, func(tx *db.Tx) error {
			existing, err := defaultSecurityGroupID(ctx, tx, project)
			if err != nil || existing != "" {
				id = existing
				return err
			}
			g := &SecurityGroup{Name: DefaultSecurityGroupName, ProjectID: project, Description: defaultSecurityGroupDescription,
				Stateful: true, IsDefault: true}
			if err := CreateSecurityGroup(ctx, tx, g, now); err != nil {
				return err
			}
			id = g.ID
			return nil
		})
		if err == nil {
			return id, nil
		}
		if attempt < 2 && db.IsUniqueViolation(err) {
			continue // another request made it first: read it
		}
		return "", fmt.Errorf("default security group of %s: %w", project, err)
	}
}

// NewGroupRules is how many rules CreateSecurityGroup gives a group that
// is not a default one (egress over IPv4 and IPv6), which a create counts
// against the security_group_rule quota.
const NewGroupRules = 2

// CreateSecurityGroup inserts g, filling in its id (when empty), revision
// and times, with the rules Neutron gives a new group: egress to anywhere
// over IPv4 and IPv6, and for a default group also ingress over both from
// the group's own members.
func CreateSecurityGroup(ctx context.Context, tx *db.Tx, g *SecurityGroup, now time.Time) error {
	if g.ID == "" {
		g.ID = uuid.NewString()
	}
	if g.Tags == nil {
		g.Tags = []string{}
	}
	tags, err := json.Marshal(g.Tags)
	if err != nil {
		return err
	}
	g.RevisionNumber, g.CreatedAt, g.UpdatedAt = 1, now.UTC(), now.UTC()
	_, err = tx.Exec(ctx, `INSERT INTO security_groups (`+securityGroupCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.Name, g.ProjectID, g.Description, boolInt(g.Stateful), boolInt(g.IsDefault), string(tags), g.RevisionNumber,
		db.Micros(now), db.Micros(now))
	if err != nil {
		return fmt.Errorf("create security group: %w", err)
	}
	g.Rules = nil
	for _, eth := range []string{"IPv4", "IPv6"} {
		g.Rules = append(g.Rules, &SecurityGroupRule{Direction: "egress", EtherType: eth})
	}
	if g.IsDefault {
		for _, eth := range []string{"IPv4", "IPv6"} {
			g.Rules = append(g.Rules, &SecurityGroupRule{Direction: "ingress", EtherType: eth, RemoteGroupID: g.ID})
		}
	}
	for _, r := range g.Rules {
		r.SecurityGroupID, r.ProjectID, r.BelongsToDefault, r.GroupProjectID = g.ID, g.ProjectID, g.IsDefault, g.ProjectID
		if err := insertRule(ctx, tx, r, now); err != nil {
			return err
		}
	}
	return nil
}

// SecurityGroupPatch is an update: nil fields stay as they are.
type SecurityGroupPatch struct {
	Name        *string
	Description *string
	Stateful    *bool
	Tags        *[]string
}

// CannotUpdateDefault is Neutron's refusal to rename the default group.
func CannotUpdateDefault() error {
	return fail(ErrInUse, "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
}

// UpdateSecurityGroup changes a group, if its revision is still ifMatch
// (when not nil). A change bumps the revision; none leaves the group as it
// is.
func UpdateSecurityGroup(ctx context.Context, tx *db.Tx, id string, p SecurityGroupPatch, ifMatch *int64, now time.Time) (*SecurityGroup, error) {
	if err := lockRow(ctx, tx, "security_groups", id); err != nil {
		return nil, err
	}
	g, err := SecurityGroupByID(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if g.Name == DefaultSecurityGroupName && p.Name != nil {
		return nil, CannotUpdateDefault()
	}
	if p.Stateful != nil && *p.Stateful != g.Stateful {
		if err := checkNotInUse(ctx, tx, g); err != nil {
			return nil, err
		}
	}
	if err := checkRevision(ifMatch, g.RevisionNumber); err != nil {
		return nil, err
	}
	before := *g
	if p.Name != nil {
		g.Name = *p.Name
	}
	if p.Description != nil {
		g.Description = *p.Description
	}
	if p.Stateful != nil {
		g.Stateful = *p.Stateful
	}
	tagsChanged := false
	if p.Tags != nil {
		tagsChanged = fmt.Sprint(*p.Tags) != fmt.Sprint(g.Tags)
		g.Tags = append([]string{}, *p.Tags...)
	}
	if g.Name == before.Name && g.Description == before.Description && g.Stateful == before.Stateful && !tagsChanged {
		return g, nil
	}
	tags, err := json.Marshal(g.Tags)
	if err != nil {
		return nil, err
	}
	g.RevisionNumber++
	g.UpdatedAt = now.UTC()
	_, err = tx.Exec(ctx, `UPDATE security_groups SET name = ?, description = ?, stateful = ?, tags = ?, revision_number = ?, updated_at = ?
		WHERE id = ?`, g.Name, g.Description, boolInt(g.Stateful), string(tags), g.RevisionNumber, db.Micros(now), g.ID)
	if err != nil {
		return nil, fmt.Errorf("update security group %s: %w", id, err)
	}
	return g, nil
}

// SecurityGroupInUse is Neutron's SecurityGroupInUse.
func SecurityGroupInUse(id string) error {
	return fail(ErrInUse, "SecurityGroupInUse", fmt.Sprintf("Security Group %s in use.", id))
}

// checkNotInUse refuses to delete a group, or change its statefulness,
// while a live server is in it (Neutron's port bindings: every port of a
// server has its server's groups, secgroupbindings.go). A rule of another
// group naming g as its remote group does not keep g: deleting g deletes
// that rule, as in Neutron.
func checkNotInUse(ctx context.Context, q db.Querier, g *SecurityGroup) error {
	n, err := countServersIn(ctx, q, g.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		if n, err = countPortsIn(ctx, q, g.ID); err != nil {
			return err
		}
	}
	if n > 0 {
		return SecurityGroupInUse(g.ID)
	}
	return nil
}

// DeleteSecurityGroup deletes a group and its rules, if its revision is
// still ifMatch (when not nil) and no live server is in it. Rules of other groups
// that name it as their remote group go with it, each bumping its group's
// revision, as Neutron's cascade does.
func DeleteSecurityGroup(ctx context.Context, tx *db.Tx, id string, ifMatch *int64, now time.Time) error {
	if err := lockRow(ctx, tx, "security_groups", id); err != nil {
		return err
	}
	g, err := SecurityGroupByID(ctx, tx, id)
	if err != nil {
		return err
	}
	if err := checkNotInUse(ctx, tx, g); err != nil {
		return err
	}
	if err := checkRevision(ifMatch, g.RevisionNumber); err != nil {
		return err
	}
	others, err := db.Collect(ctx, tx, func(s db.Scanner) (string, error) {
		var gid string
		return gid, s.Scan(&gid)
	}, `SELECT DISTINCT security_group_id FROM security_group_rules WHERE remote_group_id = ? AND security_group_id <> ?`, id, id)
	if err != nil {
		return fmt.Errorf("rules naming security group %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM security_group_rules WHERE security_group_id = ? OR remote_group_id = ?`, id, id); err != nil {
		return fmt.Errorf("delete rules of security group %s: %w", id, err)
	}
	for _, o := range others {
		if err := bumpGroup(ctx, tx, o, now); err != nil {
			return err
		}
	}
	// What is left bound to it is of deleted servers, and of ports made
	// by boots whose groups are their server's.
	if _, err := tx.Exec(ctx, `DELETE FROM security_group_bindings WHERE security_group_id = ?`, id); err != nil {
		return fmt.Errorf("delete bindings of security group %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM security_groups WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete security group %s: %w", id, err)
	}
	return nil
}

// bumpGroup gives a group a new revision because its rules changed; on
// PostgreSQL it also holds the group's row until the transaction ends, so
// that duplicate checks over its rules do not race another writer.
func bumpGroup(ctx context.Context, tx *db.Tx, id string, now time.Time) error {
	res, err := tx.Exec(ctx, `UPDATE security_groups SET revision_number = revision_number + 1, updated_at = ? WHERE id = ?`, db.Micros(now), id)
	if err != nil {
		return fmt.Errorf("revise security group %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return SecurityGroupNotFound(id)
	}
	return nil
}

// CountSecurityGroups is how many groups and rules a project owns.
func CountSecurityGroups(ctx context.Context, q db.Querier, project string) (groups, rules int, err error) {
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM security_groups WHERE project_id = ?`, project).Scan(&groups); err != nil {
		return 0, 0, fmt.Errorf("count security groups: %w", err)
	}
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM security_group_rules WHERE project_id = ?`, project).Scan(&rules); err != nil {
		return 0, 0, fmt.Errorf("count security group rules: %w", err)
	}
	return groups, rules, nil
}
