package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cell.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(write(t, `{"cell": "api!cell1", "data_dir": "d", "cells": {"report_interval": "2s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Has(RoleCompute) || !c.Has(RoleCells) || c.Has(RoleAPI) {
		t.Errorf("compute cell roles = %v", c.Roles)
	}
	if c.Compute.Hosts != 4 || c.Compute.HostPrefix != "cell1-host" || c.HostNames()[0] != "cell1-host001" {
		t.Errorf("compute defaults: %+v", c.Compute)
	}
	if !filepath.IsAbs(c.DataDir) || !strings.HasSuffix(c.Database, filepath.Join("d", "cell.db")) {
		t.Errorf("data dir %q, database %q", c.DataDir, c.Database)
	}
	if c.Cells.ReportInterval.D() != 2*time.Second {
		t.Errorf("report interval %v", c.Cells.ReportInterval.D())
	}
	if c.Cells.CallTimeout.D() != 10*time.Second {
		t.Errorf("call timeout %v, want 10s", c.Cells.CallTimeout.D())
	}
	api, err := Load(write(t, `{"cell": "api", "data_dir": "/tmp/x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !api.Has(RoleAPI) || api.Has(RoleCompute) || api.API.Listen != "127.0.0.1:8774" {
		t.Errorf("API cell defaults: roles %v listen %q", api.Roles, api.API.Listen)
	}
	pooled, err := Load(write(t, `{"cell": "api", "data_dir": "/tmp/x", "database_pool": {"max_open": 6, "max_idle": 2, "max_lifetime": "30m"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p := pooled.DatabasePool; p.MaxOpen != 6 || p.MaxIdle != 2 || p.MaxLifetime.D() != 30*time.Minute {
		t.Errorf("database_pool %+v", p)
	}
	if api.Broker.Prefix != "cellcloud" || api.Broker.Stream != (BrokerStream{Replicas: 1, Storage: "file"}) {
		t.Errorf("broker defaults: prefix %q stream %+v", api.Broker.Prefix, api.Broker.Stream)
	}
	c, err = Load(write(t, `{"cell": "api", "data_dir": "d", "broker": {"url": "nats://h:1", "prefix": "tree-b", "stream": {"replicas": 3, "storage": "memory", "max_bytes": 1000, "max_msgs": 10, "max_age": "72h"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.Prefix != "tree-b" || c.Broker.Stream != (BrokerStream{Replicas: 3, Storage: "memory", MaxBytes: 1000, MaxMsgs: 10, MaxAge: Duration(72 * time.Hour)}) {
		t.Errorf("broker settings: prefix %q stream %+v", c.Broker.Prefix, c.Broker.Stream)
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"syntax":            {"{\n\"cell\": \"api\",\n  oops\n}", "line 3"},
		"unknown field":     {`{"cell": "api", "data_dir": "d", "colour": "red"}`, `unknown field "colour"`},
		"bad path":          {`{"cell": "api!!x", "data_dir": "d"}`, "invalid cell path"},
		"no data dir":       {`{"cell": "api"}`, "data_dir is required"},
		"unknown role":      {`{"cell": "api", "data_dir": "d", "roles": ["chef"]}`, `unknown role "chef"`},
		"api in a child":    {`{"cell": "api!c", "data_dir": "d", "roles": ["api"]}`, "only in a root"},
		"compute in root":   {`{"cell": "api", "data_dir": "d", "roles": ["compute"]}`, "only in a compute cell"},
		"two brokers":       {`{"cell": "api", "data_dir": "d", "broker": {"url": "nats://x:1", "listen": ":1"}}`, "not both"},
		"bad broker":        {`{"cell": "api", "data_dir": "d", "broker": {"url": "http://x"}}`, "nats://"},
		"bad duration":      {`{"cell": "api", "data_dir": "d", "cells": {"report_interval": "soon"}}`, "duration"},
		"call timeout":      {`{"cell": "api", "data_dir": "d", "cells": {"call_timeout": "-1s"}}`, "call_timeout"},
		"unreachable after": {`{"cell": "api", "data_dir": "d", "cells": {"unreachable_after": "-1s"}}`, "cells.unreachable_after must not be negative"},
		"inbox ack wait":    {`{"cell": "api", "data_dir": "d", "cells": {"inbox_ack_wait": "500ms"}}`, "cells.inbox_ack_wait must be at least 1s (or unset: 60s)"},
		"negative ack wait": {`{"cell": "api", "data_dir": "d", "cells": {"inbox_ack_wait": "-5s"}}`, "cells.inbox_ack_wait must be at least 1s (or unset: 60s)"},
		"fail rate":         {`{"cell": "api!c", "data_dir": "d", "compute": {"fail_rate": 2}}`, "fail_rate"},
		"trailing":          {`{"cell": "api", "data_dir": "d"} {}`, "trailing"},
		"negative timeout":  {`{"cell": "api", "data_dir": "d", "api": {"idle_timeout": "-1s"}}`, "must not be negative"},
		"bad cap":           {`{"cell": "api", "data_dir": "d", "api": {"max_connections_per_client": -2}}`, "max_connections_per_client"},
		"empty":             {``, "EOF"},
		"pool open":         {`{"cell": "api", "data_dir": "d", "database_pool": {"max_open": -1}}`, "database_pool.max_open"},
		"pool idle":         {`{"cell": "api", "data_dir": "d", "database_pool": {"max_open": 4, "max_idle": 5}}`, "database_pool.max_idle"},
		"pool lifetime":     {`{"cell": "api", "data_dir": "d", "database_pool": {"max_lifetime": "-1m"}}`, "database_pool.max_lifetime"},
		"prefix dot":        {`{"cell": "api", "data_dir": "d", "broker": {"prefix": "a.b"}}`, "broker.prefix"},
		"prefix wildcard":   {`{"cell": "api", "data_dir": "d", "broker": {"prefix": "a>"}}`, "broker.prefix"},
		"prefix long":       {`{"cell": "api", "data_dir": "d", "broker": {"prefix": "` + strings.Repeat("p", 33) + `"}}`, "broker.prefix"},
		"replicas":          {`{"cell": "api", "data_dir": "d", "broker": {"url": "nats://h:1", "stream": {"replicas": 7}}}`, "broker.stream.replicas"},
		"replicas embed":    {`{"cell": "api", "data_dir": "d", "broker": {"stream": {"replicas": 3}}}`, "broker.stream.replicas"},
		"storage":           {`{"cell": "api", "data_dir": "d", "broker": {"stream": {"storage": "disk"}}}`, "broker.stream.storage"},
		"max bytes":         {`{"cell": "api", "data_dir": "d", "broker": {"stream": {"max_bytes": -1}}}`, "broker.stream.max_bytes"},
		"max msgs":          {`{"cell": "api", "data_dir": "d", "broker": {"stream": {"max_msgs": -1}}}`, "broker.stream.max_msgs"},
		"max age":           {`{"cell": "api", "data_dir": "d", "broker": {"stream": {"max_age": "10s"}}}`, "broker.stream.max_age"},
		"stream field":      {`{"cell": "api", "data_dir": "d", "broker": {"stream": {"replica": 3}}}`, `unknown field "replica"`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(write(t, c.body))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, c.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("a missing file loaded")
	}
}

// TestAPIServerLimits: the public APIs' server has read, write and idle
// timeouts, a long timeout for image data, and a cap on one client's
// connections by default; each can be set, and the cap lifted with -1.
func TestAPIServerLimits(t *testing.T) {
	c, err := Load(write(t, `{"cell": "api", "data_dir": "d"}`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.API
	if a.ReadTimeout.D() != 60*time.Second || a.WriteTimeout.D() != 120*time.Second || a.IdleTimeout.D() != 60*time.Second ||
		a.ImageDataTimeout.D() != time.Hour || a.MaxConnectionsPerClient != DefaultMaxConnectionsPerClient {
		t.Errorf("defaults: read %v write %v idle %v image data %v per client %d", a.ReadTimeout.D(), a.WriteTimeout.D(),
			a.IdleTimeout.D(), a.ImageDataTimeout.D(), a.MaxConnectionsPerClient)
	}
	c, err = Load(write(t, `{"cell": "api", "data_dir": "d", "api": {"read_timeout": "5s", "write_timeout": "6s", "idle_timeout": "7s",
		"image_data_timeout": "8h", "max_connections_per_client": -1}}`))
	if err != nil {
		t.Fatal(err)
	}
	a = c.API
	if a.ReadTimeout.D() != 5*time.Second || a.WriteTimeout.D() != 6*time.Second || a.IdleTimeout.D() != 7*time.Second ||
		a.ImageDataTimeout.D() != 8*time.Hour || a.MaxConnectionsPerClient != -1 {
		t.Errorf("set: %+v", a)
	}
}

func TestBrokerCredentialsPaths(t *testing.T) {
	c, err := Load(write(t, `{"cell": "api", "data_dir": "d"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.Credentials != filepath.Join(c.DataDir, "broker-credentials.json") {
		t.Errorf("default credentials file %q", c.Broker.Credentials)
	}
	p := write(t, `{"cell": "api", "data_dir": "d", "broker": {"url": "nats://h:1", "credentials": "secret/c.json", "creds_file": "n.creds"}}`)
	c, err = Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.Credentials != filepath.Join(filepath.Dir(p), "secret", "c.json") || c.Broker.CredsFile != filepath.Join(filepath.Dir(p), "n.creds") {
		t.Errorf("relative paths not resolved against the config file: %+v", c.Broker)
	}
	for body, want := range map[string]string{
		`{"creds_file": "n.creds"}`:                                        "creds_file",
		`{"tls_cert": "c.pem", "ca": "ca.pem"}`:                            "tls_key",
		`{"tls_cert": "c.pem", "tls_key": "k.pem"}`:                        "broker.ca",
		`{"url": "tls://h:1", "tls_cert": "c", "tls_key": "k", "ca": "a"}`: "not with broker.url",
	} {
		if _, err := Load(write(t, `{"cell": "api", "data_dir": "d", "broker": `+body+`}`)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("broker %s: %v, want an error naming %s", body, err, want)
		}
	}
	c, err = Load(write(t, `{"cell": "api", "data_dir": "d", "broker": {"tls_cert": "c.pem", "tls_key": "k.pem", "ca": "/etc/ca.pem"}}`))
	if err != nil || !filepath.IsAbs(c.Broker.TLSCert) || c.Broker.CA != "/etc/ca.pem" {
		t.Errorf("TLS files: %+v, %v", c.Broker, err)
	}
}

// TestImageQuotas: no image quota by default (Glance's default); set, each
// is loaded; a negative one is refused.
func TestImageQuotas(t *testing.T) {
	c, err := Load(write(t, `{"cell": "api", "data_dir": "d"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.API.ImageStorageQuota != 0 || c.API.ImageCountQuota != 0 {
		t.Errorf("defaults: storage %d count %d, want no quota", c.API.ImageStorageQuota, c.API.ImageCountQuota)
	}
	c, err = Load(write(t, `{"cell": "api", "data_dir": "d", "api": {"image_storage_quota": 10737418240, "image_count_quota": 100}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.API.ImageStorageQuota != 10<<30 || c.API.ImageCountQuota != 100 {
		t.Errorf("set: storage %d count %d", c.API.ImageStorageQuota, c.API.ImageCountQuota)
	}
	for _, bad := range []string{`{"image_storage_quota": -1}`, `{"image_count_quota": -1}`} {
		if _, err := Load(write(t, `{"cell": "api", "data_dir": "d", "api": `+bad+`}`)); err == nil {
			t.Errorf("%s loaded", bad)
		}
	}
}

// TestShelvedOffloadTime reads Nova's shelved_offload_time as a duration
// or a number of seconds: 0 by default (at once), -1 never.
func TestShelvedOffloadTime(t *testing.T) {
	for body, want := range map[string]time.Duration{
		`{}`:                              0,
		`{"shelved_offload_time": -1}`:    -time.Second,
		`{"shelved_offload_time": 3600}`:  time.Hour,
		`{"shelved_offload_time": "90m"}`: 90 * time.Minute,
	} {
		c, err := Load(write(t, `{"cell": "api!cell1", "data_dir": "d", "compute": `+body+`}`))
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		if got := c.Compute.ShelvedOffloadTime.D(); got != want {
			t.Errorf("%s: shelved_offload_time %v, want %v", body, got, want)
		}
	}
	if _, err := Load(write(t, `{"cell": "api!cell1", "data_dir": "d", "compute": {"shelved_offload_time": "soon"}}`)); err == nil {
		t.Error(`shelved_offload_time "soon" loaded`)
	}
}

// TestNetworkQuota: Neutron's defaults when none is given; a given one
// (0 included) replaces its resource's only; an unknown resource or a
// limit below -1 is refused.
func TestNetworkQuota(t *testing.T) {
	c, err := Load(write(t, `{"cell": "api", "data_dir": "d"}`))
	if err != nil {
		t.Fatal(err)
	}
	if q := c.API.NetworkQuota; q["network"] != 100 || q["port"] != 500 || q["security_group_rule"] != 100 || q["subnetpool"] != -1 {
		t.Errorf("defaults: %v", q)
	}
	c, err = Load(write(t, `{"cell": "api", "data_dir": "d", "api": {"network_quota": {"network": 0, "port": -1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if q := c.API.NetworkQuota; q["network"] != 0 || q["port"] != -1 || q["subnet"] != 100 {
		t.Errorf("set: %v", q)
	}
	for _, bad := range []string{`{"network_quota": {"networks": 1}}`, `{"network_quota": {"subnet": -2}}`} {
		if _, err := Load(write(t, `{"cell": "api", "data_dir": "d", "api": `+bad+`}`)); err == nil {
			t.Errorf("%s loaded", bad)
		}
	}
}

// TestHousekeeping: off by default; on, its defaults; bad values refused
// with a message naming the field.
func TestHousekeeping(t *testing.T) {
	c, err := Load(write(t, `{"cell": "api!cell1", "data_dir": "d"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Housekeeping.ArchiveInterval != 0 {
		t.Errorf("housekeeping on by default: %+v", c.Housekeeping)
	}
	c, err = Load(write(t, `{"cell": "api", "data_dir": "d", "housekeeping": {"archive_interval": "1h"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Housekeeping; h.ArchiveInterval.D() != time.Hour || h.ArchiveOlderThan.D() != 720*time.Hour || h.PurgeOlderThan != 0 || h.MaxRows != 1000 {
		t.Errorf("defaults: %+v", h)
	}
	c, err = Load(write(t, `{"cell": "api", "data_dir": "d", "housekeeping": {"archive_interval": "1h", "archive_older_than": "240h", "purge_older_than": "2160h", "max_rows": 50, "task_log": true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Housekeeping; h.ArchiveOlderThan.D() != 240*time.Hour || h.PurgeOlderThan.D() != 2160*time.Hour || h.MaxRows != 50 || !h.TaskLog {
		t.Errorf("given: %+v", h)
	}
	for body, want := range map[string]string{
		`{"archive_interval": "-1h"}`:                                                         "housekeeping.archive_interval -1h0m0s must not be negative",
		`{"archive_interval": "1h", "max_rows": 0.5}`:                                         "max_rows",
		`{"archive_interval": "1h", "max_rows": 20000}`:                                       "housekeeping.max_rows 20000 must be 1 to 10000",
		`{"archive_interval": "1h", "max_rows": -1}`:                                          "housekeeping.max_rows -1",
		`{"archive_older_than": "24h"}`:                                                       "need housekeeping.archive_interval",
		`{"archive_interval": "1h", "archive_older_than": "-24h"}`:                            "housekeeping.archive_older_than -24h0m0s must not be negative",
		`{"archive_interval": "1h", "archive_older_than": "240h", "purge_older_than": "24h"}`: "housekeeping.purge_older_than 24h0m0s must be at least archive_older_than 240h0m0s",
		`{"archive_interval": "1h", "purge_after": "24h"}`:                                    `unknown field "purge_after"`,
	} {
		_, err := Load(write(t, `{"cell": "api", "data_dir": "d", "housekeeping": `+body+`}`))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

// TestNormalizedConfigLoadsAgain: a configuration that was loaded (its
// defaults filled) and written out loads again to the same thing, as tools
// that generate configurations (and the tests' trees) do.
func TestNormalizedConfigLoadsAgain(t *testing.T) {
	for _, body := range []string{
		`{"cell": "api", "data_dir": "/tmp/x"}`,
		`{"cell": "api!cell1", "data_dir": "/tmp/x"}`,
		`{"cell": "api", "data_dir": "/tmp/x", "housekeeping": {"archive_interval": "1h"}}`,
	} {
		c, err := Load(write(t, body))
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Load(write(t, string(b)))
		if err != nil {
			t.Fatalf("%s: normalized %s does not load again: %v", body, b, err)
		}
		if b2, _ := json.Marshal(again); string(b2) != string(b) {
			t.Errorf("%s: loaded again as %s, was %s", body, b2, b)
		}
	}
}
