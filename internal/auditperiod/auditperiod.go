// Package auditperiod computes usage audit periods as Nova's
// last_completed_audit_period does: the compute cells audit the last
// completed period, and the API cell asks them for the period a request
// names, so both sides must agree on the unit.
package auditperiod

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Default is Nova's default instance_usage_audit_period.
const Default = "month"

var unitRE = regexp.MustCompile(`^(hour|day|month|year)(@([0-9]+))?$`)

// Validate checks a unit such as "month" or "day@3".
func Validate(unit string) error {
	if !unitRE.MatchString(unit) {
		return fmt.Errorf("audit period %q must be hour, day, month or year, optionally @OFFSET", unit)
	}
	return nil
}

// LastCompleted is the last period of unit that ended before before
// (an instant on a boundary has not completed it), in UTC.
func LastCompleted(unit string, before time.Time) (begin, end time.Time, err error) {
	m := unitRE.FindStringSubmatch(unit)
	if m == nil {
		return begin, end, Validate(unit)
	}
	offset := 0
	if m[3] != "" {
		offset, _ = strconv.Atoi(m[3])
	}
	now := before.UTC()
	switch m[1] {
	case "month":
		day := max(offset, 1)
		end = time.Date(now.Year(), now.Month(), day, 0, 0, 0, 0, time.UTC)
		if !end.Before(now) {
			end = time.Date(now.Year(), now.Month()-1, day, 0, 0, 0, 0, time.UTC)
		}
		begin = time.Date(end.Year(), end.Month()-1, day, 0, 0, 0, 0, time.UTC)
	case "year":
		month := time.Month(max(offset, 1))
		end = time.Date(now.Year(), month, 1, 0, 0, 0, 0, time.UTC)
		if !end.Before(now) {
			end = end.AddDate(-1, 0, 0)
		}
		begin = end.AddDate(-1, 0, 0)
	case "day":
		end = time.Date(now.Year(), now.Month(), now.Day(), offset, 0, 0, 0, time.UTC)
		if !end.Before(now) {
			end = end.AddDate(0, 0, -1)
		}
		begin = end.AddDate(0, 0, -1)
	case "hour":
		end = time.Date(now.Year(), now.Month(), now.Day(), now.Hour(), offset, 0, 0, time.UTC)
		if !end.Before(now) {
			end = end.Add(-time.Hour)
		}
		begin = end.Add(-time.Hour)
	}
	return begin, end, nil
}
