package vmstate

import "testing"

func TestStatus(t *testing.T) {
	cases := []struct{ vm, task, want string }{
		{Building, "scheduling", "BUILD"},
		{Active, None, "ACTIVE"},
		{Active, "rebooting", "REBOOT"},
		{Active, "rebooting_hard", "HARD_REBOOT"},
		{Active, "powering-off", "ACTIVE"},
		{Active, "resize_prep", "RESIZE"},
		{Stopped, None, "SHUTOFF"},
		{Stopped, "rebuilding", "REBUILD"},
		{Stopped, "rebooting_hard", "SHUTOFF"},
		{Resized, None, "VERIFY_RESIZE"},
		{Resized, "resize_reverting", "REVERT_RESIZE"},
		{Paused, None, "PAUSED"},
		{Suspended, None, "SUSPENDED"},
		{Rescued, None, "RESCUE"},
		{ShelvedOffloaded, None, "SHELVED_OFFLOADED"},
		{Error, None, "ERROR"},
		{Error, "rebuilding", "REBUILD"},
		{Deleted, None, "DELETED"},
		{"weird", None, "UNKNOWN"},
	}
	for _, c := range cases {
		if got := Status(c.vm, c.task); got != c.want {
			t.Errorf("Status(%q, %q) = %s, want %s", c.vm, c.task, got, c.want)
		}
	}
}

func TestCheck(t *testing.T) {
	stop := Actions["stop"]
	if err := stop.Check("u", Active, None); err != nil {
		t.Errorf("stop from active: %v", err)
	}
	err := stop.Check("u1", Stopped, None)
	if err == nil || err.Error() != "Cannot 'stop' instance u1 while it is in vm_state stopped" {
		t.Errorf("stop from stopped: %v", err)
	}
	err = stop.Check("u1", Active, "powering-off")
	if err == nil || err.Error() != "Cannot 'stop' instance u1 while it is in task_state powering-off" {
		t.Errorf("stop while powering off: %v", err)
	}
	hard := Actions["reboot_hard"]
	if err := hard.Check("u", Paused, "pausing"); err != nil {
		t.Errorf("hard reboot may interrupt pausing: %v", err)
	}
	soft := Actions["reboot_soft"]
	if err := soft.Check("u", Active, "rebooting"); err == nil {
		t.Error("soft reboot allowed while rebooting")
	}
	for key, a := range Actions {
		if a.Name == "" || a.Task == "" || len(a.VMStates) == 0 {
			t.Errorf("action %s is incomplete: %+v", key, a)
		}
	}
}
