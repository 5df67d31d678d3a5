package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testpoll"
)

type auditLog struct {
	PeriodBeginning string         `json:"period_beginning"`
	PeriodEnding    string         `json:"period_ending"`
	NumHosts        int            `json:"num_hosts"`
	NumHostsDone    int            `json:"num_hosts_done"`
	NumHostsNotRun  int            `json:"num_hosts_not_run"`
	HostsNotRun     []string       `json:"hosts_not_run"`
	OverallStatus   string         `json:"overall_status"`
	Log             map[string]any `json:"log"`
}

// TestUsageAuditLog: every compute cell audits its hosts for the last
// completed month as it starts, and the API gathers the task logs of both
// cells; a period nobody audited lists every host as not run; bad
// timestamps are refused.
func TestUsageAuditLog(t *testing.T) {
	tr := operatorTree(t)
	var got struct {
		Log auditLog `json:"instance_usage_audit_logs"`
	}
	testpoll.Eventually(t, wait, "every host to have run the audit", func() (bool, string) {
		r := tr.Do(t, "GET", "/v2.1/os-instance_usage_audit_log", admin, nil)
		got.Log = auditLog{}
		r.JSON(t, &got)
		return got.Log.NumHostsDone == 4, got.Log.OverallStatus
	})
	l := got.Log
	if l.NumHosts != 4 || l.NumHostsNotRun != 0 || l.OverallStatus != "ALL hosts done. 0 errors." || len(l.Log) != 4 ||
		!strings.HasSuffix(l.PeriodBeginning, "-01 00:00:00") {
		t.Errorf("audit log: %+v", l)
	}
	for h, e := range l.Log {
		if !strings.HasPrefix(h, "api!cell") || !strings.Contains(e.(map[string]any)["message"].(string), "Instance usage audit ran for host") {
			t.Errorf("log of %s: %v", h, e)
		}
	}

	var old struct {
		Log auditLog `json:"instance_usage_audit_log"`
	}
	r := tr.Do(t, "GET", "/v2.1/os-instance_usage_audit_log/2020-01-01%2000:00:00", admin, nil)
	r.JSON(t, &old)
	if old.Log.PeriodBeginning != "2019-11-01 00:00:00" || old.Log.PeriodEnding != "2019-12-01 00:00:00" || old.Log.NumHostsNotRun != 4 ||
		len(old.Log.HostsNotRun) != 4 || old.Log.OverallStatus != "0 of 4 hosts done. 0 errors." {
		t.Errorf("a period nobody audited: %s", r.Body)
	}
	if r := tr.Do(t, "GET", "/v2.1/os-instance_usage_audit_log/yesterday", admin, nil); r.Status != http.StatusBadRequest ||
		!strings.Contains(string(r.Body), "Invalid timestamp for date yesterday") {
		t.Errorf("bad timestamp: %d %s", r.Status, r.Body)
	}
	if r := tr.Do(t, "GET", "/v2.1/os-instance_usage_audit_log", demo, nil); r.Status != http.StatusForbidden {
		t.Errorf("a member reads the audit log: %d", r.Status)
	}
}
