package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestStatus: cellcloud status signs in with the admin openrc (or a
// noauth token) and prints the tree from os-cells; without credentials it
// says how to give them.
func TestStatus(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Auth: "local", Cells: 2, HostsPerCell: 3})
	code, out, stderr := runCmd("status", "--openrc", tr.OpenRC["admin"].Path)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	for _, want := range []string{`(?m)^api\s+\(API cell\)`, `(?m)^  api!cell1\s+up\s+3 hosts\s+0 instances\s+broker 127\.0\.0\.1:\d+`,
		`(?m)^  api!cell2\s+up\s+3 hosts`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("status output lacks %s:\n%s", want, out)
		}
	}
	t.Setenv("OS_AUTH_URL", "")
	code, _, stderr = runCmd("status", "--data-dir", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "no credentials") {
		t.Errorf("status without credentials: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCmd("status", "--openrc", tr.OpenRC["demo"].Path)
	if code != 1 || !strings.Contains(stderr, "403") {
		t.Errorf("status as a member: exit %d, %q", code, stderr)
	}
}
