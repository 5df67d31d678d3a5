package compute_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/instanceactions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestServerActions drives each action a cell carries out on the host with
// gophercloud, and checks the status it leads to, Nova's 409 for an action
// in the wrong state, and the instance actions the cell recorded.
func TestServerActions(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	sc := tr.Compute(demo)
	adminSC := tr.Compute(admin)
	ctx := ctxT(t)
	id := create(t, tr, demo, map[string]any{"name": "acts", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")

	conflict := func(err error, want string) {
		t.Helper()
		var e gophercloud.ErrUnexpectedResponseCode
		if !asCode(err, &e) || e.Actual != http.StatusConflict || !strings.Contains(string(e.Body), want) {
			t.Errorf("want 409 containing %q, got %v", want, err)
		}
	}

	conflict(servers.Start(ctx, sc, id).ExtractErr(), "Cannot 'start' instance "+id+" while it is in vm_state active")
	conflict(servers.Unpause(ctx, sc, id).ExtractErr(), "Cannot 'unpause' instance "+id+" while it is in vm_state active")

	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"stop", func() error { return servers.Stop(ctx, sc, id).ExtractErr() }, "SHUTOFF"},
		{"start", func() error { return servers.Start(ctx, sc, id).ExtractErr() }, "ACTIVE"},
		{"soft reboot", func() error {
			return servers.Reboot(ctx, sc, id, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr()
		}, "ACTIVE"},
		{"pause", func() error { return servers.Pause(ctx, sc, id).ExtractErr() }, "PAUSED"},
		{"hard reboot from paused", func() error {
			return servers.Reboot(ctx, sc, id, servers.RebootOpts{Type: servers.HardReboot}).ExtractErr()
		}, "ACTIVE"},
		{"suspend", func() error { return servers.Suspend(ctx, sc, id).ExtractErr() }, "SUSPENDED"},
		{"resume", func() error { return servers.Resume(ctx, sc, id).ExtractErr() }, "ACTIVE"},
		{"rescue", func() error {
			pass, err := servers.Rescue(ctx, sc, id, servers.RescueOpts{}).Extract()
			if err == nil && pass == "" {
				t.Error("rescue returned no adminPass")
			}
			return err
		}, "RESCUE"},
		{"unrescue", func() error { return servers.Unrescue(ctx, sc, id).ExtractErr() }, "ACTIVE"},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := waitStatus(t, sc, id, s.want)
		if got.PowerState == 0 {
			t.Errorf("%s: power state not reported", s.name)
		}
	}
	// The second stop while the first is still running is refused.
	if err := servers.Stop(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := servers.Stop(ctx, sc, id).ExtractErr(); err == nil {
		t.Error("a second stop while stopping was accepted")
	}
	waitStatus(t, sc, id, "SHUTOFF")

	// Console output comes from the instance's cell.
	out, err := servers.ShowConsoleOutput(ctx, sc, id, servers.ShowConsoleOutputOpts{Length: 2}).Extract()
	if err != nil || out == "" {
		t.Errorf("console output: %q, %v", out, err)
	}
	if n := strings.Count(strings.TrimRight(out, "\n"), "\n"); n > 1 {
		t.Errorf("length 2 gave %d lines: %q", n+1, out)
	}

	// Reset state is for admins.
	if err := servers.ResetState(ctx, sc, id, servers.StateError).ExtractErr(); err == nil {
		t.Error("a member could reset state")
	}
	if err := servers.ResetState(ctx, adminSC, id, servers.StateError).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "ERROR")
	if err := servers.ResetState(ctx, adminSC, id, servers.StateActive).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	// Not waitStatus: it stops at ERROR, which is where this starts.
	testpoll.Eventually(t, wait, "reset to ACTIVE", func() (bool, string) {
		s, err := servers.Get(ctx, sc, id).Extract()
		if err != nil {
			return false, err.Error()
		}
		return s.Status == "ACTIVE", s.Status
	})

	// Every action was recorded by the cell, newest first, with events.
	pages, err := instanceactions.List(sc, id, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acts, err := instanceactions.ExtractInstanceActions(pages)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range acts {
		names = append(names, a.Action)
	}
	// Actions refused by the API (409) are not recorded, as in Nova.
	want := "resetState resetState stop unrescue rescue resume suspend reboot pause reboot start stop create"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("instance actions\n got: %s\nwant: %s", got, want)
	}
	create := acts[len(acts)-1]
	detail, err := instanceactions.Get(ctx, adminSC, id, create.RequestID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if detail.Events == nil || len(*detail.Events) != 1 || (*detail.Events)[0].Event != "compute__do_build_and_run_instance" || (*detail.Events)[0].Result != "Success" {
		t.Errorf("create action events: %+v", detail.Events)
	}

	// Bad action bodies.
	for _, body := range []string{`{}`, `{"os-stop": null, "os-start": null}`, `{"fly": null}`, `{"reboot": {"type": "GENTLE"}}`, `{"reboot": null}`, `[]`} {
		r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, body)
		testtree.Fault(t, r, http.StatusBadRequest)
	}
	if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", other, `{"os-stop": null}`); r.Status != http.StatusNotFound {
		t.Errorf("another project's stop: %s", r)
	}
}

func asCode(err error, e *gophercloud.ErrUnexpectedResponseCode) bool {
	return errors.As(err, e)
}
