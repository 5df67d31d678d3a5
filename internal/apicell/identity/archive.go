package identity

import "github.com/cellcloud/cellcloud/internal/db/archive"

// ArchivePlan deletes the tokens that expired before the archive's cutoff
// (Keystone's token_flush): an expired token is refused whether its row
// is there or not, and a user who never signs in again would keep them
// for ever (a new token of a user deletes that user's expired ones).
var ArchivePlan = archive.Plan{Expire: []archive.Expire{{Name: "id_tokens", Key: "hash", Time: "expires_at"}}}
