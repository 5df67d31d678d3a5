// Package network serves, at the API cell, the subset of the OpenStack
// Networking API v2.0 that clients use around a boot: gophercloud's
// networking v2 packages, `openstack network list`, `openstack server
// create --network NAME`, terraform's openstack_networking_network_v2 data
// source and `openstack port list --server X` work unchanged.
//
// Mount it under a prefix with http.StripPrefix (devstack's
// "/networking"); the links it writes keep the prefix the request came in
// with. It serves:
//
//	GET  /                     versions ({"versions": [v2.0]})
//	GET  /v2.0, /v2.0/         the collections served
//	GET  /v2.0/extensions[/A]  the extensions whose behaviour this API has
//	GET, POST /v2.0/networks, GET, PUT, DELETE /v2.0/networks/{id}
//	GET, POST /v2.0/subnets,  GET, PUT, DELETE /v2.0/subnets/{id}
//	GET /v2.0/ports, GET /v2.0/ports/{id} (POST, PUT, DELETE refused)
//	GET, POST /v2.0/security-groups, GET, PUT, DELETE /v2.0/security-groups/{id}
//	GET, PUT, DELETE /v2.0/{networks,subnets,security-groups}/{id}/tags,
//	GET, PUT, DELETE .../tags/{tag}
//	GET, POST /v2.0/security-group-rules, GET, DELETE /v2.0/security-group-rules/{id}
//	GET /v2.0/quotas, GET, PUT, DELETE /v2.0/quotas/{project},
//	GET /v2.0/quotas/{project}/default, GET /v2.0/quotas/{project}/details,
//	GET /v2.0/quotas/project
//
// and accepts Neutron's ".json" suffix on resource paths.
//
// Errors have Neutron's shape, {"NeutronError": {"type": "NetworkNotFound",
// "message": "...", "detail": ""}}, with Neutron's types, statuses and
// messages; a message about a bad attribute names it. A refused request
// writes nothing.
//
// Who may do what. Callers are identified as by the Compute API (noauth:
// X-Auth-Token "user:project", user "admin" is an admin, no token means
// admin:admin). Admins see everything. Others see their own networks and
// the shared ones, the subnets of those, and the ports of their own
// servers; anything else is a 404, as in Neutron. Members create, update
// and delete networks of their project and subnets on them (Neutron's
// default policy); shared and router:external set true are an admin's
// (403 PolicyNotAuthorized "(rule:create_network and
// rule:create_network:shared) is disallowed by policy"), and so is
// changing another project's network or subnet the caller can see (403
// "rule:update_network is disallowed by policy" and the like). Servers
// boot only on the network the compute cells serve (private): a member's
// own networks are records of the Networking API until the cells serve
// them.
//
// Ports. A port is one fixed IP of a live server, derived from the API
// cell's copy of the instances (package netdb): its id is a UUID v5 of the
// server, network name and address; device_owner is
// "compute:<availability zone>"; status is ACTIVE while the server is
// active, else DOWN; binding:host_id and the other binding details but the
// vNIC type are shown to admins only; security_groups are the ids of the
// server's security groups. Ports are created and removed by the
// compute service with their server, so a client may not write them:
//
//   - POST /v2.0/ports is 400 BadRequest ("Bad port request: Ports are
//     created by the compute service in this cloud: boot a server with
//     networks [{"uuid": ...}] ...");
//   - PUT /v2.0/ports/{id} is 409 UnsupportedPortDeviceOwner and DELETE 409
//     ServicePortInUse, what Neutron answers for a port its owner manages,
//     each naming the server to act on instead; a port the caller cannot
//     see is a 404 first.
//
// These are final 4xx answers that gophercloud, the openstack CLI and
// terraform report as they are, and none of them retries (a 501 would say
// the API lacks the call, which Neutron does not).
//
// Security groups. A project's groups and their rules, as Neutron's
// security-group extension (with stateful-security-group, the standard
// attributes, a group's tags and If-Match on revision_number): members
// create, update and delete their own project's; another project's are a
// 404. A project's default group, with Neutron's four default rules, is
// made on its first use of security groups (a list of groups or rules, a
// group's create), once however many requests race; its project may
// neither rename nor delete it. Rules are validated and made canonical as
// Neutron's securitygroups_db does, with its fault types and messages; a
// duplicate is a 409. Deleting a group deletes the rules that name it as
// their remote group (Neutron's cascade); only ports would keep it in use,
// and ports carry no security groups yet.
//
// Quotas. Neutron's quotasv2 and quotasv2_detail: a project's limits of
// networks, subnets, ports, security groups and rules (routers, floating
// IPs, RBAC policies and subnet pools are shown, with nothing to count),
// its own else the configured defaults (Neutron's). A create counts the
// owner's records in its own transaction under the project's quota lock
// (checkQuota, netdb.CheckQuota) and is a 409 OverQuota, "Quota exceeded
// for resources: ['network'].", past the limit; a new security group
// needs room for its two rules too, a bulk of rules counts all of them,
// and the default group counts but is never refused. Members read their
// own project's quota; get_quota (admins, project managers) reads
// another's and lists, details of another's are an admin's; updates and
// resets are an admin's.
//
// Tags (tags.go): a network's, a subnet's and a security group's, as
// Neutron's standard-attr-tag, with the tags, tags-any, not-tags and
// not-tags-any filters on their lists; whoever sees the resource reads
// them, whoever may update it changes them (a shared network's others
// are a 403), and a change revises the resource.
//
// Updates and deletes of networks, subnets, security groups and rules may
// be constrained with If-Match: revision_number=N (revision-if-match): a
// resource whose revision has moved on is a 412 HTTPPreconditionFailed,
// "Constrained to N, but current revision is M", and is left as it is.
//
// Lists take Neutron's filters (several values of one filter are
// alternatives; unknown filters are a 400, as with Neutron's
// filter-validation extension), fields=, sort_key/sort_dir, and
// limit/marker/page_reverse with <collection>_links. The order without
// sort keys is by id.
//
// Differences from Neutron: IPv4 only; network names are unique (compute
// cells and instance addresses know a network by name) and a network with
// ports cannot be renamed; no external networks, routers, floating IPs,
// subnet pools, tags (but a network's, a subnet's and a security group's), RBAC, address groups or
// availability zones; no bulk creates but of security group
// rules; the cells do not enforce
// security group rules yet; ports are read-only and listing or showing them scans
// the instance copy (a list by device_id reads only those servers).
package network
