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
	r = e.do(http.MethodGet, "/networking/v2.0/quotas/other", demo, nil)
	if typ, msg := r.fault(t, http.StatusForbidden); typ != "PolicyNotAuthorized" || msg != "(rule:get_quota) is disallowed by policy" {
		t.Fatalf("another's quotas: %s %q", typ, msg)
	}
	if r := e.do(http.MethodGet, "/networking/v2.0/quotas/other", admin, nil); r.status != 200 {
		t.Fatalf("admin reads another's quotas: %d %s", r.status, r.body)
	}
}
