package auditperiod

import (
	"testing"
	"time"
)

func TestLastCompleted(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct{ unit, before, begin, end string }{
		// A boundary instant has not completed the period that ends there.
		{"month", "2012-07-01 00:00:00", "2012-05-01 00:00:00", "2012-06-01 00:00:00"},
		{"month", "2012-07-01 00:00:01", "2012-06-01 00:00:00", "2012-07-01 00:00:00"},
		{"month", "2013-01-15 12:00:00", "2012-12-01 00:00:00", "2013-01-01 00:00:00"},
		{"month@15", "2013-01-10 00:00:00", "2012-11-15 00:00:00", "2012-12-15 00:00:00"},
		{"day", "2012-07-03 10:00:00", "2012-07-02 00:00:00", "2012-07-03 00:00:00"},
		{"day@12", "2012-07-03 10:00:00", "2012-07-01 12:00:00", "2012-07-02 12:00:00"},
		{"hour", "2012-07-03 10:30:00", "2012-07-03 09:00:00", "2012-07-03 10:00:00"},
		{"hour@45", "2012-07-03 10:30:00", "2012-07-03 08:45:00", "2012-07-03 09:45:00"},
		{"year", "2012-07-03 10:30:00", "2011-01-01 00:00:00", "2012-01-01 00:00:00"},
		{"year@7", "2012-07-01 00:00:00", "2010-07-01 00:00:00", "2011-07-01 00:00:00"},
	} {
		b, e, err := LastCompleted(c.unit, at(c.before))
		if err != nil || !b.Equal(at(c.begin)) || !e.Equal(at(c.end)) {
			t.Errorf("%s before %s: %v to %v (%v), want %s to %s", c.unit, c.before, b, e, err, c.begin, c.end)
		}
	}
	for _, bad := range []string{"", "week", "month@", "month@x", "Month"} {
		if err := Validate(bad); err == nil {
			t.Errorf("unit %q accepted", bad)
		}
	}
}
