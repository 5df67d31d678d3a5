package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadInvocations(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage"},
		{[]string{"fly"}, 2, `unknown command "fly"`},
		{[]string{"up", "--cells", "0"}, 2, "--cells 0"},
		{[]string{"up", "--hosts-per-cell", "-1"}, 2, "--hosts-per-cell -1"},
		{[]string{"up", "--api-port", "70000"}, 2, "not a port"},
		{[]string{"up", "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"up", "extra"}, 2, "unexpected arguments"},
		{[]string{"serve"}, 2, "--config is required"},
		{[]string{"cell"}, 2, "subcommand"},
		{[]string{"cell", "dance", "--config", "x"}, 2, "unknown subcommand"},
		{[]string{"broker"}, 2, "subcommand"},
		{[]string{"broker", "flush"}, 2, "unknown subcommand"},
		{[]string{"broker", "drain", "--config", "x"}, 2, "--from or --from-store are required"},
		{[]string{"broker", "drain", "--config", "x", "--from", "nats://h:1", "--from-store", "d"}, 2, "one of --from or --from-store"},
		{[]string{"bench", "--cells", "0"}, 2, "--cells 0"},
		{[]string{"bench", "-n", "-5"}, 2, "-n -5"},
		{[]string{"bench", "--depth", "4"}, 2, "--depth 4"},
		{[]string{"bench", "--url", "http://127.0.0.1:1/v2.1"}, 2, "--url needs --token"},
		{[]string{"bench", "--url", "http://127.0.0.1:1/v2.1", "--token", "x"}, 1, "the Compute API at http://127.0.0.1:1/v2.1"},
		{[]string{"bench", "--postgres", "mysql://x"}, 2, "want a postgres:// URL"},
		{[]string{"bench", "--postgres", "postgres://u:pw@127.0.0.1:1/x?sslmode=disable"}, 1, "postgres://u:xxxxx@127.0.0.1:1/x"},
	}
	for _, c := range cases {
		code, _, stderr := runCmd(c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("cellcloud %v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

// Every command's -h prints its usage and exits 0, as its documentation
// promises ("Run cellcloud <command> -h for a command's flags").
func TestEveryCommandHelp(t *testing.T) {
	for _, args := range [][]string{{"up", "-h"}, {"serve", "-h"}, {"cell", "-h"}, {"cell", "add", "-h"}, {"cell", "list", "-h"},
		{"cell", "link-url", "-h"}, {"cell", "cert", "-h"}, {"status", "-h"}, {"openrc", "-h"}, {"bench", "-h"}, {"help"}} {
		code, out, stderr := runCmd(args...)
		if code != 0 || (out+stderr) == "" || !strings.Contains(strings.ToLower(out+stderr), "usage") {
			t.Errorf("cellcloud %v: exit %d, output %q", args, code, out+stderr)
		}
	}
}

func TestCellTableCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "api.json")
	if err := os.WriteFile(cfg, []byte(`{"cell": "api", "data_dir": "data"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCmd("cell", "add", "--config", cfg, "--name", "api!cell1", "--relation", "child",
		"--broker-url", "nats://127.0.0.1:14999", "--weight-offset", "2", "--capability", "hypervisor_type=fake;kvm")
	if code != 0 || !strings.Contains(out, "child api!cell1") {
		t.Fatalf("cell add: exit %d, out %q, err %q", code, out, stderr)
	}
	code, out, _ = runCmd("cell", "list", "--config", cfg)
	if code != 0 || !strings.Contains(out, "api!cell1") || !strings.Contains(out, "nats://127.0.0.1:14999") {
		t.Fatalf("cell list: exit %d, out %q", code, out)
	}
	code, out, _ = runCmd("cell", "list", "--config", cfg, "--json")
	if code != 0 || !strings.Contains(out, `"weight_offset": 2`) || !strings.Contains(out, `"kvm"`) {
		t.Fatalf("cell list --json: exit %d, out %q", code, out)
	}
	bad := [][]string{
		{"--name", "other!cell1", "--relation", "child", "--broker-url", "nats://h:1"},
		{"--name", "api!cell1!deep", "--relation", "child", "--broker-url", "nats://h:1"},
		{"--name", "api!cell2", "--relation", "sibling", "--broker-url", "nats://h:1"},
		{"--name", "api!cell2", "--relation", "child", "--broker-url", "http://h:1"},
		{"--name", "api!cell 2", "--relation", "child", "--broker-url", "nats://h:1"},
		{"--name", "api!cell2", "--relation", "child", "--broker-url", "nats://h:1", "--capability", "novalue"},
	}
	for _, b := range bad {
		code, _, stderr := runCmd(append([]string{"cell", "add", "--config", cfg}, b...)...)
		if code == 0 || stderr == "" {
			t.Errorf("cell add %v: exit %d, want an error", b, code)
		}
	}
	code, out, _ = runCmd("cell", "list", "--config", cfg, "--json")
	if code != 0 || strings.Contains(out, "cell2") {
		t.Errorf("a refused cell add left a row: %s", out)
	}
	if code, _, _ := runCmd("cell", "remove", "--config", cfg, "--name", "api!cell1"); code != 0 {
		t.Fatalf("cell remove: exit %d", code)
	}
	if code, _, stderr := runCmd("cell", "remove", "--config", cfg, "--name", "api!cell1"); code == 0 || !strings.Contains(stderr, "not found") {
		t.Errorf("removing a missing cell: exit %d, %q", code, stderr)
	}
	code, out, _ = runCmd("cell", "list", "--config", cfg)
	if code != 0 || !strings.Contains(out, "CELL api") || strings.Contains(out, "api!cell1") {
		t.Errorf("cell list after remove: exit %d, %q", code, out)
	}
}

func TestCellLinkURLAndPasswordsKeptOutOfListings(t *testing.T) {
	dir := t.TempDir()
	cell := filepath.Join(dir, "cell1.json")
	if err := os.WriteFile(cell, []byte(`{"cell": "api!cell1", "data_dir": "c1", "broker": {"listen": "127.0.0.1:14998"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCmd("cell", "link-url", "--config", cell)
	if code != 0 || !strings.HasPrefix(out, "nats://link:") || !strings.HasSuffix(strings.TrimSpace(out), "@127.0.0.1:14998") {
		t.Fatalf("cell link-url: exit %d, out %q, err %q", code, out, stderr)
	}
	st, err := os.Stat(filepath.Join(dir, "c1", "broker-credentials.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", st, err)
	}
	// The same credentials the next time; another address on request.
	if code, again, _ := runCmd("cell", "link-url", "--config", cell); code != 0 || again != out {
		t.Errorf("cell link-url again: %q, first %q", again, out)
	}
	linkURL := strings.TrimSpace(out)
	password := strings.TrimSuffix(strings.TrimPrefix(linkURL, "nats://link:"), "@127.0.0.1:14998")
	if code, out, _ := runCmd("cell", "link-url", "--config", cell, "--broker-url", "nats://cell1.example:4223"); code != 0 || !strings.Contains(out, password+"@cell1.example:4223") {
		t.Errorf("cell link-url --broker-url: exit %d, %q", code, out)
	}

	api := filepath.Join(dir, "api.json")
	if err := os.WriteFile(api, []byte(`{"cell": "api", "data_dir": "api"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCmd("cell", "link-url", "--config", api); code == 0 || !strings.Contains(stderr, "no fixed port") {
		t.Errorf("cell link-url without a fixed port: exit %d, %q", code, stderr)
	}
	code, out, stderr = runCmd("cell", "add", "--config", api, "--name", "api!cell1", "--relation", "child", "--broker-url", linkURL)
	if code != 0 || strings.Contains(out, password) {
		t.Fatalf("cell add: exit %d, out %q, err %q", code, out, stderr)
	}
	for _, args := range [][]string{{"cell", "list", "--config", api}, {"cell", "list", "--config", api, "--json"}} {
		code, out, _ := runCmd(args...)
		if code != 0 || strings.Contains(out, password) || !strings.Contains(out, "127.0.0.1:14998") {
			t.Errorf("%v: exit %d, %q shows the password or not the broker", args, code, out)
		}
	}
}

func TestCellCertMakesTheTreeCAAndBrokerCertificates(t *testing.T) {
	dir := t.TempDir()
	caKey := filepath.Join(dir, "ca", "tree-ca-key.pem")
	var certs []string
	for _, name := range []string{"api", "api!cell1"} {
		d := strings.ReplaceAll(name, "!", "_")
		cfg := filepath.Join(dir, d+".json")
		body := `{"cell": "` + name + `", "data_dir": "` + d + `", "broker": {"listen": "10.0.0.7:14998", "ca": "ca/tree-ca.pem",
			"tls_cert": "` + d + `/cert.pem", "tls_key": "` + d + `/key.pem"}}`
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, stderr := runCmd("cell", "cert", "--config", cfg, "--ca-key", caKey, "--host", "cell.example")
		if code != 0 || !strings.Contains(out, "10.0.0.7") || !strings.Contains(out, "cell.example") {
			t.Fatalf("cell cert: exit %d, %q %q", code, out, stderr)
		}
		if code, out, _ := runCmd("cell", "link-url", "--config", cfg); code != 0 || !strings.HasPrefix(out, "tls://link:") {
			t.Errorf("cell link-url of a TLS broker: exit %d, %q", code, out)
		}
		certs = append(certs, filepath.Join(dir, d, "cert.pem"))
		for _, key := range []string{caKey, filepath.Join(dir, d, "key.pem")} {
			if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("key %s: %v, want mode 0600", key, err)
			}
		}
	}
	// One CA signed both: the second run reused it.
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca", "tree-ca.pem"))
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("reading the CA: %v", err)
	}
	for _, c := range certs {
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		for _, host := range []string{"10.0.0.7", "cell.example", "127.0.0.1", "localhost"} {
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
				t.Errorf("%s for %s: %v", c, host, err)
			}
		}
	}
	if code, _, stderr := runCmd("cell", "cert", "--config", filepath.Join(dir, "api.json")); code == 0 || !strings.Contains(stderr, "--ca-key") {
		t.Errorf("cell cert without --ca-key: exit %d, %q", code, stderr)
	}
}
