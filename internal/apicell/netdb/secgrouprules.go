package netdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
)

// SecurityGroupRule is one rule of a security group, validated and in
// Neutron's canonical form (see the Networking API's security group rules).
type SecurityGroupRule struct {
	ID              string
	SecurityGroupID string
	ProjectID       string
	// Direction is "ingress" or "egress"; EtherType "IPv4" or "IPv6".
	Direction string
	EtherType string
	// Protocol is a protocol name or number as given; "" is any.
	Protocol string
	// PortRangeMin and PortRangeMax are nil when not given (any port).
	PortRangeMin *int
	PortRangeMax *int
	// RemoteIPPrefix ("" none) keeps the host bits it was given with.
	RemoteIPPrefix string
	// RemoteGroupID is "" when the rule names no remote group.
	RemoteGroupID string
	Description   string
	// BelongsToDefault says whether the rule's group is a default group;
	// GroupProjectID is the group's owner (who may see and delete the rule
	// besides its own owner).
	BelongsToDefault bool
	GroupProjectID   string
	RevisionNumber   int64
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// NormalizedCIDR is the rule's remote prefix without host bits ("" none).
func (r *SecurityGroupRule) NormalizedCIDR() string {
	if r.RemoteIPPrefix == "" {
		return ""
	}
	p, err := netip.ParsePrefix(r.RemoteIPPrefix)
	if err != nil {
		return r.RemoteIPPrefix
	}
	return p.Masked().String()
}

const ruleCols = `id, security_group_id, project_id, direction, ethertype, protocol, port_range_min, port_range_max,
	remote_ip_prefix, remote_group_id, description, revision_number, created_at, updated_at`

// ruleSelect reads rules (alias r) with whether their group is a default
// one.
const ruleSelect = `r.id, r.security_group_id, r.project_id, r.direction, r.ethertype, r.protocol, r.port_range_min,
	r.port_range_max, r.remote_ip_prefix, r.remote_group_id, r.description, r.revision_number, r.created_at, r.updated_at,
	COALESCE(g.is_default, 0), COALESCE(g.project_id, '')
	FROM security_group_rules r LEFT JOIN security_groups g ON g.id = r.security_group_id`

func scanRule(s db.Scanner) (*SecurityGroupRule, error) {
	var r SecurityGroupRule
	var proto, prefix, remote sql.NullString
	var pmin, pmax sql.NullInt64
	var created, updated int64
	var isDefault int
	if err := s.Scan(&r.ID, &r.SecurityGroupID, &r.ProjectID, &r.Direction, &r.EtherType, &proto, &pmin, &pmax,
		&prefix, &remote, &r.Description, &r.RevisionNumber, &created, &updated, &isDefault, &r.GroupProjectID); err != nil {
		return nil, err
	}
	r.Protocol, r.RemoteIPPrefix, r.RemoteGroupID = proto.String, prefix.String, remote.String
	if pmin.Valid {
		v := int(pmin.Int64)
		r.PortRangeMin = &v
	}
	if pmax.Valid {
		v := int(pmax.Int64)
		r.PortRangeMax = &v
	}
	r.BelongsToDefault = isDefault != 0
	r.CreatedAt, r.UpdatedAt = db.FromMicros(created), db.FromMicros(updated)
	return &r, nil
}

// SecurityGroupRuleNotFound is Neutron's SecurityGroupRuleNotFound.
func SecurityGroupRuleNotFound(id string) error {
	return fail(ErrNotFound, "SecurityGroupRuleNotFound", fmt.Sprintf("Security group rule %s does not exist", id))
}

// listRules reads the rules of project's groups (every rule when project
// is ""), oldest first.
func listRules(ctx context.Context, q db.Querier, project string) ([]*SecurityGroupRule, error) {
	query, args := `SELECT `+ruleSelect+` ORDER BY r.created_at, r.id`, []any(nil)
	if project != "" {
		query, args = `SELECT `+ruleSelect+` WHERE g.project_id = ? OR r.project_id = ? ORDER BY r.created_at, r.id`, []any{project, project}
	}
	out, err := db.Collect(ctx, q, scanRule, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list security group rules: %w", err)
	}
	return out, nil
}

// ListSecurityGroupRules returns the rules a caller of project may see (the
// rules of its groups and the rules it owns; every rule when project is
// ""), oldest first.
func ListSecurityGroupRules(ctx context.Context, q db.Querier, project string) ([]*SecurityGroupRule, error) {
	return listRules(ctx, q, project)
}

// SecurityGroupRuleByID reads one rule. It does not check who may see it.
func SecurityGroupRuleByID(ctx context.Context, q db.Querier, id string) (*SecurityGroupRule, error) {
	r, err := scanRule(q.QueryRow(ctx, `SELECT `+ruleSelect+` WHERE r.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, SecurityGroupRuleNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get security group rule %s: %w", id, err)
	}
	return r, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func insertRule(ctx context.Context, tx *db.Tx, r *SecurityGroupRule, now time.Time) error {
	if r.ID == "" {
		r.ID = uuid.NewString()
	}
	r.RevisionNumber, r.CreatedAt, r.UpdatedAt = 1, now.UTC(), now.UTC()
	_, err := tx.Exec(ctx, `INSERT INTO security_group_rules (`+ruleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.SecurityGroupID, r.ProjectID, r.Direction, r.EtherType, nullString(r.Protocol), nullInt(r.PortRangeMin),
		nullInt(r.PortRangeMax), nullString(r.RemoteIPPrefix), nullString(r.RemoteGroupID), r.Description, r.RevisionNumber,
		db.Micros(now), db.Micros(now))
	if err != nil {
		return fmt.Errorf("create security group rule: %w", err)
	}
	return nil
}

// ruleKey is what makes two rules of a group the same rule, as Neutron's
// _rule_to_key: every attribute but the description and owner, with "any
// address" the same as no prefix and a protocol's name the same as its
// number.
func ruleKey(r *SecurityGroupRule) string {
	port := func(p *int) string {
		if p == nil {
			return "+"
		}
		return strconv.Itoa(*p)
	}
	prefix := r.RemoteIPPrefix
	if prefix == "" || prefix == "0.0.0.0/0" || prefix == "::/0" {
		prefix = "+"
	}
	remote := r.RemoteGroupID
	if remote == "" {
		remote = "+"
	}
	return strings.Join([]string{r.Direction, r.EtherType, port(r.PortRangeMax), port(r.PortRangeMin),
		protocolKey(r.Protocol, r.EtherType), remote, "+", prefix, r.SecurityGroupID}, "_")
}

// CreateSecurityGroupRule inserts a validated rule into its group, unless
// the group already has the same rule (409 SecurityGroupRuleExists, as
// Neutron), and gives the group a new revision. The group, and the remote
// group if any, must exist; who may use them the caller checks.
func CreateSecurityGroupRule(ctx context.Context, tx *db.Tx, r *SecurityGroupRule, now time.Time) error {
	return CreateSecurityGroupRules(ctx, tx, []*SecurityGroupRule{r}, now)
}

// CreateSecurityGroupRules is CreateSecurityGroupRule for rules of one
// group at once (a bulk create): two alike among them are a 409
// DuplicateSecurityGroupRuleInPost, one like a rule the group has a 409
// SecurityGroupRuleExists, and then none is written.
func CreateSecurityGroupRules(ctx context.Context, tx *db.Tx, rules []*SecurityGroupRule, now time.Time) error {
	if len(rules) == 0 {
		return nil
	}
	gid := rules[0].SecurityGroupID
	// The bump first: it holds the group's row, so two identical rules
	// created at once cannot both pass the checks below.
	if err := bumpGroup(ctx, tx, gid, now); err != nil {
		return err
	}
	keys := map[string]bool{}
	for _, r := range rules {
		if r.SecurityGroupID != gid {
			return fmt.Errorf("create security group rules: rules of groups %s and %s", gid, r.SecurityGroupID)
		}
		if r.RemoteGroupID != "" && r.RemoteGroupID != gid {
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM security_groups WHERE id = ?`, r.RemoteGroupID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return SecurityGroupNotFound(r.RemoteGroupID)
			}
			if err != nil {
				return fmt.Errorf("remote group %s: %w", r.RemoteGroupID, err)
			}
		}
		k := ruleKey(r)
		if keys[k] {
			return fail(ErrInUse, "DuplicateSecurityGroupRuleInPost", "Duplicate Security Group Rule in POST.")
		}
		keys[k] = true
	}
	g, err := SecurityGroupByID(ctx, tx, gid)
	if err != nil {
		return err
	}
	for _, o := range g.Rules {
		if keys[ruleKey(o)] {
			return fail(ErrInUse, "SecurityGroupRuleExists", fmt.Sprintf("Security group rule already exists. Rule id is %s.", o.ID))
		}
	}
	for _, r := range rules {
		r.BelongsToDefault, r.GroupProjectID = g.IsDefault, g.ProjectID
		if err := insertRule(ctx, tx, r, now); err != nil {
			return err
		}
	}
	return nil
}

// DeleteSecurityGroupRule deletes a rule, if its revision is still ifMatch
// (when not nil), and gives its group a new revision.
func DeleteSecurityGroupRule(ctx context.Context, tx *db.Tx, id string, ifMatch *int64, now time.Time) error {
	if err := lockRow(ctx, tx, "security_group_rules", id); err != nil {
		return err
	}
	r, err := SecurityGroupRuleByID(ctx, tx, id)
	if err != nil {
		return err
	}
	if err := checkRevision(ifMatch, r.RevisionNumber); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM security_group_rules WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete security group rule %s: %w", id, err)
	}
	return bumpGroup(ctx, tx, r.SecurityGroupID, now)
}
