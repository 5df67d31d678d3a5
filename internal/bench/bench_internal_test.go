package bench

import "testing"

// TestParseProcStat: the machine's busy time is user, nice, system, irq
// and softirq ticks of /proc/stat's "cpu" line, at 100 a second; idle,
// iowait and steal are not busy, and a line it cannot read says so.
func TestParseProcStat(t *testing.T) {
	const stat = "cpu  1000 20 300 90000 55 4 6 777 0 0\ncpu0 500 10 150 45000 20 2 3 300 0 0\nintr 1 2 3\n"
	got, ok := parseProcStat(stat)
	if !ok || got != 13.30 {
		t.Errorf("busy = %v, %v; want 13.30 s (1330 ticks), true", got, ok)
	}
	for _, bad := range []string{"", "intr 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\n", "cpu 1 2 3\n"} {
		if _, ok := parseProcStat(bad); ok {
			t.Errorf("%q read as a stat", bad)
		}
	}
}
