package network

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// extensionsHandler is /v2.0/extensions.
type extensionsHandler struct{ *base }

func (h *extensionsHandler) register(rt *router) {
	rt.handle("GET /v2.0/extensions", h.listExtensions)
	rt.handle("GET /v2.0/extensions/{alias}", h.showExtension)
}

// extension is an API extension as Neutron lists it.
type extension struct {
	Name        string `json:"name"`
	Alias       string `json:"alias"`
	Description string `json:"description"`
	Updated     string `json:"updated"`
	Links       []any  `json:"links"`
}

// extensions are the ones whose attributes and behaviour this API has, as
// neutron-lib defines them.
var extensions = []extension{
	{"Allowed Address Pairs", "allowed-address-pairs", "Provides allowed address pairs", "2013-07-23T10:00:00-00:00", []any{}},
	{"Port Binding", "binding", "Expose port bindings of a virtual port to external application", "2014-02-03T10:00:00-00:00", []any{}},
	{"Neutron external network", "external-net", "Adds external network attribute to network resource.", "2013-01-14T10:00:00-00:00", []any{}},
	{"Filter parameters validation", "filter-validation", "Provides validation on filter parameters.", "2018-07-04T10:00:00-00:00", []any{}},
	{"IP address substring filtering", "ip-substring-filtering", "Provides IP address substring filtering when listing ports", "2017-11-28T09:00:00-00:00", []any{}},
	{"Network MTU", "net-mtu", "Provides MTU attribute for a network resource.", "2015-03-25T10:00:00-00:00", []any{}},
	{"Pagination support", "pagination", "Extension that indicates that pagination is enabled.", "2016-06-12T00:00:00-00:00", []any{}},
	{"Port Security", "port-security", "Provides port security", "2012-07-23T10:00:00-00:00", []any{}},
	{"project_id field enabled", "project-id", "Extension that indicates that project_id field is enabled.", "2016-09-09T09:09:09-09:09", []any{}},
	{"Quota details management support", "quota_details", "Expose functions for quotas usage statistics per project", "2017-02-10T10:00:00-00:00", []any{}},
	{"Quota management support", "quotas", "Expose functions for quotas management per project", "2012-07-29T10:00:00-00:00", []any{}},
	{"If-Match constraints based on revision_number", "revision-if-match", "Extension indicating that If-Match based on revision_number is supported.", "2016-12-11T00:00:00-00:00", []any{}},
	{"security-group", "security-group", "The security groups extension.", "2012-10-05T10:00:00-00:00", []any{}},
	{"Normalized CIDR field for security group rules", "security-groups-normalized-cidr", "Add new field with normalized remote_ip_prefix cidr in SG rule", "2020-07-28T10:00:00-00:00", []any{}},
	{"Security group rule belongs to the project's default security group", "security-groups-rules-belongs-to-default-sg", "Flag to determine if the security group rule belongs to the project's default security group", "2023-05-23T10:00:00-00:00", []any{}},
	{"Sorting support", "sorting", "Extension that indicates that sorting is enabled.", "2016-06-12T00:00:00-00:00", []any{}},
	{"standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes", "2016-02-10T10:00:00-00:00", []any{}},
	{"Resource revision numbers", "standard-attr-revisions", "This extension will display the revision number of neutron resources.", "2016-04-11T10:00:00-00:00", []any{}},
	// Tags: only security groups have them here (Neutron's name lists the
	// resources).
	{"Tag support for resources with standard attribute: network, port, security_group, subnet", "standard-attr-tag", "Enables to set tag on resources with standard attribute.", "2017-01-01T00:00:00-00:00", []any{}},
	{"Resource timestamps", "standard-attr-timestamp", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.", "2016-09-12T10:00:00-00:00", []any{}},
	{"Stateful security group", "stateful-security-group", "Indicates if the security group is stateful or not", "2019-11-26T09:00:00-00:00", []any{}},
}

func (h *extensionsHandler) listExtensions(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"extensions": extensions})
}

func (h *extensionsHandler) showExtension(w http.ResponseWriter, r *http.Request) {
	alias := r.PathValue("alias")
	for _, e := range extensions {
		if e.Alias == alias {
			httpkit.WriteJSON(w, http.StatusOK, map[string]any{"extension": e})
			return
		}
	}
	writeError(w, http.StatusNotFound, "HTTPNotFound", "Extension with alias "+alias+" does not exist")
}
