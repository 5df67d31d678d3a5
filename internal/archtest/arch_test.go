// Package archtest guards the architecture mechanically: it fails when a
// package sits outside the layout or depends on what it must not, and when
// a test polls by hand instead of with testpoll.Eventually.
//
// The layout (docs/architecture.md, "The map of the code"):
//
//	internal/apicell/…      runs only in the API cell (the public APIs, the API copy)
//	internal/computecell/…  runs only in a compute cell (conductor, schedulers, agents)
//	internal/tree/…         runs in every cell: the cells service and its messages
//	internal/<other>        the process (node, config, up) and small shared vocabularies
package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/cellcloud/cellcloud/"

// shared are the packages directly under internal/ (or below them) that
// belong to no cell kind: the process that assembles roles, and vocabularies
// both kinds of cell use. A new package goes into apicell/, computecell/ or
// tree/ unless it is one of these.
var shared = []string{
	"internal/archtest", "internal/auditperiod", "internal/bench", "internal/config", "internal/db",
	"internal/node", "internal/notfound", "internal/openrc", "internal/portid", "internal/privfs", "internal/scenario", "internal/testpoll", "internal/testtree", "internal/up", "internal/vmstate",
}

// rules: packages (prefixes) and the dependencies they must never have,
// directly or not.
var rules = []struct {
	pkgs      []string
	forbidden []string
	why       string
}{
	{
		pkgs:      []string{"internal/apicell/"},
		forbidden: []string{"internal/computecell/"},
		why:       "the API cell knows nothing of hosts and never opens a compute cell's database",
	},
	{
		pkgs:      []string{"internal/computecell/"},
		forbidden: []string{"internal/apicell/"},
		why:       "a compute cell holds only its own data",
	},
	{
		pkgs:      []string{"internal/tree/"},
		forbidden: []string{"internal/apicell/", "internal/computecell/", "internal/node", "internal/config"},
		why:       "the tree's machinery runs in every cell; what a kind of cell does is registered into it",
	},
	{
		pkgs:      []string{"internal/tree/cellsched", "internal/computecell/hostsched", "internal/tree/capacity", "internal/tree/cellpath"},
		forbidden: []string{"internal/db", "internal/tree/broker", "github.com/nats-io/", "net/http", "database/sql"},
		why:       "the schedulers are pure logic against a view of state",
	},
	{
		pkgs: []string{"internal/config", "internal/db", "internal/vmstate", "internal/auditperiod", "internal/testpoll", "internal/notfound", "internal/privfs",
			"internal/portid", "internal/openrc"},
		forbidden: []string{"internal/computecell/", "internal/apicell/api/", "internal/apicell/apicopy", "internal/tree/cells",
			"internal/node", "internal/up"},
		why: "configuration and shared vocabularies import no role",
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
		matched := 0
		for pkg, ds := range deps {
			if !hasPrefix(pkg, r.pkgs) {
				continue
			}
			matched++
			for _, d := range ds {
				if hasPrefix(strings.TrimPrefix(d, mod), r.forbidden) {
					t.Errorf("%s depends on %s: %s", pkg, d, r.why)
				}
			}
		}
		if matched == 0 {
			t.Errorf("no package matches %v: the rule guards nothing (were packages moved?)", r.pkgs)
		}
	}
}

// TestLayout fails for a package that is in none of the layout's places.
func TestLayout(t *testing.T) {
	out, err := exec.Command("go", "list", mod+"internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		p = strings.TrimPrefix(p, mod)
		if hasPrefix(p, []string{"internal/apicell/", "internal/computecell/", "internal/tree/"}) {
			continue
		}
		if slices.ContainsFunc(shared, func(s string) bool { return p == s || strings.HasPrefix(p, s+"/") }) {
			continue
		}
		t.Errorf("package %s is outside the layout: put it under internal/apicell/, internal/computecell/ or internal/tree/, "+
			"or add it to the shared list with a reason", p)
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
