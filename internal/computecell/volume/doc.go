// Package volume is a compute cell's volume role (the cell's side of the
// Block Storage API, docs/architecture.md §3.11): the Manager keeps the
// cell's volumes and snapshots — their rows in the cell database (celldb,
// tables volumes and volume_snapshots: the truth of their status and size)
// and their bytes in a backend (package backend) — and tells the API cell
// of every change with volume_update, in the transaction of the change.
//
// The flow:
//
//   - volume_create (Create, a cast handler inside the cells service's
//     transaction) inserts the volume in status "creating" at version 1
//     with its creation pending, and sends that state up, so that the API
//     cell learns the volume's cell. A volume made from a snapshot or a
//     volume whose source is missing or not available is inserted in
//     status "error" instead, with its fault.
//   - volume_action (Action) checks the action against the rows (Cinder's
//     rules: which statuses allow a delete, an extend, an upload, a
//     snapshot, a snapshot's delete; no delete of a volume with snapshots
//     unless cascade; no delete or extend of a source that a volume is
//     being made from). An action accepted sets the transitional status
//     (deleting, extending, uploading; a snapshot: creating, deleting)
//     and records the action on the row as pending; one refused sends the
//     row as it is at a new version, which replaces the status the API
//     cell set when it accepted the action. reset_status sets a status
//     and nothing else. The handlers never touch the backend.
//   - The worker (a workpool, one volume at a time per worker) takes each
//     volume with pending work — its snapshots' operations first, then
//     its own action — does the backend operation outside any transaction
//     (an image read through image_read calls, an upload written through
//     image_write calls), then in one transaction checks that the row
//     still has that operation pending (a compare-and-swap on its
//     request), sets the outcome (available; error, error_extending,
//     error_deleting with a fault), increments the version, clears the
//     pending operation and sends volume_update to the root. A deleted
//     volume or snapshot keeps its row, marked deleted, so that heal can
//     resend its deletion.
//   - Crashes: the pending row is the work queue. A process that stops
//     between a handler's commit and the worker's, or in the middle of a
//     backend operation, leaves the row pending; the next Manager on the
//     database does the operation again. A backend operation that had
//     happened counts as done (ErrExists on a create or a snapshot,
//     ErrNotFound on a delete); an upload starts again from its begin.
//   - Repeats: a volume_create for a volume the cell has, a snapshot_create
//     for a snapshot it has, and an action whose request the row has
//     accepted or refused already change nothing. A delete of a volume
//     the cell never had is answered with a deletion at version 1; one of
//     a deleted volume with its deletion as it is.
//   - Attachments (attach.go): attach_volume (AttachVolume, a call) and
//     detach_volume (DetachVolume) record the instance's block device
//     mapping and the volume's attachment with the host's work pending;
//     the worker has the instance's host (Hosts) attach or detach the
//     volume's file, then sets the attachment and the volume's status
//     (in-use, available). Every volume_update carries the volume's
//     attachments. InstanceGone, in the conductor's delete of an
//     instance, takes its attachments away and deletes the volumes
//     marked delete_on_termination. update_volume_attachment
//     (UpdateAttachment, attach_update.go, a call) changes a mapping's
//     delete_on_termination and answers the volume's new state. Each
//     attachment records the volume's backing (the backend's file), so
//     that the compute agents attach it again where the instance runs
//     after a move or a restart (instanceops, compute); Start records
//     it on the attachments made before it was kept.
//   - Boot from volume (build.go): PrepareBuild, in the conductor's
//     transaction, makes a build's new volumes and records its mappings
//     and attachments (no host work: the instance has no VM yet);
//     BuildVolumes tells the conductor whether they are made; once the
//     instance is active, the poll asks for their host work, and the
//     worker attaches them as any attachment.
//   - Heal: every HealInterval the volumes and snapshots changed within
//     HealWindow are sent again (volume_update with Heal), in pages.
//   - Capacity reports the room of the cell's storage zone, thin
//     provisioned as Cinder's scheduler counts it.
//
// The handlers Create, Action, AttachVolume, DetachVolume and
// UpdateAttachment, Capacity, the Images and Hosts interfaces,
// InstanceGone, PrepareBuild and BuildVolumes are wired in package node;
// the package sends nothing but volume_update.
package volume
