package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/node"
	"github.com/cellcloud/cellcloud/internal/openrc"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// An API cell run as `serve` does (CELLCLOUD_ADMIN_PASSWORD set): it
// writes DATA_DIR/openrc-admin, with which `status --config` signs in and
// prints the tree after the cell's database and broker; `openrc` prints
// the same credentials. With the cell stopped, `status --config` names
// the broker it cannot reach and exits 1.
func TestServeOpenRCAndStatusConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api.json")
	body := fmt.Sprintf(`{"cell": "api", "data_dir": "data", "broker": {"listen": "127.0.0.1:%d"}, "api": {"listen": "127.0.0.1:%d"}}`, freePort(t), freePort(t))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.API.AdminPassword = "pw-of-admin"
	n, err := node.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			n.Shutdown(context.Background())
		}
	}()

	rc := filepath.Join(cfg.DataDir, "openrc-admin")
	if n.AdminOpenRC() != rc {
		t.Errorf("AdminOpenRC %q, want %q", n.AdminOpenRC(), rc)
	}
	st, err := os.Stat(rc)
	if err != nil {
		t.Fatalf("serve wrote no openrc: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("openrc-admin mode %v, want 0600", st.Mode().Perm())
	}
	env, err := openrc.Read(rc)
	if err != nil {
		t.Fatal(err)
	}
	if env["OS_PASSWORD"] != "pw-of-admin" || env["OS_AUTH_URL"] != "http://"+cfg.API.Listen+"/identity/v3" || env["OS_USERNAME"] != "admin" {
		t.Errorf("openrc-admin: %v", env)
	}

	code, out, stderr := runCmd("status", "--config", path)
	if code != 0 {
		t.Fatalf("status --config: exit %d: %s\n%s", code, stderr, out)
	}
	for _, want := range []string{`(?m)^cell api \(API cell`, `(?m)^database .*cell\.db \(sqlite\): ok`,
		`(?m)^broker +nats://127\.0\.0\.1:\d+: ok \(JetStream enabled`, `(?m)^CELL api`, `(?m)^api\s+\(API cell\)`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("status --config lacks %s:\n%s", want, out)
		}
	}

	code, out, stderr = runCmd("openrc", "--config", path)
	if code != 0 || !strings.Contains(out, "export OS_PASSWORD='pw-of-admin'") || !strings.Contains(out, env["OS_AUTH_URL"]) {
		t.Errorf("openrc: exit %d, %q, %q", code, out, stderr)
	}
	code, out, _ = runCmd("openrc", "--config", path, "--user", "alice", "--project", "p1")
	if code != 0 || !strings.Contains(out, "read -rs OS_PASSWORD_INPUT") || strings.Contains(out, "pw-of-admin") {
		t.Errorf("openrc for another user: exit %d, %q", code, out)
	}
	if code, _, stderr = runCmd("openrc", "--config", path, "--user", "alice"); code != 2 || !strings.Contains(stderr, "--project") {
		t.Errorf("openrc without a project: exit %d, %q", code, stderr)
	}

	n.Shutdown(context.Background())
	stopped = true
	code, out, _ = runCmd("status", "--config", path)
	if code != 1 || !regexp.MustCompile(`(?m)^broker +nats://127\.0\.0\.1:\d+: NOT REACHABLE`).MatchString(out) {
		t.Errorf("status --config of a stopped cell: exit %d:\n%s", code, out)
	}
	if code, _, stderr = runCmd("status", "--config", path, "--data-dir", dir); code != 2 {
		t.Errorf("status --config with --data-dir: exit %d, %q", code, stderr)
	}
}
