// Package identity is the API cell's own identity service, the subset of
// Keystone v3 that clients need: domains, projects, users with hashed
// passwords, roles (admin implies member implies reader, as Keystone's
// bootstrap sets up), role assignments on projects, and tokens. It keeps
// its tables in the API cell's database (migration set "identity").
//
// A token is a random secret given to the client once; the database keeps
// only its SHA-256, so a copy of the database holds no usable token. A
// token's roles are read from the assignments each time it is validated, so
// removing a role takes effect at once, as revoking the token does.
package identity

import (
	"errors"
	"fmt"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
)

// MigrationSet names the identity schema's migration set.
const MigrationSet = "identity"

// Migrations is the identity schema.
var Migrations = []db.Migration{
	{Version: 1, Name: "domains, projects, users, roles, assignments and tokens", SQL: `
CREATE TABLE id_domains (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	enabled INTEGER NOT NULL DEFAULT 1,
	created_at {{bigint}} NOT NULL
);
CREATE TABLE id_projects (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	domain_id TEXT NOT NULL REFERENCES id_domains (id),
	description TEXT NOT NULL DEFAULT '',
	enabled INTEGER NOT NULL DEFAULT 1,
	created_at {{bigint}} NOT NULL,
	UNIQUE (domain_id, name)
);
CREATE TABLE id_users (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	domain_id TEXT NOT NULL REFERENCES id_domains (id),
	password_hash TEXT NOT NULL DEFAULT '',
	enabled INTEGER NOT NULL DEFAULT 1,
	default_project_id TEXT NOT NULL DEFAULT '',
	email TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	created_at {{bigint}} NOT NULL,
	UNIQUE (domain_id, name)
);
CREATE TABLE id_roles (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	created_at {{bigint}} NOT NULL
);
CREATE TABLE id_implied_roles (
	prior_role_id TEXT NOT NULL REFERENCES id_roles (id),
	implied_role_id TEXT NOT NULL REFERENCES id_roles (id),
	PRIMARY KEY (prior_role_id, implied_role_id)
);
CREATE TABLE id_assignments (
	user_id TEXT NOT NULL REFERENCES id_users (id),
	project_id TEXT NOT NULL REFERENCES id_projects (id),
	role_id TEXT NOT NULL REFERENCES id_roles (id),
	PRIMARY KEY (user_id, project_id, role_id)
);
CREATE INDEX id_assignments_project ON id_assignments (project_id);
CREATE INDEX id_assignments_role ON id_assignments (role_id);
CREATE TABLE id_tokens (
	hash TEXT PRIMARY KEY,
	audit_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	project_id TEXT NOT NULL DEFAULT '',
	methods TEXT NOT NULL,
	issued_at {{bigint}} NOT NULL,
	expires_at {{bigint}} NOT NULL,
	revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX id_tokens_user ON id_tokens (user_id);
CREATE INDEX id_tokens_expires ON id_tokens (expires_at)`},
	// Keystone's local_user.failed_auth_count and failed_auth_at: the
	// consecutive failed password checks and the time of the last (0 for
	// none), kept in the database so that a restart does not lift a
	// lockout.
	{Version: 2, Name: "users' failed authentication count", SQL: `
ALTER TABLE id_users ADD COLUMN failed_auth_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE id_users ADD COLUMN failed_auth_at {{bigint}} NOT NULL DEFAULT 0`},
}

// DefaultDomainID is the id of the domain every cloud has, "Default".
const DefaultDomainID = "default"

// The roles every cloud has; each implies the next.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleReader = "reader"
)

// Domain is an identity domain.
type Domain struct {
	ID, Name, Description string
	Enabled               bool
}

// Project is a project (tenant).
type Project struct {
	ID, Name, DomainID, Description string
	Enabled                         bool
}

// User is a user. The password is never read back.
type User struct {
	ID, Name, DomainID, DefaultProjectID, Email, Description string
	Enabled                                                  bool
}

// Role is a role.
type Role struct {
	ID, Name, Description string
}

// Assignment is a role of a user on a project.
type Assignment struct {
	UserID, ProjectID, RoleID string
}

// Token is what a validated token stands for.
type Token struct {
	AuditID   string
	Methods   []string
	User      User
	UserDom   Domain
	Project   *Project // nil for an unscoped token
	ProjDom   Domain
	Roles     []Role // effective roles on Project, implied ones included
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// RoleNames are the names of t's roles.
func (t *Token) RoleNames() []string {
	out := make([]string, len(t.Roles))
	for i, r := range t.Roles {
		out[i] = r.Name
	}
	return out
}

// Errors. Callers tell them apart with errors.Is and errors.As; the HTTP
// layer maps each to Keystone's status and title in one place.
var (
	// ErrUnauthorized is a failed authentication: a wrong password, an
	// unknown user, a disabled user or project. Its message never says
	// which, as Keystone's does not.
	ErrUnauthorized error = message("The request you have made requires authentication.")
	// ErrTokenNotFound is a token that does not exist, has expired or was
	// revoked.
	ErrTokenNotFound = errors.New("token not found")
	// ErrAccountLocked matches an *AccountLockedError.
	ErrAccountLocked = errors.New("account locked")
	// ErrThrottled matches a *ThrottledError.
	ErrThrottled = errors.New("too many failed authentications")
	// ErrBusy matches a *BusyError.
	ErrBusy = errors.New("busy hashing passwords")

	// The kinds the error types below match with errors.Is (a
	// *NotFoundError matches notfound.Err), so that the HTTP layer's table
	// can name them.
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	ErrScope    = errors.New("scope not allowed")
)

// message is an error whose text is an API message, shown to clients as is.
type message string

func (m message) Error() string { return string(m) }

// NotFoundError names what could not be found.
type NotFoundError struct {
	Kind, ID string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("Could not find %s: %s.", e.Kind, e.ID) }

// Is makes a NotFoundError match notfound.Err.
func (e *NotFoundError) Is(target error) bool { return target == notfound.Err }

// ConflictError is a duplicate.
type ConflictError struct {
	Kind, Detail string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("Conflict occurred attempting to store %s - %s.", e.Kind, e.Detail)
}

// Is makes a ConflictError match ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ValidationError is bad input, named.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

// Is makes a ValidationError match ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// ScopeError is a scope the user may not have: no role on the project.
type ScopeError struct{ Msg string }

func (e *ScopeError) Error() string { return e.Msg }

// Is makes a ScopeError match ErrScope.
func (e *ScopeError) Is(target error) bool { return target == ErrScope }

// AccountLockedError is a password authentication refused, even with the
// right password, because the user failed too many times in a row
// (Keystone's AccountLocked, a 401 with its message).
type AccountLockedError struct{ UserID string }

func (e *AccountLockedError) Error() string {
	return fmt.Sprintf("The account is locked for user: %s.", e.UserID)
}

// Is makes an AccountLockedError match ErrAccountLocked.
func (e *AccountLockedError) Is(target error) bool { return target == ErrAccountLocked }

// ThrottledError is a password authentication refused before the password
// is checked, because its source failed too often lately.
type ThrottledError struct {
	// After is how long until the source may try again.
	After time.Duration
}

func (e *ThrottledError) Error() string {
	return "Too many failed authentication attempts from your address. Try again later."
}

// Is makes a ThrottledError match ErrThrottled.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// RetryAfter is how long until the source may try again.
func (e *ThrottledError) RetryAfter() time.Duration { return e.After }

// BusyError is a password that could not be hashed or checked because as
// many as the store allows are being hashed, and none finished within its
// wait.
type BusyError struct{ After time.Duration }

func (e *BusyError) Error() string {
	return "The server is busy checking passwords. Try again later."
}

// Is makes a BusyError match ErrBusy.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// RetryAfter is a hint of when to try again.
func (e *BusyError) RetryAfter() time.Duration { return e.After }

func invalid(format string, a ...any) error { return &ValidationError{Msg: fmt.Sprintf(format, a...)} }
