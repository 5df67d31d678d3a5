package compute_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// ids are the ids of a GET /servers answer, in its order.
func listIDs(t *testing.T, tr *testtree.Tree, token, query, mv string) []string {
	t.Helper()
	r := tr.Do(t, http.MethodGet, "/v2.1/servers"+query, token, nil, atVersion(mv)...)
	if r.Status != http.StatusOK {
		t.Fatalf("list %s at %s: %s", query, mv, r)
	}
	var out struct {
		Servers []struct {
			ID string `json:"id"`
		} `json:"servers"`
	}
	r.JSON(t, &out)
	ids := make([]string, 0, len(out.Servers))
	for _, s := range out.Servers {
		ids = append(ids, s.ID)
	}
	return ids
}

// TestLockReason (2.73): a lock may give a reason (checked against Nova's
// lock_v273 schema), which show, the detailed list, update and rebuild
// answer as locked_reason from 2.73 (null when none); below 2.73 the
// lock's value is not looked at and nothing of it is kept. An admin's lock
// without a reason keeps the one given; the unlock forgets it.
func TestLockReason(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	sc := tr.Compute(demo)
	id := create(t, tr, demo, map[string]any{"name": "reasoned", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	action := func(token, mv string, body any) *testtree.Response {
		t.Helper()
		return tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", token, body, atVersion(mv)...)
	}
	reason := func(v map[string]any) any {
		t.Helper()
		r, ok := v["locked_reason"]
		if !ok {
			return "absent"
		}
		return r
	}
	if r := reason(serverAt(t, tr, demo, id, "2.73")); r != nil {
		t.Errorf("locked_reason of an unlocked server at 2.73: %v; want null", r)
	}
	if r := reason(serverAt(t, tr, demo, id, "2.72")); r != "absent" {
		t.Errorf("locked_reason at 2.72: %v", r)
	}

	// Nova's lock_v273 schema; at 2.72 the same bodies lock.
	for _, c := range []struct {
		body any
		want string
	}{
		{`{"lock": "now"}`, "Invalid input for field/attribute lock. Value: now. 'now' is not of type 'object', 'null'"},
		{`{"lock": []}`, "is not of type 'object', 'null'"},
		{`{"lock": {"locked_reason": ""}}`, "Invalid input for field/attribute locked_reason. Value: . '' should be non-empty"},
		{map[string]any{"lock": map[string]any{"locked_reason": strings.Repeat("r", 256)}}, "is too long"},
		{`{"lock": {"locked_reason": 5}}`, "Invalid input for field/attribute locked_reason. Value: 5. 5 is not of type 'string'"},
		{`{"lock": {"locked_reason": null}}`, "None is not of type 'string'"},
		{`{"lock": {"reason": "x"}}`, "Invalid input for field/attribute lock. Value: {'reason': 'x'}. Additional properties are not allowed ('reason' was unexpected)"},
	} {
		faultHas(t, action(demo, "2.73", c.body), http.StatusBadRequest, c.want)
		if r := serverAt(t, tr, demo, id, "2.73"); r["locked"] != false {
			t.Fatalf("a refused lock %v locked the server", c.body)
		}
		if r := action(demo, "2.72", c.body); r.Status != http.StatusAccepted {
			t.Errorf("lock %v at 2.72: %s", c.body, r)
		}
		if r := action(demo, "2.72", `{"unlock": null}`); r.Status != http.StatusAccepted {
			t.Fatalf("unlock: %s", r)
		}
	}
	// Below 2.73 a reason is not kept.
	if r := action(demo, "2.72", `{"lock": {"locked_reason": "ignored"}}`); r.Status != http.StatusAccepted {
		t.Fatalf("lock at 2.72: %s", r)
	}
	if v := serverAt(t, tr, demo, id, "2.73"); v["locked"] != true || v["locked_reason"] != nil {
		t.Errorf("after a lock at 2.72 with a reason: locked %v, locked_reason %v; want true and null", v["locked"], v["locked_reason"])
	}
	if r := action(demo, "2.73", `{"unlock": null}`); r.Status != http.StatusAccepted {
		t.Fatalf("unlock: %s", r)
	}
	// A null lock and an empty one lock without a reason.
	for _, body := range []string{`{"lock": null}`, `{"lock": {}}`} {
		if r := action(demo, "2.73", body); r.Status != http.StatusAccepted {
			t.Errorf("lock %s at 2.73: %s", body, r)
		}
		if v := serverAt(t, tr, demo, id, "2.73"); v["locked"] != true || v["locked_reason"] != nil {
			t.Errorf("after %s: locked %v, locked_reason %v", body, v["locked"], v["locked_reason"])
		}
		action(demo, "2.73", `{"unlock": null}`)
	}

	const why = "kernel upgrade"
	if r := action(demo, "2.73", map[string]any{"lock": map[string]any{"locked_reason": why}}); r.Status != http.StatusAccepted {
		t.Fatalf("lock with a reason: %s", r)
	}
	if r := reason(serverAt(t, tr, demo, id, "2.73")); r != why {
		t.Errorf("show at 2.73: locked_reason %v", r)
	}
	if r := reason(detailOf(t, tr, demo, id, "2.73")); r != why {
		t.Errorf("detailed list at 2.73: locked_reason %v", r)
	}
	if r := reason(detailOf(t, tr, demo, id, "2.72")); r != "absent" {
		t.Errorf("detailed list at 2.72: locked_reason %v", r)
	}
	rename := func(mv string) map[string]any {
		t.Helper()
		return serverOf(t, tr.Do(t, http.MethodPut, "/v2.1/servers/"+id, demo, map[string]any{"server": map[string]any{"name": "renamed"}},
			atVersion(mv)...), http.StatusOK)
	}
	if r := reason(rename("2.73")); r != why {
		t.Errorf("update at 2.73: locked_reason %v", r)
	}
	if r := reason(rename("2.72")); r != "absent" {
		t.Errorf("update at 2.72: locked_reason %v", r)
	}
	// The owner locking again changes nothing; an admin's lock without a
	// reason takes the lock over and keeps the reason.
	action(demo, "2.73", map[string]any{"lock": map[string]any{"locked_reason": "another"}})
	if r := reason(serverAt(t, tr, demo, id, "2.73")); r != why {
		t.Errorf("after the owner's second lock: locked_reason %v", r)
	}
	if r := action(admin, "2.73", `{"lock": null}`); r.Status != http.StatusAccepted {
		t.Fatalf("admin lock: %s", r)
	}
	if r := reason(serverAt(t, tr, admin, id, "2.73")); r != why {
		t.Errorf("after the admin's lock: locked_reason %v", r)
	}
	// An admin is not held by the lock: its rebuild answers the reason.
	rebuild := func(mv string) map[string]any {
		t.Helper()
		v := serverOf(t, action(admin, mv, map[string]any{"rebuild": map[string]any{"imageRef": imageID}}), http.StatusAccepted)
		waitStatus(t, sc, id, "ACTIVE")
		return v
	}
	if r := reason(rebuild("2.73")); r != why {
		t.Errorf("rebuild at 2.73: locked_reason %v", r)
	}
	if r := reason(rebuild("2.72")); r != "absent" {
		t.Errorf("rebuild at 2.72: locked_reason %v", r)
	}
	if r := action(admin, "2.73", `{"unlock": null}`); r.Status != http.StatusAccepted {
		t.Fatalf("admin unlock: %s", r)
	}
	if v := serverAt(t, tr, demo, id, "2.73"); v["locked"] != false || v["locked_reason"] != nil {
		t.Errorf("after the unlock: locked %v, locked_reason %v", v["locked"], v["locked_reason"])
	}
}

// TestLockedFilterAndSort (2.73): locked filters (strict booleans) and
// sorts GET /servers from 2.73; below, the filter is dropped and the sort
// key ignored. From 2.75 the ignored sort keys and unknown parameters are
// refused.
func TestLockedFilterAndSort(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	sc := tr.Compute(demo)
	locked := create(t, tr, demo, map[string]any{"name": "l", "flavorRef": "1", "imageRef": imageID})
	free := create(t, tr, demo, map[string]any{"name": "f", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, locked, "ACTIVE")
	waitStatus(t, sc, free, "ACTIVE")
	if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+locked+"/action", demo, `{"lock": null}`); r.Status != http.StatusAccepted {
		t.Fatalf("lock: %s", r)
	}
	both := []string{locked, free}
	for _, c := range []struct {
		query, mv string
		want      []string
	}{
		{"?locked=true", "2.73", []string{locked}},
		{"?locked=1", "2.73", []string{locked}},
		{"?locked=False", "2.73", []string{free}},
		{"?locked=no", "2.73", []string{free}},
		{"?locked=true", "2.72", both},
		// An admin's filter too is dropped below 2.73.
		{"?sort_key=locked&sort_dir=asc", "2.73", []string{free, locked}},
		{"?sort_key=locked&sort_dir=desc", "2.73", []string{locked, free}},
	} {
		got := listIDs(t, tr, demo, c.query, c.mv)
		if len(c.want) == 2 && len(got) == 2 && c.query == "?locked=true" {
			// Unfiltered: both, in whatever order.
			slices.Sort(got)
			slices.Sort(c.want)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s at %s = %v; want %v", c.query, c.mv, got, c.want)
		}
	}
	if got := listIDs(t, tr, admin, "?all_tenants=1&locked=true", "2.72"); len(got) < 2 {
		t.Errorf("an admin's locked filter at 2.72 = %v; want it dropped", got)
	}
	if got := listIDs(t, tr, admin, "?all_tenants=1&locked=true", "2.73"); !slices.Equal(got, []string{locked}) {
		t.Errorf("an admin's locked filter at 2.73 = %v", got)
	}
	// sort_key=locked below 2.73 is accepted and ignored: the default
	// order, newest first.
	if got := listIDs(t, tr, demo, "?sort_key=locked&sort_dir=asc", "2.72"); len(got) != 2 {
		t.Errorf("sort by locked at 2.72 = %v", got)
	}
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/servers/detail?locked=maybe", demo, nil, atVersion("2.73")...), http.StatusBadRequest,
		"Invalid input received: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'")
	if r := tr.Do(t, http.MethodGet, "/v2.1/servers/detail?locked=maybe", demo, nil, atVersion("2.72")...); r.Status != http.StatusOK {
		t.Errorf("locked=maybe at 2.72: %s", r)
	}

	// 2.75: the sort keys once ignored are refused, and so are unknown
	// parameters (those starting with "_" are an admin's invalid filter).
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/servers?sort_key=vcpus", demo, nil, atVersion("2.75")...), http.StatusBadRequest,
		"Invalid input for query parameters sort_key. Value: vcpus. 'vcpus' is not one of ['locked', 'access_ip_v4'")
	if r := tr.Do(t, http.MethodGet, "/v2.1/servers?sort_key=vcpus", demo, nil, atVersion("2.74")...); r.Status != http.StatusOK {
		t.Errorf("sort_key=vcpus at 2.74: %s", r)
	}
	if got := listIDs(t, tr, demo, "?sort_key=locked&sort_dir=asc", "2.75"); !slices.Equal(got, []string{free, locked}) {
		t.Errorf("sort by locked at 2.75 = %v", got)
	}
	for _, path := range []string{"/v2.1/servers?foo=1", "/v2.1/servers/detail?foo=1&name=l"} {
		faultHas(t, tr.Do(t, http.MethodGet, path, demo, nil, atVersion("2.75")...), http.StatusBadRequest,
			"Additional properties are not allowed ('foo' was unexpected)")
		if r := tr.Do(t, http.MethodGet, path, demo, nil, atVersion("2.74")...); r.Status != http.StatusOK {
			t.Errorf("%s at 2.74: %s", path, r)
		}
	}
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/servers?foo=1&bar=2", demo, nil, atVersion("2.75")...), http.StatusBadRequest,
		"Additional properties are not allowed ('bar', 'foo' were unexpected)")
	// Every parameter of the schema is still accepted.
	if r := tr.Do(t, http.MethodGet, "/v2.1/servers/detail?locked=0&tags=a&changes-before=2100-01-01T00:00:00Z&limit=5&ip6=x&soft_deleted=1", demo, nil,
		atVersion("2.75")...); r.Status != http.StatusOK {
		t.Errorf("known parameters at 2.75: %s", r)
	}
	if r := tr.Do(t, http.MethodGet, "/v2.1/servers?_secret=1", demo, nil, atVersion("2.75")...); r.Status != http.StatusOK {
		t.Errorf("a member's _secret at 2.75: %s", r)
	}
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/servers?_secret=1", admin, nil, atVersion("2.75")...), http.StatusBadRequest,
		"Invalid filter field: _secret.")
}
