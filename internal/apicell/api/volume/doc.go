// Package volume serves, at the API cell, the skeleton of the OpenStack
// Block Storage API v3 (Cinder): its version documents, its microversion
// negotiation, its fault format and the resources that need no volumes.
// There are no volumes, snapshots or attachments yet.
//
// Mount it under a prefix with http.StripPrefix (devstack's "/volume");
// the links it writes keep the prefix the request came in with. It serves:
//
//	GET /                                   versions (300, {"versions": [v3.0]})
//	GET /v3/                                the v3 version (200)
//	GET /v3/{project_id}/types              volume types (the default type)
//	GET /v3/{project_id}/types/{id}         one type by id or name; "default" is the default type
//	GET /v3/{project_id}/limits             absolute limits (Cinder's default quotas, nothing used)
//	GET /v3/{project_id}/os-availability-zone  the storage zones
//
// Every request under /v3 is negotiated (OpenStack-API-Version: volume
// 3.x, 3.0 to maxVersion, "latest"; version.go) and answered with the
// version it got; a {project_id} that is not the token's is refused 400
// "Malformed request url", as Cinder's wsgi layer refuses it.
package volume
