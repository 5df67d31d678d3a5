// Package volume serves, at the API cell, the skeleton of the OpenStack
// Block Storage API v3 (Cinder): its version documents, its microversion
// negotiation, its fault format, the volume types and quotas (stored by
// package voltypes, the usage read from the volumes), and, with a
// database (Config.DB), the volumes and snapshots (volumes.go,
// volume_actions.go, volume_metadata.go, snapshots.go) from the API
// cell's copy (package voldb), with the attachments its cells report
// (the volume view's attachments, and the attachments API, attachments.go;
// a server's attachments are made by the Compute API's
// os-volume_attachments, those of other consumers by the attachments
// API's writes, attachments_write.go, which the volume's cell makes by
// the call attachment_write).
//
// Mount it under a prefix with http.StripPrefix (devstack's "/volume");
// the links it writes keep the prefix the request came in with. It serves:
//
//	GET /                                   versions (300, {"versions": [v3.0]})
//	GET /v3/                                the v3 version (200)
//	GET /v3/{project_id}/types              volume types (is_public filter for admins)
//	GET /v3/{project_id}/types/{id}         one type by id or name; "default" is the default type
//	POST /v3/{project_id}/types             create a type (admin; 200)
//	PUT, DELETE /v3/{project_id}/types/{id} update (200), delete (202) a type (admin)
//	GET, POST /v3/{project_id}/types/{id}/extra_specs          its extra specs
//	GET, PUT, DELETE /v3/{project_id}/types/{id}/extra_specs/{key}
//	GET /v3/{project_id}/types/{id}/os-volume-type-access      who may use a private type (admin)
//	POST /v3/{project_id}/types/{id}/action  addProjectAccess, removeProjectAccess (admin; 202)
//	GET /v3/{project_id}/limits             absolute limits and what is used of them
//	GET, PUT, DELETE /v3/{project_id}/os-quota-sets/{project}  quota sets (?usage=true); PUT, DELETE admin
//	GET /v3/{project_id}/os-quota-sets/{project}/defaults
//	GET, PUT /v3/{project_id}/os-quota-class-sets/{class}      quota classes (admin)
//	GET /v3/{project_id}/os-availability-zone  the storage zones
//	POST, GET /v3/{project_id}/volumes, GET volumes/detail, volumes/summary (3.12), GET, PUT, DELETE volumes/{id}
//	POST /v3/{project_id}/volumes/{id}/action  os-extend, os-set_bootable, os-update_readonly_flag,
//	                                        os-volume_upload_image, os-reset_status, os-force_delete
//	GET, POST, PUT volumes/{id}/metadata; GET, PUT, DELETE volumes/{id}/metadata/{key}
//	POST, GET /v3/{project_id}/snapshots, GET snapshots/detail, GET, PUT, DELETE snapshots/{id},
//	snapshots/{id}/metadata[/{key}], POST snapshots/{id}/action (os-reset_status, os-force_delete)
//	GET /v3/{project_id}/attachments, attachments/detail, attachments/{id}  (3.27)
//	POST attachments (200; mode from 3.54), PUT, DELETE attachments/{id} (200),
//	POST attachments/{id}/action os-complete (3.44; 204)  (with Config.Calls; else 404)
//
// Every request under /v3 is negotiated (OpenStack-API-Version: volume
// 3.x, 3.0 to maxVersion, "latest"; version.go) and answered with the
// version it got; a {project_id} that is not the token's is refused 400
// "Malformed request url", as Cinder's wsgi layer refuses it.
package volume
