package cellsched

import (
	"slices"
	"strings"
	"unicode"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

// aggregateSpecScope is the extra specs scope that
// AggregateInstanceExtraSpecsFilter reads, besides unscoped keys.
const aggregateSpecScope = "aggregate_instance_extra_specs"

// AggregateInstanceExtraSpecsFilter is the cell side of Nova's filter of the
// same name: a flavor's extra specs, unscoped or scoped
// "aggregate_instance_extra_specs:", must each be met by the metadata of
// the host's aggregates. A cell passes unless its report shows that no
// host has a spec's key, or that no host has a value the spec can match
// (plain equality, "s==" and "<or>"; any other operator passes). The host
// scheduler then checks each host for all specs at once.
//
// A report that says nothing of aggregates passes, and so do keys starting
// with capacity.TenantKeyPrefix, which reports carry as projects.
type AggregateInstanceExtraSpecsFilter struct{}

// Passes implements Filter.
func (AggregateInstanceExtraSpecsFilter) Passes(req *Request, c *Candidate) bool {
	a := c.Report.Aggregates
	if a == nil {
		return true
	}
	for key, spec := range req.ExtraSpecs {
		k, ok := aggregateSpecKey(key)
		if !ok || strings.HasPrefix(k, capacity.TenantKeyPrefix) {
			continue
		}
		vals, anyValue, ok := a.HasKey(k)
		if !ok {
			return false
		}
		if !anyValue && !specMayMatch(vals, spec) {
			return false
		}
	}
	return true
}

// aggregateSpecKey is the metadata key an extra spec key asks for, and
// false for a key of another scope.
func aggregateSpecKey(key string) (string, bool) {
	scope, k, scoped := strings.Cut(key, ":")
	if !scoped {
		return key, true
	}
	return k, scope == aggregateSpecScope
}

// pyIsSpace is whitespace as Python's str.split sees it, which Nova's
// matching splits a spec at: Go's and the separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// specOperators are the operators of Nova's extra specs matching, "<or>"
// aside: a spec whose first word is none of them asks for equality.
var specOperators = []string{"=", "<in>", "<all-in>", "==", "!=", ">=", "<=", "s==", "s!=", "s<", "s<=", "s>", "s>="}

// specMayMatch reports whether one of vals may match spec: exactly for
// equality, "s==" and "<or>", and true for the other operators (and for a
// spec Nova could not parse).
func specMayMatch(vals []string, spec string) bool {
	words := strings.FieldsFunc(spec, pyIsSpace)
	if len(words) == 0 || (words[0] != "<or>" && !slices.Contains(specOperators, words[0])) {
		return slices.Contains(vals, spec)
	}
	switch words[0] {
	case "s==":
		if len(words) < 2 {
			return true
		}
		return slices.Contains(vals, words[1])
	case "<or>":
		// "<or> a <or> b": the alternatives are every other word.
		if len(words) < 2 {
			return true
		}
		for i := 1; i < len(words); i += 2 {
			if slices.Contains(vals, words[i]) {
				return true
			}
		}
		return false
	}
	return true
}
