// Package archtest guards the architecture mechanically: it fails when a
// package depends on what it must not.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/cellcloud/cellcloud/"

// rules: packages (prefixes) and the dependencies they must never have,
// directly or not.
var rules = []struct {
	pkgs      []string
	forbidden []string
	why       string
}{
	{
		pkgs:      []string{"internal/api/", "internal/apidb", "internal/apicell"},
		forbidden: []string{"internal/celldb", "internal/conductor", "internal/compute", "internal/network", "internal/scheduler", "internal/virt", "internal/instanceops"},
		why:       "the API cell knows nothing of hosts and never opens a compute cell's database",
	},
	{
		pkgs:      []string{"internal/cellsched", "internal/hostsched", "internal/capacity", "internal/cellpath"},
		forbidden: []string{"internal/db", "internal/broker", "github.com/nats-io/", "net/http", "database/sql"},
		why:       "the schedulers are pure logic against a view of state",
	},
	{
		pkgs:      []string{"internal/celldb", "internal/conductor", "internal/compute", "internal/network", "internal/scheduler", "internal/instanceops"},
		forbidden: []string{"internal/apidb", "internal/api/", "internal/apicell", "internal/imagedb", "internal/netdb"},
		why:       "a compute cell holds only its own data",
	},
	{
		pkgs:      []string{"internal/cells"},
		forbidden: []string{"internal/apidb", "internal/celldb", "internal/api/"},
		why:       "the cells service is the routing machinery; cell-specific handlers are registered into it",
	},
}

func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		deps[strings.TrimPrefix(f[0], mod)] = f[1:]
	}
	if len(deps) < 10 {
		t.Fatalf("go list found only %d packages", len(deps))
	}
	for _, r := range rules {
		for pkg, ds := range deps {
			if !hasPrefix(pkg, r.pkgs) {
				continue
			}
			for _, d := range ds {
				if hasPrefix(strings.TrimPrefix(d, mod), r.forbidden) {
					t.Errorf("%s depends on %s: %s", pkg, d, r.why)
				}
			}
		}
	}
}

func hasPrefix(s string, ps []string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
