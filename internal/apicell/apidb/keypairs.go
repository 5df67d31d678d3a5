package apidb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// ErrExists is returned when a create would duplicate a unique name.
var ErrExists = errors.New("already exists")

// KeyPair is a user's SSH public key (or x509 certificate), by name, as
// Nova keeps them: per user, not per project.
type KeyPair struct {
	// ID is the row's number, shown by the Compute API's keypair show.
	ID          int64
	UserID      string
	Name        string
	Fingerprint string
	PublicKey   string
	// Type is "ssh" or "x509".
	Type      string
	CreatedAt time.Time
}

const keyPairCols = `id, user_id, name, fingerprint, public_key, type, created_at`

func scanKeyPair(r db.Scanner) (*KeyPair, error) {
	var k KeyPair
	var created int64
	if err := r.Scan(&k.ID, &k.UserID, &k.Name, &k.Fingerprint, &k.PublicKey, &k.Type, &created); err != nil {
		return nil, err
	}
	k.CreatedAt = db.FromMicros(created)
	return &k, nil
}

// CreateKeyPair inserts a key pair and sets its ID. A user's second key pair
// of the same name is ErrExists.
func CreateKeyPair(ctx context.Context, tx *db.Tx, k *KeyPair) error {
	if k.Type == "" {
		k.Type = "ssh"
	}
	// Look first: on PostgreSQL a failed INSERT would abort the transaction.
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM key_pairs WHERE user_id = ? AND name = ?`, k.UserID, k.Name).Scan(&n); err != nil {
		return fmt.Errorf("create key pair %s: %w", k.Name, err)
	}
	if n > 0 {
		return fmt.Errorf("key pair %s of user %s: %w", k.Name, k.UserID, ErrExists)
	}
	err := tx.QueryRow(ctx, `INSERT INTO key_pairs (user_id, name, fingerprint, public_key, type, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, k.UserID, k.Name, k.Fingerprint, k.PublicKey, k.Type, db.Micros(k.CreatedAt)).Scan(&k.ID)
	if db.IsUniqueViolation(err) {
		return fmt.Errorf("key pair %s of user %s: %w", k.Name, k.UserID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create key pair %s: %w", k.Name, err)
	}
	return nil
}

// GetKeyPair reads one of a user's key pairs by name.
func GetKeyPair(ctx context.Context, q Querier, userID, name string) (*KeyPair, error) {
	k, err := scanKeyPair(q.QueryRow(ctx, `SELECT `+keyPairCols+` FROM key_pairs WHERE user_id = ? AND name = ?`, userID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("key pair %s of user %s: %w", name, userID, ErrNotFound)
	}
	return k, err
}

// ListKeyPairs returns a user's key pairs by name, after marker (a name)
// when it is set, at most limit of them when limit > 0. A marker that is
// not one of the user's key pairs is ErrNotFound.
func ListKeyPairs(ctx context.Context, q Querier, userID string, limit int, marker string) ([]*KeyPair, error) {
	where := []string{"user_id = ?"}
	args := []any{userID}
	if marker != "" {
		if _, err := GetKeyPair(ctx, q, userID, marker); err != nil {
			return nil, fmt.Errorf("marker %s: %w", marker, err)
		}
		where = append(where, "name"+binary(q)+" > ?")
		args = append(args, marker)
	}
	query := `SELECT ` + keyPairCols + ` FROM key_pairs WHERE ` + strings.Join(where, " AND ") + ` ORDER BY name` + binary(q)
	if limit > 0 {
		query += " LIMIT ?"
		args = append(args, limit)
	}
	return db.Collect(ctx, q, scanKeyPair, query, args...)
}

// binary is the collation clause that orders text by code point, as SQLite
// does by default, so that both engines list (and page) in the same order.
func binary(q Querier) string {
	if dialectOf(q) == db.Postgres {
		return ` COLLATE "C"`
	}
	return ""
}

func dialectOf(q Querier) db.Dialect {
	switch v := q.(type) {
	case *db.DB:
		return v.Dialect
	case *db.Tx:
		return v.Dialect
	}
	return db.SQLite
}

// DeleteKeyPair deletes one of a user's key pairs by name.
func DeleteKeyPair(ctx context.Context, tx *db.Tx, userID, name string) error {
	res, err := tx.Exec(ctx, `DELETE FROM key_pairs WHERE user_id = ? AND name = ?`, userID, name)
	if err != nil {
		return fmt.Errorf("delete key pair %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("key pair %s of user %s: %w", name, userID, ErrNotFound)
	}
	return nil
}
