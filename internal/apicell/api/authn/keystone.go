package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Keystone validates tokens against an external Keystone v3, as
// keystonemiddleware does: GET /v3/auth/tokens with the token as both the
// caller and the subject (Keystone's default policy lets a token validate
// itself, so no service account is needed).
type Keystone struct {
	// URL is Keystone's v3 endpoint, e.g. https://keystone.example.com/v3.
	url    string
	client *http.Client
}

// NewKeystone checks the URL and builds the validator.
func NewKeystone(rawURL string, client *http.Client) (*Keystone, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("keystone url %q must be an http(s) URL", rawURL)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	base := strings.TrimSuffix(u.String(), "/")
	if !strings.HasSuffix(base, "/v3") {
		base += "/v3"
	}
	return &Keystone{url: base, client: client}, nil
}

type ksToken struct {
	Token struct {
		ExpiresAt string `json:"expires_at"`
		User      struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain struct {
				ID string `json:"id"`
			} `json:"domain"`
		} `json:"user"`
		Project *struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain struct {
				ID string `json:"id"`
			} `json:"domain"`
		} `json:"project"`
		Roles []struct {
			Name string `json:"name"`
		} `json:"roles"`
	} `json:"token"`
}

// Authenticate asks Keystone about a token.
func (k *Keystone) Authenticate(ctx context.Context, tok string) (Principal, error) {
	if tok == "" {
		return Principal{}, ErrUnauthorized
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url+"/auth/tokens?nocatalog", nil)
	if err != nil {
		return Principal{}, err
	}
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("X-Subject-Token", tok)
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return Principal{}, fmt.Errorf("keystone: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Principal{}, fmt.Errorf("keystone: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusNotFound, http.StatusForbidden:
		return Principal{}, ErrUnauthorized
	default:
		return Principal{}, fmt.Errorf("keystone: validating a token: %s", resp.Status)
	}
	var t ksToken
	if err := json.Unmarshal(body, &t); err != nil {
		return Principal{}, fmt.Errorf("keystone: token body: %w", err)
	}
	p := Principal{UserID: t.Token.User.ID, UserName: t.Token.User.Name, UserDomainID: t.Token.User.Domain.ID}
	if t.Token.Project != nil {
		p.ProjectID, p.ProjectName, p.ProjectDomainID = t.Token.Project.ID, t.Token.Project.Name, t.Token.Project.Domain.ID
	}
	for _, r := range t.Token.Roles {
		p.Roles = append(p.Roles, strings.ToLower(r.Name))
	}
	if p.UserID == "" {
		return Principal{}, errors.New("keystone: token body names no user")
	}
	if p.ExpiresAt, err = time.Parse(time.RFC3339Nano, t.Token.ExpiresAt); err != nil {
		return Principal{}, fmt.Errorf("keystone: token expires_at %q: %w", t.Token.ExpiresAt, err)
	}
	return p, nil
}
