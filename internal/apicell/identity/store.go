package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
)

// Options tune a Store.
type Options struct {
	// TokenTTL is how long a token lives (default 1h, Keystone's default).
	TokenTTL time.Duration
	Now      func() time.Time

	// LockoutFailureAttempts is how many password failures in a row lock
	// a user's password authentication (Keystone's [security_compliance]
	// lockout_failure_attempts); 0 never locks.
	LockoutFailureAttempts int
	// LockoutDuration is how long a lock lasts from the last failure
	// (Keystone's lockout_duration); 0 or less: until the user is enabled
	// again (PATCH /v3/users/{id} with "enabled": true).
	LockoutDuration time.Duration

	// AuthFailureBurst and AuthFailuresPerMinute are the token bucket of
	// each source address (AuthRequest.Source) that failed password
	// authentications drain: Burst failures at once, then PerMinute. A
	// source with no token left is refused before its password is hashed
	// (a *ThrottledError). 0 in either: not limited.
	AuthFailureBurst      int
	AuthFailuresPerMinute int

	// HashConcurrency is how many passwords are hashed at once (default
	// half the CPUs, at least 1); a hash waits HashWait (default 2s) for
	// a slot before it is refused with a *BusyError.
	HashConcurrency int
	HashWait        time.Duration
}

// Store is the identity data of the API cell.
type Store struct {
	db  *db.DB
	ttl time.Duration
	now func() time.Time

	lockAttempts int
	lockDuration time.Duration
	limiter      *failureLimiter
	gate         *hashGate
}

// New returns the store over d, whose identity schema (Migrations) the
// opener of the database has brought up to date.
func New(ctx context.Context, d *db.DB, o Options) (*Store, error) {
	if d == nil {
		return nil, errors.New("identity: a database is required")
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = time.Hour
	}
	if o.TokenTTL < 0 {
		return nil, fmt.Errorf("identity: token TTL %v must be positive", o.TokenTTL)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LockoutFailureAttempts < 0 || o.AuthFailureBurst < 0 || o.AuthFailuresPerMinute < 0 || o.HashConcurrency < 0 || o.HashWait < 0 {
		return nil, errors.New("identity: lockout, rate limit and hashing options must not be negative")
	}
	if o.HashConcurrency == 0 {
		o.HashConcurrency = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if o.HashWait == 0 {
		o.HashWait = 2 * time.Second
	}
	return &Store{db: d, ttl: o.TokenTTL, now: o.Now,
		lockAttempts: o.LockoutFailureAttempts, lockDuration: o.LockoutDuration,
		limiter: newFailureLimiter(o.AuthFailureBurst, o.AuthFailuresPerMinute, o.Now),
		gate:    newHashGate(o.HashConcurrency, o.HashWait)}, nil
}

// hash hashes a password in a slot of the hash gate.
func (s *Store) hash(ctx context.Context, pw string) (string, error) {
	var h string
	var err error
	if gerr := s.gate.do(ctx, func() { h, err = HashPassword(pw) }); gerr != nil {
		return "", gerr
	}
	return h, err
}

// TokenTTL is how long new tokens live.
func (s *Store) TokenTTL() time.Duration { return s.ttl }

func newID() string { return strings.ReplaceAll(uuid.NewString(), "-", "") }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func checkName(kind, name string, max int) error {
	if strings.TrimSpace(name) == "" {
		return invalid("Invalid input for field 'name': %s name must not be empty.", kind)
	}
	if len(name) > max {
		return invalid("Invalid input for field 'name': %s name is longer than %d characters.", kind, max)
	}
	return nil
}

// getOne reads one row with scan; no row is a NotFoundError naming kind
// and key.
func getOne[T any](ctx context.Context, s *Store, scan func(db.Scanner) (T, error), kind, key, query string, args ...any) (T, error) {
	v, err := scan(s.db.QueryRow(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, &NotFoundError{kind, key}
	}
	return v, err
}

// ---- domains ----

const domainCols = `id, name, description, enabled`

func scanDomain(r db.Scanner) (Domain, error) {
	var d Domain
	var en int
	err := r.Scan(&d.ID, &d.Name, &d.Description, &en)
	d.Enabled = en == 1
	return d, err
}

// EnsureDomain creates a domain if it does not exist.
func (s *Store) EnsureDomain(ctx context.Context, d Domain) error {
	_, err := s.db.Exec(ctx, `INSERT INTO id_domains (id, name, description, enabled, created_at) VALUES (?, ?, ?, 1, ?)
		ON CONFLICT (id) DO NOTHING`, d.ID, d.Name, d.Description, db.Micros(s.now()))
	return err
}

// GetDomain reads a domain by id.
func (s *Store) GetDomain(ctx context.Context, id string) (Domain, error) {
	return getOne(ctx, s, scanDomain, "domain", id, `SELECT `+domainCols+` FROM id_domains WHERE id = ?`, id)
}

// DomainByName reads a domain by name.
func (s *Store) DomainByName(ctx context.Context, name string) (Domain, error) {
	return getOne(ctx, s, scanDomain, "domain", name, `SELECT `+domainCols+` FROM id_domains WHERE name = ?`, name)
}

// ListDomains lists domains, optionally by name.
func (s *Store) ListDomains(ctx context.Context, name string) ([]Domain, error) {
	q := `SELECT ` + domainCols + ` FROM id_domains`
	var args []any
	if name != "" {
		q += ` WHERE name = ?`
		args = append(args, name)
	}
	return db.Collect(ctx, s.db, scanDomain, q+` ORDER BY name`, args...)
}

// ---- projects ----

const projectCols = `id, name, domain_id, description, enabled`

func scanProject(r db.Scanner) (Project, error) {
	var p Project
	var en int
	err := r.Scan(&p.ID, &p.Name, &p.DomainID, &p.Description, &en)
	p.Enabled = en == 1
	return p, err
}

// CreateProject creates a project; an empty ID gets a new one and an empty
// domain the Default domain.
func (s *Store) CreateProject(ctx context.Context, p *Project) error {
	if err := checkName("project", p.Name, 64); err != nil {
		return err
	}
	if p.DomainID == "" {
		p.DomainID = DefaultDomainID
	}
	if _, err := s.GetDomain(ctx, p.DomainID); err != nil {
		return err
	}
	if p.ID == "" {
		p.ID = newID()
	}
	_, err := s.db.Exec(ctx, `INSERT INTO id_projects (id, name, domain_id, description, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		p.ID, p.Name, p.DomainID, p.Description, b2i(p.Enabled), db.Micros(s.now()))
	if db.IsUniqueViolation(err) {
		return &ConflictError{"project", fmt.Sprintf("it is not permitted to have two projects with the same name in the same domain : %s", p.Name)}
	}
	return err
}

// GetProject reads a project by id.
func (s *Store) GetProject(ctx context.Context, id string) (Project, error) {
	return getOne(ctx, s, scanProject, "project", id, `SELECT `+projectCols+` FROM id_projects WHERE id = ?`, id)
}

// ProjectByName reads a project by name in a domain.
func (s *Store) ProjectByName(ctx context.Context, domainID, name string) (Project, error) {
	return getOne(ctx, s, scanProject, "project", name, `SELECT `+projectCols+` FROM id_projects WHERE domain_id = ? AND name = ?`, domainID, name)
}

// ProjectFilter narrows ListProjects; zero fields match everything.
type ProjectFilter struct {
	Name, DomainID string
	Enabled        *bool
	// UserID keeps the projects the user has a role on.
	UserID string
}

// ListProjects lists projects by name.
func (s *Store) ListProjects(ctx context.Context, f ProjectFilter) ([]Project, error) {
	var where []string
	var args []any
	if f.Name != "" {
		where, args = append(where, "name = ?"), append(args, f.Name)
	}
	if f.DomainID != "" {
		where, args = append(where, "domain_id = ?"), append(args, f.DomainID)
	}
	if f.Enabled != nil {
		where, args = append(where, "enabled = ?"), append(args, b2i(*f.Enabled))
	}
	if f.UserID != "" {
		where, args = append(where, "id IN (SELECT project_id FROM id_assignments WHERE user_id = ?)"), append(args, f.UserID)
	}
	q := `SELECT ` + projectCols + ` FROM id_projects`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	return db.Collect(ctx, s.db, scanProject, q+` ORDER BY name, id`, args...)
}

// ProjectPatch is a partial update; nil fields stay.
type ProjectPatch struct {
	Name, Description *string
	Enabled           *bool
}

// UpdateProject changes a project and returns it.
func (s *Store) UpdateProject(ctx context.Context, id string, p ProjectPatch) (Project, error) {
	cur, err := s.GetProject(ctx, id)
	if err != nil {
		return cur, err
	}
	if p.Name != nil {
		if err := checkName("project", *p.Name, 64); err != nil {
			return cur, err
		}
		cur.Name = *p.Name
	}
	if p.Description != nil {
		cur.Description = *p.Description
	}
	if p.Enabled != nil {
		cur.Enabled = *p.Enabled
	}
	_, err = s.db.Exec(ctx, `UPDATE id_projects SET name = ?, description = ?, enabled = ? WHERE id = ?`, cur.Name, cur.Description, b2i(cur.Enabled), id)
	if db.IsUniqueViolation(err) {
		return cur, &ConflictError{"project", fmt.Sprintf("it is not permitted to have two projects with the same name in the same domain : %s", cur.Name)}
	}
	return cur, err
}

// DeleteProject deletes a project, its role assignments and the tokens
// scoped to it.
func (s *Store) DeleteProject(ctx context.Context, id string) error {
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM id_assignments WHERE project_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE id_tokens SET revoked = 1 WHERE project_id = ?`, id); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM id_projects WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &NotFoundError{"project", id}
		}
		return nil
	})
}

// ---- users ----

const userCols = `id, name, domain_id, default_project_id, email, description, enabled`

func scanUser(r db.Scanner) (User, error) {
	var u User
	var en int
	err := r.Scan(&u.ID, &u.Name, &u.DomainID, &u.DefaultProjectID, &u.Email, &u.Description, &en)
	u.Enabled = en == 1
	return u, err
}

func checkPassword(pw string) error {
	if len(pw) > MaxPasswordLength {
		return invalid("Invalid input for field 'password': the password is longer than %d characters.", MaxPasswordLength)
	}
	return nil
}

// CreateUser creates a user with a password ("" for none: such a user
// cannot authenticate with a password).
func (s *Store) CreateUser(ctx context.Context, u *User, password string) error {
	if err := checkName("user", u.Name, 255); err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	if u.DomainID == "" {
		u.DomainID = DefaultDomainID
	}
	if _, err := s.GetDomain(ctx, u.DomainID); err != nil {
		return err
	}
	if u.DefaultProjectID != "" {
		if _, err := s.GetProject(ctx, u.DefaultProjectID); err != nil {
			return err
		}
	}
	hash := ""
	if password != "" {
		var err error
		if hash, err = s.hash(ctx, password); err != nil {
			return err
		}
	}
	if u.ID == "" {
		u.ID = newID()
	}
	_, err := s.db.Exec(ctx, `INSERT INTO id_users (id, name, domain_id, password_hash, enabled, default_project_id, email, description, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, u.ID, u.Name, u.DomainID, hash, b2i(u.Enabled), u.DefaultProjectID, u.Email, u.Description, db.Micros(s.now()))
	if db.IsUniqueViolation(err) {
		return &ConflictError{"user", fmt.Sprintf("Duplicate entry found with name %s at domain ID %s", u.Name, u.DomainID)}
	}
	return err
}

// GetUser reads a user by id.
func (s *Store) GetUser(ctx context.Context, id string) (User, error) {
	return getOne(ctx, s, scanUser, "user", id, `SELECT `+userCols+` FROM id_users WHERE id = ?`, id)
}

// UserByName reads a user by name in a domain.
func (s *Store) UserByName(ctx context.Context, domainID, name string) (User, error) {
	return getOne(ctx, s, scanUser, "user", name, `SELECT `+userCols+` FROM id_users WHERE domain_id = ? AND name = ?`, domainID, name)
}

// UserFilter narrows ListUsers.
type UserFilter struct {
	Name, DomainID string
	Enabled        *bool
}

// ListUsers lists users.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]User, error) {
	var where []string
	var args []any
	if f.Name != "" {
		where, args = append(where, "name = ?"), append(args, f.Name)
	}
	if f.DomainID != "" {
		where, args = append(where, "domain_id = ?"), append(args, f.DomainID)
	}
	if f.Enabled != nil {
		where, args = append(where, "enabled = ?"), append(args, b2i(*f.Enabled))
	}
	q := `SELECT ` + userCols + ` FROM id_users`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	return db.Collect(ctx, s.db, scanUser, q+` ORDER BY name, id`, args...)
}

// UserPatch is a partial update; nil fields stay. A new password revokes
// the user's tokens.
type UserPatch struct {
	Name, Description, Email, DefaultProjectID, Password *string
	Enabled                                              *bool
}

// UpdateUser changes a user and returns it.
func (s *Store) UpdateUser(ctx context.Context, id string, p UserPatch) (User, error) {
	cur, err := s.GetUser(ctx, id)
	if err != nil {
		return cur, err
	}
	if p.Name != nil {
		if err := checkName("user", *p.Name, 255); err != nil {
			return cur, err
		}
		cur.Name = *p.Name
	}
	if p.Description != nil {
		cur.Description = *p.Description
	}
	if p.Email != nil {
		cur.Email = *p.Email
	}
	if p.DefaultProjectID != nil {
		if *p.DefaultProjectID != "" {
			if _, err := s.GetProject(ctx, *p.DefaultProjectID); err != nil {
				return cur, err
			}
		}
		cur.DefaultProjectID = *p.DefaultProjectID
	}
	if p.Enabled != nil {
		cur.Enabled = *p.Enabled
	}
	var hash string
	if p.Password != nil {
		if err := checkPassword(*p.Password); err != nil {
			return cur, err
		}
		if *p.Password != "" {
			if hash, err = s.hash(ctx, *p.Password); err != nil {
				return cur, err
			}
		}
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE id_users SET name = ?, description = ?, email = ?, default_project_id = ?, enabled = ? WHERE id = ?`,
			cur.Name, cur.Description, cur.Email, cur.DefaultProjectID, b2i(cur.Enabled), id)
		if err != nil {
			return err
		}
		if p.Password != nil {
			if _, err := tx.Exec(ctx, `UPDATE id_users SET password_hash = ? WHERE id = ?`, hash, id); err != nil {
				return err
			}
		}
		if p.Enabled != nil && *p.Enabled {
			// Enabling a user lifts a lockout, as Keystone's User.enabled
			// setter resets failed_auth_count.
			if _, err := tx.Exec(ctx, `UPDATE id_users SET failed_auth_count = 0, failed_auth_at = 0 WHERE id = ?`, id); err != nil {
				return err
			}
		}
		if p.Password != nil || !cur.Enabled {
			_, err = tx.Exec(ctx, `UPDATE id_tokens SET revoked = 1 WHERE user_id = ?`, id)
		}
		return err
	})
	if db.IsUniqueViolation(err) {
		return cur, &ConflictError{"user", fmt.Sprintf("Duplicate entry found with name %s at domain ID %s", cur.Name, cur.DomainID)}
	}
	return cur, err
}

// DeleteUser deletes a user, their role assignments and their tokens.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM id_assignments WHERE user_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE id_tokens SET revoked = 1 WHERE user_id = ?`, id); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM id_users WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &NotFoundError{"user", id}
		}
		return nil
	})
}

// ---- roles ----

const roleCols = `id, name, description`

func scanRole(r db.Scanner) (Role, error) {
	var x Role
	return x, r.Scan(&x.ID, &x.Name, &x.Description)
}

// CreateRole creates a role.
func (s *Store) CreateRole(ctx context.Context, r *Role) error {
	if err := checkName("role", r.Name, 255); err != nil {
		return err
	}
	if r.ID == "" {
		r.ID = newID()
	}
	_, err := s.db.Exec(ctx, `INSERT INTO id_roles (id, name, description, created_at) VALUES (?, ?, ?, ?)`, r.ID, r.Name, r.Description, db.Micros(s.now()))
	if db.IsUniqueViolation(err) {
		return &ConflictError{"role", fmt.Sprintf("Duplicate entry found with name %s", r.Name)}
	}
	return err
}

// GetRole reads a role by id.
func (s *Store) GetRole(ctx context.Context, id string) (Role, error) {
	return getOne(ctx, s, scanRole, "role", id, `SELECT `+roleCols+` FROM id_roles WHERE id = ?`, id)
}

// RoleByName reads a role by name.
func (s *Store) RoleByName(ctx context.Context, name string) (Role, error) {
	return getOne(ctx, s, scanRole, "role", name, `SELECT `+roleCols+` FROM id_roles WHERE name = ?`, name)
}

// ListRoles lists roles, optionally by name.
func (s *Store) ListRoles(ctx context.Context, name string) ([]Role, error) {
	q := `SELECT ` + roleCols + ` FROM id_roles`
	var args []any
	if name != "" {
		q += ` WHERE name = ?`
		args = append(args, name)
	}
	return db.Collect(ctx, s.db, scanRole, q+` ORDER BY name`, args...)
}

// DeleteRole deletes a role, its assignments and implications.
func (s *Store) DeleteRole(ctx context.Context, id string) error {
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM id_assignments WHERE role_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM id_implied_roles WHERE prior_role_id = ? OR implied_role_id = ?`, id, id); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM id_roles WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &NotFoundError{"role", id}
		}
		return nil
	})
}

// Imply records that holding prior grants implied as well.
func (s *Store) Imply(ctx context.Context, priorID, impliedID string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO id_implied_roles (prior_role_id, implied_role_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, priorID, impliedID)
	return err
}

// ---- assignments ----

// Grant gives a user a role on a project (idempotent).
func (s *Store) Grant(ctx context.Context, a Assignment) error {
	if err := s.checkAssignment(ctx, a); err != nil {
		return err
	}
	_, err := s.db.Exec(ctx, `INSERT INTO id_assignments (user_id, project_id, role_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, a.UserID, a.ProjectID, a.RoleID)
	return err
}

func (s *Store) checkAssignment(ctx context.Context, a Assignment) error {
	if _, err := s.GetUser(ctx, a.UserID); err != nil {
		return err
	}
	if _, err := s.GetProject(ctx, a.ProjectID); err != nil {
		return err
	}
	_, err := s.GetRole(ctx, a.RoleID)
	return err
}

// Ungrant removes a role assignment.
func (s *Store) Ungrant(ctx context.Context, a Assignment) error {
	if err := s.checkAssignment(ctx, a); err != nil {
		return err
	}
	res, err := s.db.Exec(ctx, `DELETE FROM id_assignments WHERE user_id = ? AND project_id = ? AND role_id = ?`, a.UserID, a.ProjectID, a.RoleID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return &NotFoundError{"role assignment", a.RoleID}
	}
	return nil
}

// HasAssignment reports whether the assignment exists directly.
func (s *Store) HasAssignment(ctx context.Context, a Assignment) (bool, error) {
	if err := s.checkAssignment(ctx, a); err != nil {
		return false, err
	}
	var n int
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM id_assignments WHERE user_id = ? AND project_id = ? AND role_id = ?`, a.UserID, a.ProjectID, a.RoleID).Scan(&n)
	return n > 0, err
}

// ListAssignments lists direct assignments, narrowed by any non-empty field of f.
func (s *Store) ListAssignments(ctx context.Context, f Assignment) ([]Assignment, error) {
	var where []string
	var args []any
	if f.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, f.UserID)
	}
	if f.ProjectID != "" {
		where, args = append(where, "project_id = ?"), append(args, f.ProjectID)
	}
	if f.RoleID != "" {
		where, args = append(where, "role_id = ?"), append(args, f.RoleID)
	}
	q := `SELECT user_id, project_id, role_id FROM id_assignments`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	return db.Collect(ctx, s.db, func(r db.Scanner) (Assignment, error) {
		var a Assignment
		return a, r.Scan(&a.UserID, &a.ProjectID, &a.RoleID)
	}, q+` ORDER BY user_id, project_id, role_id`, args...)
}

// EffectiveRoles are a user's roles on a project, implied roles included,
// sorted by name.
func (s *Store) EffectiveRoles(ctx context.Context, userID, projectID string) ([]Role, error) {
	direct, err := db.Collect(ctx, s.db, scanRole, `SELECT r.id, r.name, r.description FROM id_assignments a JOIN id_roles r ON r.id = a.role_id
		WHERE a.user_id = ? AND a.project_id = ?`, userID, projectID)
	if err != nil || len(direct) == 0 {
		return nil, err
	}
	type edge struct{ from, to string }
	edges, err := db.Collect(ctx, s.db, func(r db.Scanner) (edge, error) {
		var e edge
		return e, r.Scan(&e.from, &e.to)
	}, `SELECT prior_role_id, implied_role_id FROM id_implied_roles`)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	queue := []string{}
	for _, r := range direct {
		if !have[r.ID] {
			have[r.ID] = true
			queue = append(queue, r.ID)
		}
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, e := range edges {
			if e.from == id && !have[e.to] {
				have[e.to] = true
				queue = append(queue, e.to)
			}
		}
	}
	all, err := s.ListRoles(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []Role
	for _, r := range all {
		if have[r.ID] {
			out = append(out, r)
		}
	}
	return out, nil
}
