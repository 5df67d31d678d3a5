package compute

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/auditperiod"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// os-instance-usage-audit-log: each compute cell audits its hosts' usage
// once per period and keeps a task log; the API gathers every cell's log
// for the period a request names, and the hosts that have not run it.

// usageAuditHandler is os-instance_usage_audit_log, gathered from the
// cells.
type usageAuditHandler struct {
	*base
}

// pyTime is Python's str() of a naive datetime.
func pyTime(t time.Time) string {
	if t.Nanosecond() != 0 {
		return t.UTC().Format("2006-01-02 15:04:05.000000")
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func (h *usageAuditHandler) register(rt *router) {
	rt.handle("GET /v2.1/os-instance_usage_audit_log", "os_compute_api:os-instance-usage-audit-log:list", h.usageAuditLog(false))
	rt.handle("GET /v2.1/os-instance_usage_audit_log/{before}", "os_compute_api:os-instance-usage-audit-log:show", h.usageAuditLog(true))
}

func (h *usageAuditHandler) usageAuditLog(show bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		before := time.Now().UTC()
		if show {
			id := r.PathValue("before")
			layout := "2006-01-02 15:04:05"
			if strings.Contains(id, ".") {
				layout = "2006-01-02 15:04:05.999999"
			}
			t, err := time.Parse(layout, id)
			if err != nil {
				h.fail(w, r, bad("Invalid timestamp for date %s", id))
				return
			}
			before = t
		}
		begin, end, err := auditperiod.LastCompleted(h.cfg.AuditPeriod, before)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		hosts := map[string]bool{}
		logs := map[string]any{}
		seen := map[string]bool{}
		var done, running, items, errs int
		_, err = h.gather(w, r, wire.MethodUsageAudit, wire.UsageAuditQuery{Begin: begin, End: end}, func(cell string, raw json.RawMessage) error {
			var rep wire.UsageAuditReply
			if err := json.Unmarshal(raw, &rep); err != nil {
				return wire.Errorf(wire.CodeBadMessage, "usage audit of %s: %v", cell, err)
			}
			for _, h := range rep.Hosts {
				hosts[qualify(cell, h)] = true
			}
			for _, l := range rep.Logs {
				h := qualify(cell, l.Host)
				seen[h] = true
				switch l.State {
				case "DONE":
					done++
				case "RUNNING":
					running++
				}
				items += l.Instances
				errs += l.Errors
				logs[h] = map[string]any{"state": l.State, "instances": l.Instances, "errors": l.Errors, "message": l.Message}
			}
			return nil
		})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		notRun := []string{}
		for h := range hosts {
			if !seen[h] {
				notRun = append(notRun, h)
			}
		}
		slices.Sort(notRun)
		status := fmt.Sprintf("ALL hosts done. %d errors.", errs)
		if done != len(hosts) {
			status = fmt.Sprintf("%d of %d hosts done. %d errors.", done, len(hosts), errs)
		}
		body := map[string]any{
			"period_beginning": pyTime(begin), "period_ending": pyTime(end),
			"num_hosts": len(hosts), "num_hosts_done": done, "num_hosts_running": running, "num_hosts_not_run": len(notRun),
			"hosts_not_run": notRun, "total_instances": items, "total_errors": errs, "overall_status": status, "log": logs,
		}
		key := "instance_usage_audit_logs"
		if show {
			key = "instance_usage_audit_log"
		}
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{key: body})
	}
}
