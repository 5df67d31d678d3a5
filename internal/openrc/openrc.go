// Package openrc writes and reads the openrc files of the openstack CLI: a
// user's credentials at the API cell's Identity API as shell variables.
// `cellcloud up` writes one per bootstrap user, `cellcloud serve` one for
// the admin it bootstraps, `cellcloud openrc` prints one, and `cellcloud
// status` reads one to sign in.
package openrc

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cellcloud/cellcloud/internal/privfs"
)

// File is one user's openrc.
type File struct {
	// Path is where the file is (or is to be) written; it is named in the
	// file's first line.
	Path                    string
	User, Password, Project string
	// AuthURL is the Identity v3 endpoint, e.g. http://HOST:8774/identity/v3.
	AuthURL string
	// Region is the catalog's region (RegionOne when empty).
	Region string
}

// Format is the file's text. Without a password it asks for one when
// sourced, as the openrc files Horizon hands out do.
func (f File) Format() string {
	region := f.Region
	if region == "" {
		region = "RegionOne"
	}
	var b strings.Builder
	use := ""
	if f.Path != "" {
		use = " Use: source " + f.Path
	}
	fmt.Fprintf(&b, "# cellcloud credentials of user %s (project %s).%s\n", f.User, f.Project, use)
	fmt.Fprintf(&b, "export OS_AUTH_URL=%s\nexport OS_IDENTITY_API_VERSION=3\nexport OS_AUTH_TYPE=password\n", f.AuthURL)
	fmt.Fprintf(&b, "export OS_USERNAME=%s\n", f.User)
	if f.Password != "" {
		fmt.Fprintf(&b, "export OS_PASSWORD='%s'\n", strings.ReplaceAll(f.Password, "'", `'\''`))
	} else {
		fmt.Fprintf(&b, "printf 'Password of %s (project %s): ' >&2\nread -rs OS_PASSWORD_INPUT; echo >&2\nexport OS_PASSWORD=\"$OS_PASSWORD_INPUT\"\nunset OS_PASSWORD_INPUT\n", f.User, f.Project)
	}
	fmt.Fprintf(&b, "export OS_PROJECT_NAME=%s\nexport OS_USER_DOMAIN_NAME=Default\nexport OS_PROJECT_DOMAIN_NAME=Default\nexport OS_REGION_NAME=%s\nexport OS_INTERFACE=public\n", f.Project, region)
	return b.String()
}

// Write writes the file at f.Path, mode 0600 (it holds a password), its
// directory made private if missing; atomically.
func Write(f File) error {
	if err := privfs.MkdirAll(filepath.Dir(f.Path)); err != nil {
		return err
	}
	tmp := f.Path + ".tmp"
	if err := os.WriteFile(tmp, []byte(f.Format()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(tmp, f.Path)
}

// Read reads the "export KEY=VALUE" lines of an openrc file.
func Read(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		out[k] = unquote(v)
	}
	return out, sc.Err()
}

// unquote undoes Format's single quotes ('it'\”s' is it's) and strips
// double quotes.
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'")
	}
	return strings.Trim(v, `"`)
}

// PasswordIn is OS_PASSWORD of an openrc file ("" if none, or the file is
// not there).
func PasswordIn(path string) string {
	env, err := Read(path)
	if err != nil {
		return ""
	}
	p := env["OS_PASSWORD"]
	if strings.HasPrefix(p, "$") {
		return "" // asked for when sourced
	}
	return p
}

// AuthURL is the Identity v3 endpoint of an API listening on listen
// (host:port): a wildcard or empty host is replaced by host, the name
// clients reach this machine by.
func AuthURL(listen, host string) string {
	h, port, err := net.SplitHostPort(listen)
	if err != nil {
		h, port = listen, "8774"
	}
	if h == "" || h == "0.0.0.0" || h == "::" {
		h = host
	}
	if h == "" {
		h = "localhost"
	}
	return "http://" + net.JoinHostPort(h, port) + "/identity/v3"
}
