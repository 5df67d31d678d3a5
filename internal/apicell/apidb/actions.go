package apidb

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// SetTaskState records, on the API cell's copy, the task state a server
// action has started, so the API shows it at once. It does not change the
// version: the owning cell's next update, which is newer, replaces it.
func SetTaskState(ctx context.Context, tx *db.Tx, uuid, task string, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE instances SET task_state = ?, updated_at = ? WHERE uuid = ? AND deleted = 0`, task, db.Micros(now), uuid)
	return err
}

// RebuildChange is what a rebuild changes in the API cell's copy: the
// image always, the rest when given.
type RebuildChange struct {
	ImageRef               string
	Name                   *string
	Metadata               map[string]string
	SetDescription         bool
	Description            *string
	AccessIPv4, AccessIPv6 *string
	SetKeyName             bool
	KeyName                string
	SetUserData            bool
	UserData               string
	// AutoDiskConfig is OS-DCF:diskConfig after the rebuild: the one
	// given, or the new image's default.
	AutoDiskConfig bool
	// Hostname is the server's new hostname (2.90); nil keeps it.
	Hostname *string
}

// Rebuild writes a rebuild's changes to a live instance, in one statement.
func Rebuild(ctx context.Context, tx *db.Tx, uuid string, c RebuildChange, now time.Time) error {
	sets := []string{"image_ref = ?", "auto_disk_config = ?", "updated_at = ?"}
	args := []any{c.ImageRef, b2i(c.AutoDiskConfig), db.Micros(now)}
	add := func(col string, v any) {
		sets = append(sets, col+" = ?")
		args = append(args, v)
	}
	if c.Name != nil {
		add("name", *c.Name)
	}
	if c.Metadata != nil {
		b, _ := json.Marshal(c.Metadata)
		add("metadata", string(b))
	}
	if c.SetDescription {
		desc, null := "", 1
		if c.Description != nil {
			desc, null = *c.Description, 0
		}
		add("description", desc)
		add("description_null", null)
	}
	if c.AccessIPv4 != nil {
		add("access_ip_v4", *c.AccessIPv4)
	}
	if c.AccessIPv6 != nil {
		add("access_ip_v6", *c.AccessIPv6)
	}
	if c.SetKeyName {
		add("key_name", c.KeyName)
	}
	if c.SetUserData {
		add("user_data", c.UserData)
	}
	if c.Hostname != nil {
		add("hostname", *c.Hostname)
	}
	res, err := tx.Exec(ctx, `UPDATE instances SET `+strings.Join(sets, ", ")+` WHERE uuid = ? AND deleted = 0`, append(args, uuid)...)
	return affected(res, err, uuid)
}

// Rename changes the name and (when not nil) replaces the metadata of an
// instance's copy, as a rebuild with a name or metadata does.
func Rename(ctx context.Context, tx *db.Tx, uuid string, name *string, meta map[string]string, now time.Time) error {
	if name != nil {
		if _, err := tx.Exec(ctx, `UPDATE instances SET name = ?, updated_at = ? WHERE uuid = ?`, *name, db.Micros(now), uuid); err != nil {
			return err
		}
	}
	if meta != nil {
		b, _ := json.Marshal(meta)
		if _, err := tx.Exec(ctx, `UPDATE instances SET metadata = ?, updated_at = ? WHERE uuid = ?`, string(b), db.Micros(now), uuid); err != nil {
			return err
		}
	}
	return nil
}

// SetPinnedZone pins an instance to a zone ("": none), as an unshelve
// naming one does (Nova's RequestSpec.availability_zone).
func SetPinnedZone(ctx context.Context, tx *db.Tx, uuid, zone string) error {
	_, err := tx.Exec(ctx, `UPDATE instances SET pinned_zone = ? WHERE uuid = ? AND deleted = 0`, zone, uuid)
	return err
}

// SetShelvedImage records the image a shelve makes of the instance.
func SetShelvedImage(ctx context.Context, tx *db.Tx, uuid, imageID string) error {
	_, err := tx.Exec(ctx, `UPDATE instances SET shelved_image_id = ? WHERE uuid = ? AND deleted = 0`, imageID, uuid)
	return err
}

// ClearShelvedImage forgets the instance's shelved image if it is imageID
// (a snapshot that failed).
func ClearShelvedImage(ctx context.Context, tx *db.Tx, uuid, imageID string) error {
	_, err := tx.Exec(ctx, `UPDATE instances SET shelved_image_id = '' WHERE uuid = ? AND shelved_image_id = ?`, uuid, imageID)
	return err
}
