package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/openrc"
)

const openrcUsage = `usage: cellcloud openrc --config FILE [--user NAME] [--project NAME] [--auth-url URL]

Prints an openrc file for the openstack CLI: a user of the API cell
configured in FILE (api.auth local), at its Identity API. For the user
admin the password is CELLCLOUD_ADMIN_PASSWORD, or the one in
DATA_DIR/openrc-admin (which cellcloud serve writes when it bootstraps the
admin); for any other user the file asks for the password when sourced.
The Identity URL is api.listen's, a wildcard host replaced by the
configured host; give --auth-url when clients reach it by another name.

  cellcloud openrc --config api.json > admin-openrc && . ./admin-openrc

`

// cmdOpenRC prints an openrc for a user of the API cell of a config.
func cmdOpenRC(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("openrc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, openrcUsage); fs.PrintDefaults() }
	cfgPath := fs.String("config", "", "the API cell's configuration file")
	user := fs.String("user", "admin", "the user")
	project := fs.String("project", "", "the project to scope to (default: the user admin's admin; required for other users)")
	authURL := fs.String("auth-url", "", "the Identity v3 URL clients reach (default: from api.listen)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *cfgPath == "" {
		return usageError{errors.New("--config is required")}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if !cfg.IsRoot() || !cfg.Has(config.RoleAPI) {
		return usageError{fmt.Errorf("cell %s runs no api role: give the API cell's configuration", cfg.Cell)}
	}
	if cfg.API.Auth != config.AuthLocal {
		return usageError{fmt.Errorf("cell %s has api.auth %s, not local: its users are not its own", cfg.Cell, cfg.API.Auth)}
	}
	f := openrc.File{User: *user, Project: *project, AuthURL: *authURL, Region: cfg.API.Region}
	if f.AuthURL == "" {
		f.AuthURL = openrc.AuthURL(cfg.API.Listen, cfg.Host)
	}
	if *user == "admin" {
		if f.Project == "" {
			f.Project = "admin"
		}
		if f.Password = os.Getenv("CELLCLOUD_ADMIN_PASSWORD"); f.Password == "" {
			f.Password = openrc.PasswordIn(filepath.Join(cfg.DataDir, "openrc-admin"))
		}
	} else if f.Project == "" {
		return usageError{fmt.Errorf("--project is required for user %s", *user)}
	}
	_, err = io.WriteString(stdout, f.Format())
	return err
}
