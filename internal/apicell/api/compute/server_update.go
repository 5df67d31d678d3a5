package compute

import (
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// serverUpdateHandler is PUT /servers/{id}: name, description and the
// other fields the API cell answers alone.
type serverUpdateHandler struct {
	*base
	servers *serversHandler
}

func (h *serverUpdateHandler) register(rt *router) {
	rt.handle("PUT /v2.1/servers/{id}", "os_compute_api:servers:update", h.updateServer)
}

// checkServerUpdate checks the fields of an update's "server" as Nova's
// schema does, in the order of its properties; others are left to the
// additional properties check.
func checkServerUpdate(s map[string]any, allowed []string) error {
	keys := make([]string, 0, len(s))
	for k := range s {
		if slices.Contains(allowed, k) {
			keys = append(keys, k)
		}
	}
	order := []string{"name", "OS-DCF:diskConfig", "accessIPv4", "accessIPv6", "description", "hostname"}
	sort.Slice(keys, func(i, j int) bool { return slices.Index(order, keys[i]) < slices.Index(order, keys[j]) })
	for _, k := range keys {
		v := s[k]
		var err error
		switch k {
		case "name":
			err = checkName("name", v)
		case "OS-DCF:diskConfig":
			err = checkEnum(k, v, "AUTO", "MANUAL")
		case "accessIPv4":
			err = checkIP(k, v, "ipv4")
		case "accessIPv6":
			err = checkIP(k, v, "ipv6")
		case "description":
			err = checkServerDescription(v)
		case "hostname":
			err = checkHostname(v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkIP checks jsonschema's ipv4 and ipv6 formats (Python's ipaddress:
// dotted decimal without leading zeros; IPv6 without a zone).
func checkIP(field string, v any, format string) error {
	s, ok := v.(string)
	if !ok {
		return invalid(field, v, "%s is not of type 'string'", pyRepr(v))
	}
	addr, err := netip.ParseAddr(s)
	valid := err == nil && addr.Zone() == ""
	if format == "ipv4" {
		valid = valid && addr.Is4()
	} else {
		valid = valid && addr.Is6()
	}
	if !valid {
		return invalid(field, s, "%s is not a '%s'", pyRepr(s), format)
	}
	return nil
}

func checkEnum(field string, v any, values ...string) error {
	if s, ok := v.(string); ok && slices.Contains(values, s) {
		return nil
	}
	if _, ok := v.(string); !ok {
		return invalid(field, v, "%s is not of type 'string'", pyRepr(v))
	}
	quoted := make([]string, len(values))
	for i, s := range values {
		quoted[i] = pyRepr(s)
	}
	return invalid(field, v, "%s is not one of [%s]", pyRepr(v), strings.Join(quoted, ", "))
}

// checkServerDescription is Nova's parameter_types.description: null, or
// up to 255 printable characters.
func checkServerDescription(v any) error {
	if v == nil {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		return invalid("description", v, "%s is not of type 'string', 'null'", pyRepr(v))
	}
	for _, r := range s {
		if !printable(r, true) {
			return invalid("description", s, "%s does not match '^[printable characters]*$'", pyRepr(s))
		}
	}
	if utf8.RuneCountInString(s) > 255 {
		return invalid("description", s, "%s is too long", pyRepr(s))
	}
	return nil
}

// updateServer is PUT /servers/{id}: name, accessIPv4, accessIPv6,
// OS-DCF:diskConfig, description from 2.19 and hostname from 2.90 (Nova's
// update schemas). A new name leaves the hostname as it is, as in Nova.
// Nova does not check the lock here, and neither does this.
func (h *serverUpdateHandler) updateServer(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := readObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	allowed := []string{"name", "OS-DCF:diskConfig", "accessIPv4", "accessIPv6"}
	if atLeast(r, 19) {
		allowed = append(allowed, "description")
	}
	if atLeast(r, 90) {
		allowed = append(allowed, "hostname")
	}
	server, err := objectField(body, "server", allowed, nil, func(s map[string]any) error { return checkServerUpdate(s, allowed) })
	if err != nil {
		h.fail(w, r, err)
		return
	}
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var u apidb.ServerUpdate
	str := func(k string) *string {
		if s, ok := server[k].(string); ok {
			return &s
		}
		return nil
	}
	u.Name = str("name")
	u.AccessIPv4 = str("accessIPv4")
	u.AccessIPv6 = str("accessIPv6")
	u.Hostname = str("hostname")
	if _, ok := server["description"]; ok {
		u.SetDescription = true
		u.Description = str("description")
	}
	if dc, ok := server["OS-DCF:diskConfig"].(string); ok {
		auto := dc == "AUTO"
		u.AutoDiskConfig = &auto
	}
	var cur *apidb.Instance
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := apidb.UpdateServer(ctx, tx, in.UUID, u, h.cfg.Now()); err != nil {
			return err
		}
		cur, err = apidb.Get(ctx, tx, in.UUID)
		return err
	})
	if err != nil {
		h.fail(w, r, gone(in.UUID, err))
		return
	}
	view, err := h.servers.updateView(r, cur)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"server": view})
}
