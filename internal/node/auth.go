package node

import (
	"context"
	"fmt"
	"slices"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/compute"
	identityapi "github.com/cellcloud/cellcloud/internal/apicell/api/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	networkapi "github.com/cellcloud/cellcloud/internal/apicell/api/network"
	volumeapi "github.com/cellcloud/cellcloud/internal/apicell/api/volume"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/config"
)

// PolicyRules are the default rules of every public API of the API cell.
func PolicyRules() []policy.Rule {
	return slices.Concat(policy.Base, compute.Rules, identityapi.Rules, image.Rules, networkapi.Rules, volumeapi.Rules)
}

// Catalog is the service catalog of the API cell's listener, under
// devstack's paths. Block Storage is registered as devstack registers
// Cinder: under both of its service types, with the project in the URL as
// a template that a token's catalog fills with the token's project.
func Catalog() []identityapi.Endpoint {
	at := func(path string) func(string) string { return func(base string) string { return base + path } }
	return []identityapi.Endpoint{
		{Type: "compute", Name: "nova", URL: at("/v2.1")},
		{Type: "identity", Name: "keystone", URL: at("/identity")},
		{Type: "image", Name: "glance", URL: at("/image")},
		{Type: "network", Name: "neutron", URL: at("/networking")},
		{Type: "block-storage", Name: "cinder", URL: at("/volume/v3/" + identityapi.ProjectIDTemplate)},
		{Type: "volumev3", Name: "cinderv3", URL: at("/volume/v3/" + identityapi.ProjectIDTemplate)},
	}
}

// authenticator builds the api role's token validation for its mode; in
// local mode it opens the identity store (n.Identity).
func (n *Node) authenticator(ctx context.Context) (authn.Authenticator, error) {
	a := n.cfg.API
	switch a.Auth {
	case config.AuthNoAuth:
		n.log.Warn("the public APIs run without authentication (api.auth noauth): for development only", "cell", n.cfg.Cell)
		return authn.NoAuth{}, nil
	case config.AuthKeystone:
		ks, err := authn.NewKeystone(a.KeystoneURL, nil)
		if err != nil {
			return nil, err
		}
		n.tokenCache = authn.NewCache(ks, a.TokenCacheTTL.D(), 0, nil)
		return n.tokenCache, nil
	case config.AuthLocal:
		st, err := identity.New(ctx, n.DB, identityOptions(a))
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		var accts []identity.Account
		if a.AdminPassword != "" {
			accts = append(accts, identity.Account{User: "admin", Password: a.AdminPassword, Project: "admin", Role: identity.RoleAdmin})
		}
		did, err := st.BootstrapAccounts(ctx, accts...)
		if err != nil {
			return nil, err
		}
		if len(did) == 1 {
			n.log.Info("bootstrap: user admin "+did[0]+" (role admin on project admin, domain Default)", "cell", n.cfg.Cell)
		} else {
			n.log.Info("bootstrap: no admin user made or checked (CELLCLOUD_ADMIN_PASSWORD is not set)", "cell", n.cfg.Cell)
		}
		n.Identity = st
		n.tokenCache = authn.NewCache(authn.Local{Store: st}, a.TokenCacheTTL.D(), 0, nil)
		return n.tokenCache, nil
	}
	return nil, fmt.Errorf("api.auth %q is not supported", a.Auth)
}

// identityOptions are the local identity store's options from the api
// role's config: its token lifetime and its defence against password
// guessing (config.PasswordProtection, where -1 is off).
func identityOptions(a config.API) identity.Options {
	p := a.PasswordProtection
	o := identity.Options{TokenTTL: a.TokenTTL.D(), LockoutDuration: p.LockoutDuration.D(),
		HashConcurrency: p.PasswordHashConcurrency, HashWait: p.PasswordHashWait.D()}
	if p.LockoutFailureAttempts > 0 {
		o.LockoutFailureAttempts = p.LockoutFailureAttempts
	}
	if p.AuthFailureBurst > 0 {
		o.AuthFailureBurst, o.AuthFailuresPerMinute = p.AuthFailureBurst, p.AuthFailuresPerMinute
	}
	return o
}
