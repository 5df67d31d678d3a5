package up

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/openrc"
)

// OpenRC is a bootstrap user's credentials and the file that holds them.
type OpenRC struct {
	Path, User, Password, Project, AuthURL string
}

// bootstrap makes sure the admin user (admin on project admin) and the
// demo user (member of project demo) exist, and writes their openrc files
// (mode 0600) into the data directory. A password given in the options
// replaces the user's; otherwise the one in an existing openrc file is
// kept, or a new one is generated.
func bootstrap(ctx context.Context, st *identity.Store, o Options, computeURL string) (map[string]OpenRC, error) {
	authURL := strings.TrimSuffix(computeURL, "/v2.1") + "/identity/v3"
	out := map[string]OpenRC{}
	for _, acct := range []struct{ user, project, role, password string }{
		{"admin", "admin", identity.RoleAdmin, o.AdminPassword},
		{"demo", "demo", identity.RoleMember, o.DemoPassword},
	} {
		rc := OpenRC{Path: filepath.Join(o.DataDir, "openrc-"+acct.user), User: acct.user, Project: acct.project, AuthURL: authURL}
		rc.Password = acct.password
		if rc.Password == "" {
			rc.Password = passwordIn(rc.Path)
		}
		_, err := st.UserByName(ctx, identity.DefaultDomainID, acct.user)
		var nf *identity.NotFoundError
		exists := err == nil
		if err != nil && !errors.As(err, &nf) {
			return nil, err
		}
		if rc.Password == "" {
			rc.Password = newPassword()
		}
		// Set the password when it was given, when the user is new, or
		// when it came from no file (the file was lost): the file and the
		// store agree afterwards.
		set := rc.Password
		if exists && acct.password == "" && passwordIn(rc.Path) == rc.Password {
			set = ""
		}
		if err := st.Bootstrap(ctx, identity.Account{User: acct.user, Password: set, Project: acct.project, Role: acct.role}); err != nil {
			return nil, err
		}
		if err := openrc.Write(openrc.File{Path: rc.Path, User: rc.User, Password: rc.Password, Project: rc.Project, AuthURL: rc.AuthURL}); err != nil {
			return nil, err
		}
		out[acct.user] = rc
	}
	return out, nil
}

func newPassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// passwordIn reads OS_PASSWORD from an openrc file ("" if none).
func passwordIn(path string) string { return openrc.PasswordIn(path) }
