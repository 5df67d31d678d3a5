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
//	GET, POST /v2.0/ports,    GET, PUT, DELETE /v2.0/ports/{id}
//	GET, PUT, DELETE /v2.0/ports/{id}/tags, GET, PUT, DELETE .../tags/{tag}
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
// the shared ones, the subnets of those, and their project's ports; anything else is a 404, as in Neutron. Members create, update
// and delete networks of their project and subnets on them (Neutron's
// default policy); shared and router:external set true are an admin's
// (403 PolicyNotAuthorized "(rule:create_network and
// rule:create_network:shared) is disallowed by policy"), and so is
// changing another project's network or subnet the caller can see (403
// "rule:update_network is disallowed by policy" and the like).
//
// Ports (ports.go, netdb/ports.go). Neutron's ports with port-security,
// allowed-address-pairs, binding (binding:host_id and binding:profile,
// and mac_address, are an admin's: 403 for others) and the standard
// attributes and tags. A port is made through this API (its addresses from
// the blocks the API cell holds, or reserved in the cell that holds an
// asked address's block through netdb.AddressReserver), for a fixed_ip asked on
// a boot, or by a cell on a boot (recorded when the server's address is
// reported). device_owner is "compute:<availability zone>" for a server's
// port; status is ACTIVE while the server it is bound to is active, else
// DOWN; a port a live server has cannot be deleted (409 PortInUse).
// Refusals are Neutron's: IpAddressAlreadyAllocated (409),
// InvalidIpForSubnet and InvalidIpForNetwork (400),
// IpAddressGenerationFailure (409), MacAddressInUse (409),
// SecurityGroupNotFound for another project's group (404),
// PortSecurityPortHasSecurityGroup and AddressPairAndPortSecurityRequired
// (409), DuplicateAddressPairInRequest (400).
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
// their remote group (Neutron's cascade); a group a live server or a port
// has is in use (409 SecurityGroupInUse).
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
// subnet pools, tags (but a network's, a subnet's, a security group's and
// a port's), RBAC, address groups or availability zones; no bulk creates
// but of security group rules; the cells do not enforce security group
// rules yet; the fixed_ips of a live server's port, or of a port with an
// address a cell reserved, cannot be changed; DNS, QoS and extra DHCP
// options of ports are not served; a member may ask for a port's address
// (fixed_ips ip_address) on a shared network of another project (Neutron
// lets only the network's owner and admins), so that a boot's fixed_ip
// works on the shared private network; mac_address is an admin's only.
package network
