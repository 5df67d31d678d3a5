package compute

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/vmstate"
)

func TestStatesFromStatus(t *testing.T) {
	for _, c := range []struct {
		statuses    []string
		vms, tasks  string
		description string
	}{
		{[]string{"ACTIVE"}, "active", "default", "a status of a vm_state's default"},
		{[]string{"active"}, "active", "default", "case does not matter"},
		{[]string{"REBOOT"}, "active", "reboot_pending reboot_started rebooting", "a status of task states"},
		{[]string{"RESIZE"}, "active stopped", "resize_finish resize_migrated resize_migrating resize_prep", "two vm states"},
		{[]string{"SHUTOFF", "PAUSED"}, "paused stopped", "default", "several statuses"},
		{[]string{"MIGRATING"}, "active paused", "migrating", "migrating"},
		{[]string{"DELETED"}, "deleted", "default", "deleted"},
		{[]string{"BOGUS"}, "", "", "nothing"},
	} {
		vms, tasks := statesFromStatus(c.statuses)
		if strings.Join(vms, " ") != c.vms || strings.Join(tasks, " ") != c.tasks {
			t.Errorf("%s: %v → %v %v, want %s / %s", c.description, c.statuses, vms, tasks, c.vms, c.tasks)
		}
	}
	// The map agrees with the status the view shows.
	for vm, m := range statusMap {
		for task, status := range m {
			if task == "default" {
				task = ""
			}
			if got := vmstate.Status(vm, task); got != status {
				t.Errorf("vm %s task %q: the list filter says %s, the view %s", vm, task, status, got)
			}
		}
	}
}

func TestParseISOTime(t *testing.T) {
	utc := func(s string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return v.UTC() }
	for _, c := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2025-03-01T12:30:45Z", utc("2025-03-01T12:30:45Z"), true},
		{"2025-03-01T12:30:45.123456", utc("2025-03-01T12:30:45.123456Z"), true},
		{"2025-03-01 12:30:45+02:00", utc("2025-03-01T10:30:45Z"), true},
		{"2025-03-01T12:30:45-0130", utc("2025-03-01T14:00:45Z"), true},
		{"2025-03-01T12:30", utc("2025-03-01T12:30:00Z"), true},
		{"2025-03-01", utc("2025-03-01T00:00:00Z"), true},
		{"20250301T123045Z", utc("2025-03-01T12:30:45Z"), true},
		{"2025", utc("2025-01-01T00:00:00Z"), true},
		{"2025-02-30", time.Time{}, false},
		{"202503", time.Time{}, false},
		{"2025-03", utc("2025-03-01T00:00:00Z"), true},
		{"2025-13-01", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"2025-03-01T25:00:00Z", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, ok := parseISOTime(c.in)
		if ok != c.ok || !got.Equal(c.want) {
			t.Errorf("parseISOTime(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestSortOptions(t *testing.T) {
	for _, c := range []struct {
		keys, dirs []string
		want, err  string
	}{
		{nil, nil, "[{created_at true}]", ""},
		{[]string{"display_name"}, []string{"asc"}, "[{display_name false}]", ""},
		{[]string{"display_name", "uuid"}, []string{"asc"}, "[{display_name false} {uuid false}]", ""},
		{[]string{"display_name", "uuid"}, []string{"asc", "desc"}, "[{display_name false} {uuid true}]", ""},
		{[]string{"display_name"}, []string{"ASC"}, "", "Unknown sort direction"},
		{[]string{"display_name"}, []string{"asc", "desc"}, "", "Sort direction size exceeds sort key size"},
		{nil, []string{"asc"}, "", "Sort direction size exceeds sort key size"},
	} {
		lr := &listRequest{sortKeys: c.keys, sortDirs: c.dirs}
		got, err := lr.sortOptions()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v %v: %v, want %q", c.keys, c.dirs, err, c.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != c.want {
			t.Errorf("%v %v: %v %v, want %s", c.keys, c.dirs, got, err, c.want)
		}
	}
}
