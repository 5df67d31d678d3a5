package sgsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// DefaultFlushInterval is how often the flusher looks at the member log
// unless told otherwise.
const DefaultFlushInterval = 200 * time.Millisecond

// flushBatch bounds the log rows one flush takes.
const flushBatch = 5000

// FlusherConfig configures a Flusher.
type FlusherConfig struct {
	DB     *db.DB
	Sender Sender
	// Interval is how often the log is looked at (default
	// DefaultFlushInterval).
	Interval time.Duration
	Logger   *slog.Logger
}

// Flusher sends the member change log (netdb's
// security_group_member_changes) to the cells that hold the groups: a role
// of the API cell, one goroutine of its own from Start to Shutdown.
type Flusher struct {
	cfg    FlusherConfig
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewFlusher returns a flusher; Start runs it.
func NewFlusher(cfg FlusherConfig) (*Flusher, error) {
	if cfg.DB == nil || cfg.Sender == nil {
		return nil, errors.New("sgsync: the flusher needs a database and a sender")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultFlushInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Flusher{cfg: cfg}, nil
}

// Start runs the flusher until Shutdown.
func (f *Flusher) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		t := time.NewTicker(f.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// A full batch: the next one at once.
			for {
				n, err := f.Once(ctx)
				if err != nil && ctx.Err() == nil {
					f.cfg.Logger.Error("flushing security group member changes", "err", err)
				}
				if err != nil || n < flushBatch {
					break
				}
			}
		}
	}()
	return nil
}

// Shutdown stops the flusher and waits for a flush in progress (what it
// had not committed stays in the log for the next process).
func (f *Flusher) Shutdown(context.Context) error {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	return nil
}

// Once takes the rows of the log (up to a batch, in id order), folds them
// per group to their net effect (per port and address, the last row
// wins: added then removed is removed), raises each group's member
// sequence by one, sends each holder cell one security_group_members with
// the deltas of all its groups (FromSeq the sequence before, ToSeq after),
// and deletes the rows it took, in one transaction: a failure leaves the
// rows for the next pass, and a crash sends nothing twice with different
// numbers. It returns how many rows it took; with an empty log it runs one
// SELECT and no transaction. The rows of a group that is gone are dropped.
func (f *Flusher) Once(ctx context.Context) (int, error) {
	has, err := netdb.HasMemberChanges(ctx, f.cfg.DB)
	if err != nil || !has {
		return 0, err
	}
	n := 0
	err = f.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		rows, err := netdb.TakeMemberChanges(ctx, tx, flushBatch)
		if err != nil {
			return err
		}
		n = len(rows)
		if n == 0 {
			return nil
		}
		type key struct{ port, addr string }
		last := map[string]map[key]bool{}
		ids := make([]int64, 0, len(rows))
		for _, r := range rows {
			ids = append(ids, r.ID)
			g := last[r.GroupID]
			if g == nil {
				g = map[key]bool{}
				last[r.GroupID] = g
			}
			g[key{r.PortID, r.Address}] = r.Added
		}
		groups := slices.Sorted(maps.Keys(last))
		holders, err := netdb.GroupHolders(ctx, tx, groups)
		if err != nil {
			return err
		}
		out := map[string]*wire.SecurityGroupMembers{}
		for _, gid := range groups {
			seq, ok, err := netdb.RaiseMemberSeq(ctx, tx, gid)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			d := wire.MemberDelta{GroupID: gid, FromSeq: seq - 1, ToSeq: seq}
			for k, added := range last[gid] {
				m := wire.GroupMember{PortID: k.port, Address: k.addr}
				if added {
					d.Added = append(d.Added, m)
				} else {
					d.Removed = append(d.Removed, m)
				}
			}
			sortMembers(d.Added)
			sortMembers(d.Removed)
			for _, c := range holders[gid] {
				if out[c] == nil {
					out[c] = &wire.SecurityGroupMembers{}
				}
				out[c].Deltas = append(out[c].Deltas, d)
			}
		}
		rid := fmt.Sprintf("req-sg-members-%d", rows[0].ID)
		for _, c := range slices.Sorted(maps.Keys(out)) {
			if err := f.cfg.Sender.Send(ctx, tx, c, wire.MethodSecurityGroupMembers, rid, out[c]); err != nil {
				return fmt.Errorf("send security group members to %s: %w", c, err)
			}
		}
		if err := netdb.DeleteMemberChanges(ctx, tx, ids); err != nil {
			return err
		}
		f.cfg.Logger.Debug("security group member changes flushed", "request_id", rid, "rows", len(rows), "groups", len(groups), "cells", len(out))
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func sortMembers(ms []wire.GroupMember) {
	slices.SortFunc(ms, func(a, b wire.GroupMember) int {
		if c := strings.Compare(a.PortID, b.PortID); c != 0 {
			return c
		}
		return strings.Compare(a.Address, b.Address)
	})
}
