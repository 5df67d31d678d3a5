package network_test

import (
	"net/http"
	"testing"
)

// TestQuotasAreUnlimited: a project reads its own quotas (every one -1,
// and limit -1 in the details), not another's; an admin reads any.
func TestQuotasAreUnlimited(t *testing.T) {
	e := newEnv(t)
	var q struct {
		Quota map[string]any `json:"quota"`
	}
	r := e.do(http.MethodGet, "/networking/v2.0/quotas/demo", demo, nil)
	r.json(t, &q)
	if r.status != 200 || len(q.Quota) != 9 || q.Quota["network"] != float64(-1) || q.Quota["floatingip"] != float64(-1) {
		t.Fatalf("own quotas = %d %s", r.status, r.body)
	}
	var d struct {
		Quota map[string]map[string]float64 `json:"quota"`
	}
	r = e.do(http.MethodGet, "/networking/v2.0/quotas/demo/details", demo, nil)
	r.json(t, &d)
	if r.status != 200 || len(d.Quota) != 9 || d.Quota["port"]["limit"] != -1 || d.Quota["port"]["used"] != 0 {
		t.Fatalf("own quota details = %d %s", r.status, r.body)
	}
	// Security groups and rules are counted: the default group (made by
	// this first use) and its four rules, then one more group and its two.
	e.do(http.MethodGet, "/networking/v2.0/security-groups", demo, nil)
	e.do(http.MethodPost, "/networking/v2.0/security-groups", demo, map[string]any{"security_group": map[string]any{"name": "web"}})
	e.do(http.MethodGet, "/networking/v2.0/quotas/demo/details", demo, nil).json(t, &d)
	if d.Quota["security_group"]["used"] != 2 || d.Quota["security_group_rule"]["used"] != 6 || d.Quota["security_group"]["limit"] != -1 {
		t.Fatalf("security group usage = %v, rules %v", d.Quota["security_group"], d.Quota["security_group_rule"])
	}
	r = e.do(http.MethodGet, "/networking/v2.0/quotas/other", demo, nil)
	if typ, msg := r.fault(t, http.StatusForbidden); typ != "PolicyNotAuthorized" || msg != "(rule:get_quota) is disallowed by policy" {
		t.Fatalf("another's quotas: %s %q", typ, msg)
	}
	if r := e.do(http.MethodGet, "/networking/v2.0/quotas/other", admin, nil); r.status != 200 {
		t.Fatalf("admin reads another's quotas: %d %s", r.status, r.body)
	}
}
