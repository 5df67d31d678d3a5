package apidb

import (
	"context"
	"strconv"
	"strings"
	"unicode"

	"github.com/cellcloud/cellcloud/internal/db"
)

// SanitizeHostname is Nova's utils.sanitize_hostname of a server's name:
// characters outside Latin-1 dropped, cut to 63 characters, space,
// underscore and dot made hyphens, what is not a word character or a
// hyphen dropped, lower case, no hyphen at either end. It may be "".
func SanitizeHostname(name string) string {
	rs := make([]rune, 0, len(name))
	for _, r := range name {
		if r <= 0xff {
			rs = append(rs, r)
		}
	}
	if len(rs) > 63 {
		rs = rs[:63]
	}
	var b strings.Builder
	for _, r := range rs {
		switch {
		case r == ' ', r == '_', r == '.', r == '-':
			b.WriteRune('-')
		case unicode.IsLetter(r), unicode.IsNumber(r):
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return strings.Trim(b.String(), "-")
}

// DefaultHostname is the hostname Nova gives a server it is not given one
// for (compute/api.py _populate_instance_names): its name sanitized, or
// "Server-{uuid}" when nothing is left; index (from 1) follows the
// sanitized name of one of several servers made by one request.
func DefaultHostname(name, uuid string, index int) string {
	h := SanitizeHostname(name)
	switch {
	case h == "":
		return "Server-" + uuid
	case index > 0:
		return h + "-" + strconv.Itoa(index)
	}
	return h
}

// HostnameOf is the server's hostname: the one stored, or, for a row
// written without one, its name's.
func (in *Instance) HostnameOf() string {
	if in.Hostname != "" {
		return in.Hostname
	}
	return DefaultHostname(in.Name, in.UUID, 0)
}

// backfillHostnames gives every instance made before migration 18 the
// hostname its name made, which the Compute API showed for it until then:
// a rename from now on keeps it, as Nova's does.
func backfillHostnames(ctx context.Context, tx *db.Tx) error {
	type row struct{ uuid, name string }
	rows, err := db.Collect(ctx, tx, func(s db.Scanner) (row, error) {
		var x row
		return x, s.Scan(&x.uuid, &x.name)
	}, `SELECT uuid, name FROM instances WHERE hostname = ''`)
	if err != nil {
		return err
	}
	for _, x := range rows {
		if _, err := tx.Exec(ctx, `UPDATE instances SET hostname = ? WHERE uuid = ?`, DefaultHostname(x.name, x.uuid, 0), x.uuid); err != nil {
			return err
		}
	}
	return nil
}
