package conductor

import (
	"sync"
	"time"
)

// earlyIndex is the conductor's memory of the deletes that came before
// their builds (kept in celldb's early_deletes): a build looks here, not in
// the database, so that builds cost no statement more unless one of their
// instances was deleted first.
type earlyIndex struct {
	mu sync.Mutex
	at map[string]time.Time // by instance: when the delete came
}

func (e *earlyIndex) set(at map[string]time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.at = at
}

func (e *earlyIndex) add(uuid string, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.at == nil {
		e.at = map[string]time.Time{}
	}
	if _, ok := e.at[uuid]; !ok {
		e.at[uuid] = at
	}
}

// hits returns those of uuids deleted before they came.
func (e *earlyIndex) hits(uuids []string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, u := range uuids {
		if _, ok := e.at[u]; ok {
			out = append(out, u)
		}
	}
	return out
}

func (e *earlyIndex) remove(uuids []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, u := range uuids {
		delete(e.at, u)
	}
}

// pruneBefore forgets the deletes that came before t, and reports whether
// any is left from before it (then the database has some to prune too).
func (e *earlyIndex) pruneBefore(t time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	pruned := false
	for u, at := range e.at {
		if at.Before(t) {
			delete(e.at, u)
			pruned = true
		}
	}
	return pruned
}
