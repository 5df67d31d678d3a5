// Package quota is the quota logic of the API cell, free of storage: the
// resources and their defaults (nova.conf [quota]), how a limit is chosen
// (a project's or user's own, else the "default" quota class, else the
// configured default), and the checks with Nova's messages. Usage is never
// stored: the API cell counts it from its own records inside the
// transaction that creates new ones (see apidb), so there is no early
// commit to undo and no usage table to drift.
package quota

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The resources, by Nova's names.
const (
	Instances                = "instances"
	Cores                    = "cores"
	RAM                      = "ram"
	MetadataItems            = "metadata_items"
	KeyPairs                 = "key_pairs"
	ServerGroups             = "server_groups"
	ServerGroupMembers       = "server_group_members"
	InjectedFiles            = "injected_files"
	InjectedFileContentBytes = "injected_file_content_bytes"
	InjectedFilePathBytes    = "injected_file_path_bytes"
	// The network resources are gone from Nova (Neutron has them); they
	// are shown as unlimited before microversion 2.36.
	FixedIPs           = "fixed_ips"
	FloatingIPs        = "floating_ips"
	SecurityGroups     = "security_groups"
	SecurityGroupRules = "security_group_rules"
)

// Resources is every resource, in Nova's order.
var Resources = []string{Instances, Cores, RAM, MetadataItems, KeyPairs, ServerGroups, ServerGroupMembers,
	InjectedFiles, InjectedFileContentBytes, InjectedFilePathBytes, FixedIPs, FloatingIPs, SecurityGroups, SecurityGroupRules}

// Unlimited is the limit that never refuses.
const Unlimited = -1

// MaxLimit is the largest limit the API takes.
const MaxLimit = 2147483647

// Defaults are the configured default limits (nova.conf [quota]).
type Defaults struct {
	Instances                int64 `json:"instances,omitempty"`
	Cores                    int64 `json:"cores,omitempty"`
	RAM                      int64 `json:"ram,omitempty"`
	MetadataItems            int64 `json:"metadata_items,omitempty"`
	KeyPairs                 int64 `json:"key_pairs,omitempty"`
	ServerGroups             int64 `json:"server_groups,omitempty"`
	ServerGroupMembers       int64 `json:"server_group_members,omitempty"`
	InjectedFiles            int64 `json:"injected_files,omitempty"`
	InjectedFileContentBytes int64 `json:"injected_file_content_bytes,omitempty"`
	InjectedFilePathLength   int64 `json:"injected_file_path_length,omitempty"`
}

// NovaDefaults are Nova's defaults.
func NovaDefaults() Defaults {
	return Defaults{Instances: 10, Cores: 20, RAM: 51200, MetadataItems: 128, KeyPairs: 100, ServerGroups: 10,
		ServerGroupMembers: 10, InjectedFiles: 5, InjectedFileContentBytes: 10240, InjectedFilePathLength: 255}
}

// WithNovaDefaults fills zero fields with Nova's defaults (a configured 0
// is therefore not expressible here; configure 0 through the quota-class
// API instead, or give -1 for unlimited).
func (d Defaults) WithNovaDefaults() Defaults {
	n := NovaDefaults()
	fill := func(v *int64, def int64) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&d.Instances, n.Instances)
	fill(&d.Cores, n.Cores)
	fill(&d.RAM, n.RAM)
	fill(&d.MetadataItems, n.MetadataItems)
	fill(&d.KeyPairs, n.KeyPairs)
	fill(&d.ServerGroups, n.ServerGroups)
	fill(&d.ServerGroupMembers, n.ServerGroupMembers)
	fill(&d.InjectedFiles, n.InjectedFiles)
	fill(&d.InjectedFileContentBytes, n.InjectedFileContentBytes)
	fill(&d.InjectedFilePathLength, n.InjectedFilePathLength)
	return d
}

// Validate refuses limits below -1.
func (d Defaults) Validate() error {
	for r, v := range d.Map() {
		if v < Unlimited || v > MaxLimit {
			return fmt.Errorf("quota default %s = %d must be between -1 (unlimited) and %d", r, v, MaxLimit)
		}
	}
	return nil
}

// Map is the defaults by resource name.
func (d Defaults) Map() Limits {
	return Limits{Instances: d.Instances, Cores: d.Cores, RAM: d.RAM, MetadataItems: d.MetadataItems, KeyPairs: d.KeyPairs,
		ServerGroups: d.ServerGroups, ServerGroupMembers: d.ServerGroupMembers, InjectedFiles: d.InjectedFiles,
		InjectedFileContentBytes: d.InjectedFileContentBytes, InjectedFilePathBytes: d.InjectedFilePathLength,
		FixedIPs: Unlimited, FloatingIPs: Unlimited, SecurityGroups: Unlimited, SecurityGroupRules: Unlimited}
}

// Limits are limits by resource.
type Limits map[string]int64

// Effective picks each resource's limit: the user's own row (when asked
// for a user), else the project's, else the default class's, else the
// configured default.
func Effective(defaults Defaults, class, project, user Limits) Limits {
	out := defaults.Map()
	for _, layer := range []Limits{class, project, user} {
		for r, v := range layer {
			if _, ok := out[r]; ok {
				out[r] = v
			}
		}
	}
	return out
}

// Over reports whether using delta more than usage passes limit.
func Over(limit, usage, delta int64) bool { return limit >= 0 && usage+delta > limit }

// ErrRefused is the kind every quota refusal (ExceededError, LimitError)
// matches with errors.Is: the Compute API's table answers it with a 403
// and the refusal's own message.
var ErrRefused = errors.New("quota refused")

// ExceededError is Nova's TooManyInstances: "Quota exceeded for cores,
// instances: Requested 4, 2, but already used 19, 9 of 20, 10 cores,
// instances". It is a 403 at the API.
type ExceededError struct {
	Overs     []string
	Requested []string
	Used      []int64
	Allowed   []int64
}

func (e *ExceededError) Error() string {
	join := func(vs []int64) string {
		s := make([]string, len(vs))
		for i, v := range vs {
			s[i] = strconv.FormatInt(v, 10)
		}
		return strings.Join(s, ", ")
	}
	overs := strings.Join(e.Overs, ", ")
	return fmt.Sprintf("Quota exceeded for %s: Requested %s, but already used %s of %s %s", overs, strings.Join(e.Requested, ", "), join(e.Used), join(e.Allowed), overs)
}

// Is reports whether target is ErrRefused.
func (e *ExceededError) Is(target error) bool { return target == ErrRefused }

// Check checks deltas against limits and usage; the error names every
// resource over, sorted, as Nova's does. requested overrides how a
// resource's request is written (Nova writes "min-max" for instances).
func Check(limits, usage, deltas Limits, requested map[string]string) error {
	var e ExceededError
	keys := make([]string, 0, len(deltas))
	for r := range deltas {
		keys = append(keys, r)
	}
	slices.Sort(keys)
	for _, r := range keys {
		lim, ok := limits[r]
		if !ok || !Over(lim, usage[r], deltas[r]) {
			continue
		}
		req := strconv.FormatInt(deltas[r], 10)
		if s, ok := requested[r]; ok {
			req = s
		}
		e.Overs = append(e.Overs, r)
		e.Requested = append(e.Requested, req)
		e.Used = append(e.Used, usage[r])
		e.Allowed = append(e.Allowed, lim)
	}
	if len(e.Overs) == 0 {
		return nil
	}
	return &e
}

// Fit is how many instances of a flavor (vcpus, ramMB each) a request for
// min to max may build within limits: max if they all fit, else as many as
// fit if that is at least min (Nova's check_num_instances_quota), else an
// ExceededError for max.
func Fit(limits, usage Limits, vcpus, ramMB int64, min, max int) (int, error) {
	deltas := func(n int) Limits {
		return Limits{Instances: int64(n), Cores: int64(n) * vcpus, RAM: int64(n) * ramMB}
	}
	req := map[string]string{}
	if min != max {
		req[Instances] = fmt.Sprintf("%d-%d", min, max)
	}
	err := Check(limits, usage, deltas(max), req)
	if err == nil {
		return max, nil
	}
	allowed := int64(max)
	room := func(r string, per int64) {
		lim := limits[r]
		if lim < 0 || per <= 0 {
			return
		}
		allowed = min64(allowed, (lim-usage[r])/per)
	}
	room(Instances, 1)
	room(Cores, vcpus)
	room(RAM, ramMB)
	if allowed >= int64(min) && allowed > 0 {
		return int(allowed), nil
	}
	return 0, err
}

func min64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

// LimitError is a plain quota refusal with Nova's own message (key pairs,
// server groups, metadata items). It is a 403 at the API.
type LimitError struct{ Msg string }

func (e *LimitError) Error() string { return e.Msg }

// Is reports whether target is ErrRefused.
func (e *LimitError) Is(target error) bool { return target == ErrRefused }

// The refusals with their own messages.
var (
	ErrKeyPairs     = &LimitError{"Quota exceeded, too many key pairs."}
	ErrServerGroups = &LimitError{"Quota exceeded, too many server groups."}
	ErrGroupMembers = &LimitError{"Quota exceeded, too many servers in group"}
)

// MetadataError is Nova's MetadataLimitExceeded.
func MetadataError(limit int64) error {
	return &LimitError{fmt.Sprintf("Maximum number of metadata items exceeds %d", limit)}
}
