package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// PasswordMethod names a user and a password: the user by id, or by name
// in a domain given by id or name.
type PasswordMethod struct {
	UserID, UserName, DomainID, DomainName, Password string
}

// Scope is what a token is asked for: a project by id, or by name in a
// domain given by id or name. The zero Scope means the user's default
// project if they have a role on it, else unscoped.
type Scope struct {
	ProjectID, ProjectName, DomainID, DomainName string
	// Unscoped asks for an unscoped token even if the user has a default
	// project.
	Unscoped bool
}

// AuthRequest is a request for a token, by password or by an existing
// token (rescoping), as POST /v3/auth/tokens takes it.
type AuthRequest struct {
	Password *PasswordMethod
	// Token is an existing token's secret.
	Token string
	Scope Scope
	// Source is the client's address ("host:port" or a host), whose
	// failed password authentications are rate limited; "" is not
	// limited.
	Source string
}

// Issue authenticates and issues a token. It returns the token and its
// secret, which is never stored.
func (s *Store) Issue(ctx context.Context, req AuthRequest) (*Token, string, error) {
	now := s.now().UTC()
	var user User
	var methods []string
	expires := now.Add(s.ttl)
	switch {
	case req.Password != nil:
		u, err := s.checkPassword(ctx, req.Password, sourceKey(req.Source))
		if err != nil {
			return nil, "", err
		}
		user, methods = u, []string{"password"}
	case req.Token != "":
		old, err := s.Validate(ctx, req.Token)
		if err != nil {
			return nil, "", ErrUnauthorized
		}
		// A rescoped token lives no longer than the one it came from.
		user, methods, expires = old.User, old.Methods, old.ExpiresAt
	default:
		return nil, "", invalid("Invalid input for field 'identity': give a password or a token method.")
	}
	project, err := s.scope(ctx, user, req.Scope)
	if err != nil {
		return nil, "", err
	}
	secret, hash, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	audit, _, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	audit = audit[:22]
	pid := ""
	if project != nil {
		pid = project.ID
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM id_tokens WHERE user_id = ? AND expires_at < ?`, user.ID, db.Micros(now)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO id_tokens (hash, audit_id, user_id, project_id, methods, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			hash, audit, user.ID, pid, strings.Join(methods, ","), db.Micros(now), db.Micros(expires))
		return err
	})
	if err != nil {
		return nil, "", err
	}
	t, err := s.token(ctx, audit, methods, user, pid, now, expires)
	if err != nil {
		return nil, "", err
	}
	return t, secret, nil
}

func newSecret() (secret, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	// Hex, not base64url: a token that began with "-" (one in 64 of
	// base64url's) is read as an option by the clients that take a
	// token as an argument (openstack token revoke; a CI run of
	// test/e2e/cli.sh failed so).
	secret = hex.EncodeToString(b)
	return secret, hashSecret(secret), nil
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// checkPassword authenticates a password as Keystone's SQL identity
// backend does (keystone/identity/backends/sql.py authenticate), behind a
// cheap rate limit of the source's failures and a bound on concurrent
// hashing:
//
//   - a source with no failure token left is refused at once (a
//     *ThrottledError), before any database read or hash;
//   - a locked user is refused, even with the right password (an
//     *AccountLockedError), without a hash; attempts while locked do not
//     extend the lock;
//   - a wrong password counts one more consecutive failure, durably, and
//     locks the user at LockoutFailureAttempts, for LockoutDuration from
//     that failure; a lock that has run out restarts the count;
//   - the right password of a disabled user is refused;
//   - a success clears the count and gives the source its token back.
func (s *Store) checkPassword(ctx context.Context, p *PasswordMethod, source string) (User, error) {
	if ok, wait := s.limiter.take(source); !ok {
		return User{}, &ThrottledError{After: wait}
	}
	u, err := s.verifyPassword(ctx, p)
	if !errors.Is(err, ErrUnauthorized) && !errors.Is(err, ErrAccountLocked) {
		// Not a failed authentication: a success, a busy gate, bad input
		// or a database error.
		s.limiter.give(source)
	}
	return u, err
}

// verifyPassword is checkPassword without the rate limit.
func (s *Store) verifyPassword(ctx context.Context, p *PasswordMethod) (User, error) {
	var id string
	switch {
	case p.UserID != "":
		id = p.UserID
	case p.UserName != "":
		dom := p.DomainID
		if dom == "" {
			if p.DomainName == "" {
				return User{}, invalid("Expecting to find domain in user. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
			}
			d, err := s.DomainByName(ctx, p.DomainName)
			if err != nil {
				return User{}, ErrUnauthorized
			}
			dom = d.ID
		}
		u, err := s.UserByName(ctx, dom, p.UserName)
		if err != nil {
			var nf *NotFoundError
			if errors.As(err, &nf) {
				return User{}, ErrUnauthorized
			}
			return User{}, err
		}
		id = u.ID
	default:
		return User{}, invalid("Invalid input for field 'identity/password/user': give an id or a name.")
	}
	var hash string
	var enabled, failures int
	var failedAt int64
	err := s.db.QueryRow(ctx, `SELECT password_hash, enabled, failed_auth_count, failed_auth_at FROM id_users WHERE id = ?`, id).Scan(&hash, &enabled, &failures, &failedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrUnauthorized
	}
	if err != nil {
		return User{}, err
	}
	now := s.now()
	if s.locked(failures, failedAt, now) {
		return User{}, &AccountLockedError{UserID: id}
	}
	var match bool
	if err := s.gate.do(ctx, func() { match = CheckPassword(hash, p.Password) }); err != nil {
		return User{}, err
	}
	if !match {
		if err := s.recordFailure(ctx, id, now); err != nil {
			return User{}, err
		}
		return User{}, ErrUnauthorized
	}
	if enabled != 1 {
		return User{}, ErrUnauthorized
	}
	if failures > 0 {
		if _, err := s.db.Exec(ctx, `UPDATE id_users SET failed_auth_count = 0, failed_auth_at = 0 WHERE id = ?`, id); err != nil {
			return User{}, err
		}
	}
	return s.GetUser(ctx, id)
}

// locked reports whether failures in a row, the last at failedAt
// (microseconds), lock a user at now (Keystone's _is_account_locked).
func (s *Store) locked(failures int, failedAt int64, now time.Time) bool {
	if s.lockAttempts == 0 || failures < s.lockAttempts {
		return false
	}
	return s.lockDuration <= 0 || now.Before(db.FromMicros(failedAt).Add(s.lockDuration))
}

// recordFailure counts a wrong password (Keystone's _record_failed_auth)
// in one statement, so that concurrent failures all count; a count that
// reached the lock whose time has run out starts again at 1. Nothing is
// counted when lockout is off.
func (s *Store) recordFailure(ctx context.Context, id string, now time.Time) error {
	if s.lockAttempts == 0 {
		return nil
	}
	expired := int64(math.MinInt64) // a lock without a duration never runs out
	if s.lockDuration > 0 {
		expired = db.Micros(now.Add(-s.lockDuration))
	}
	_, err := s.db.Exec(ctx, `UPDATE id_users SET
		failed_auth_count = CASE WHEN failed_auth_count >= ? AND failed_auth_at <= ? THEN 1 ELSE failed_auth_count + 1 END,
		failed_auth_at = ? WHERE id = ?`, s.lockAttempts, expired, db.Micros(now), id)
	return err
}

// scope finds the project a token is asked for and checks the user has a
// role on it.
func (s *Store) scope(ctx context.Context, u User, sc Scope) (*Project, error) {
	if sc.Unscoped {
		return nil, nil
	}
	var p Project
	var err error
	switch {
	case sc.ProjectID != "":
		p, err = s.GetProject(ctx, sc.ProjectID)
	case sc.ProjectName != "":
		dom := sc.DomainID
		if dom == "" {
			if sc.DomainName == "" {
				return nil, invalid("Invalid input for field 'scope/project/domain': a project given by name needs its domain.")
			}
			d, derr := s.DomainByName(ctx, sc.DomainName)
			if derr != nil {
				return nil, ErrUnauthorized
			}
			dom = d.ID
		}
		p, err = s.ProjectByName(ctx, dom, sc.ProjectName)
	case u.DefaultProjectID != "":
		// Keystone scopes to the default project when the user may use it.
		dp, derr := s.GetProject(ctx, u.DefaultProjectID)
		if derr != nil || !dp.Enabled {
			return nil, nil
		}
		roles, rerr := s.EffectiveRoles(ctx, u.ID, dp.ID)
		if rerr != nil {
			return nil, rerr
		}
		if len(roles) == 0 {
			return nil, nil
		}
		return &dp, nil
	default:
		return nil, nil
	}
	if err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return nil, ErrUnauthorized
		}
		return nil, err
	}
	if !p.Enabled {
		return nil, ErrUnauthorized
	}
	roles, err := s.EffectiveRoles(ctx, u.ID, p.ID)
	if err != nil {
		return nil, err
	}
	if len(roles) == 0 {
		return nil, &ScopeError{Msg: fmt.Sprintf("User %s has no access to project %s", u.ID, p.ID)}
	}
	return &p, nil
}

// token assembles a Token, reading the roles now.
func (s *Store) token(ctx context.Context, audit string, methods []string, u User, projectID string, issued, expires time.Time) (*Token, error) {
	t := &Token{AuditID: audit, Methods: methods, User: u, IssuedAt: issued, ExpiresAt: expires}
	var err error
	if t.UserDom, err = s.GetDomain(ctx, u.DomainID); err != nil {
		return nil, err
	}
	if projectID == "" {
		return t, nil
	}
	p, err := s.GetProject(ctx, projectID)
	if err != nil {
		return nil, err
	}
	t.Project = &p
	if t.ProjDom, err = s.GetDomain(ctx, p.DomainID); err != nil {
		return nil, err
	}
	if t.Roles, err = s.EffectiveRoles(ctx, u.ID, p.ID); err != nil {
		return nil, err
	}
	return t, nil
}

// Validate returns what a token stands for, or ErrTokenNotFound when it
// does not exist, has expired or was revoked, or when its user or project
// is disabled or gone, or the user no longer has a role on the project.
func (s *Store) Validate(ctx context.Context, secret string) (*Token, error) {
	if secret == "" || len(secret) > 1024 {
		return nil, ErrTokenNotFound
	}
	var audit, userID, projectID, methods string
	var issued, expires int64
	err := s.db.QueryRow(ctx, `SELECT audit_id, user_id, project_id, methods, issued_at, expires_at FROM id_tokens WHERE hash = ? AND revoked = 0`,
		hashSecret(secret)).Scan(&audit, &userID, &projectID, &methods, &issued, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrTokenNotFound
	}
	if err != nil {
		return nil, err
	}
	if !s.now().Before(db.FromMicros(expires)) {
		return nil, ErrTokenNotFound
	}
	u, err := s.GetUser(ctx, userID)
	if err != nil || !u.Enabled {
		return nil, ErrTokenNotFound
	}
	t, err := s.token(ctx, audit, strings.Split(methods, ","), u, projectID, db.FromMicros(issued), db.FromMicros(expires))
	if err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return nil, ErrTokenNotFound
		}
		return nil, err
	}
	if t.Project != nil && (!t.Project.Enabled || len(t.Roles) == 0) {
		return nil, ErrTokenNotFound
	}
	return t, nil
}

// Revoke revokes a token. A token that does not exist or is no longer
// valid is ErrTokenNotFound.
func (s *Store) Revoke(ctx context.Context, secret string) error {
	res, err := s.db.Exec(ctx, `UPDATE id_tokens SET revoked = 1 WHERE hash = ? AND revoked = 0 AND expires_at > ?`, hashSecret(secret), db.Micros(s.now()))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrTokenNotFound
	}
	return nil
}
