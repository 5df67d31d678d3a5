package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// schemas are the PostgreSQL schemas of Options.Postgres: one per cell,
// named by a prefix of the run and the cell's path, each made when the
// tree asks for the cell's database and all dropped by drop.
type schemas struct {
	base, prefix string
	admin        *db.DB
	mu           sync.Mutex
	made         []string
}

func newSchemas(ctx context.Context, base string) (*schemas, error) {
	admin, err := db.OpenPool(ctx, base, db.Pool{MaxOpen: 1})
	if err != nil {
		return nil, fmt.Errorf("--postgres: %w", err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &schemas{base: base, prefix: "bench_" + hex.EncodeToString(b), admin: admin}, nil
}

// dsn makes the cell's schema and answers a URL that uses it. A failure
// answers the base URL with a search path that does not exist, so that
// the cell's start fails naming it.
func (s *schemas) dsn(cell string) string {
	name := s.prefix + "_" + strings.NewReplacer("!", "_", "-", "_").Replace(cell)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.admin.Exec(ctx, `CREATE SCHEMA `+name); err == nil {
		s.mu.Lock()
		s.made = append(s.made, name)
		s.mu.Unlock()
	}
	u, err := db.WithSearchPath(s.base, name)
	if err != nil {
		return s.base
	}
	return u
}

// drop drops every schema made and closes the connection.
func (s *schemas) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range s.made {
		_, _ = s.admin.Exec(ctx, `DROP SCHEMA `+name+` CASCADE`)
	}
	s.admin.Close()
}
