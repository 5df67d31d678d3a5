package broker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cellcloud/cellcloud/internal/privfs"
)

// User is a name and password of an embedded broker.
type User struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// Credentials are the users of a cell's embedded broker: Cell, which the
// cell's own processes use and which may do anything, and Link, which the
// cell's neighbours (its parent and children) use and which may only send
// to the cell (Auth's subjects). Each cell has its own; a neighbour learns
// only the Link user, inside the broker URL its cells table records.
type Credentials struct {
	Cell User `json:"cell"`
	Link User `json:"link"`
}

// Auth is the authorization of an embedded broker.
type Auth struct {
	Credentials
	// LinkPublish and LinkSubscribe are the subjects the Link user may
	// publish and subscribe to (wildcards allowed); nothing else.
	LinkPublish, LinkSubscribe []string
}

func (a *Auth) users() []*server.User {
	return []*server.User{
		{Username: a.Cell.Name, Password: a.Cell.Password},
		{Username: a.Link.Name, Password: a.Link.Password, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: a.LinkPublish},
			Subscribe: &server.SubjectPermission{Allow: a.LinkSubscribe},
		}},
	}
}

func secret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NewCredentials makes fresh random credentials.
func NewCredentials() (*Credentials, error) {
	c := &Credentials{Cell: User{Name: "cell"}, Link: User{Name: "link"}}
	var err error
	if c.Cell.Password, err = secret(); err != nil {
		return nil, err
	}
	if c.Link.Password, err = secret(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadCredentials reads a credentials file; a missing file is an error
// that wraps fs.ErrNotExist.
func LoadCredentials(path string) (*Credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("broker credentials %s: %w", path, err)
	}
	if c.Cell.Name == "" || c.Cell.Password == "" || c.Link.Name == "" || c.Link.Password == "" || c.Cell.Name == c.Link.Name {
		return nil, fmt.Errorf("broker credentials %s: cell and link need distinct names and passwords", path)
	}
	return &c, nil
}

// LoadOrCreateCredentials reads a credentials file, or writes fresh
// credentials to it (mode 0600) when it does not exist. Two processes
// creating it at once agree on one: the file appears whole or not at all.
func LoadOrCreateCredentials(path string) (*Credentials, error) {
	c, err := LoadCredentials(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return c, err
	}
	if c, err = NewCredentials(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := privfs.MkdirAll(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	// CreateTemp made it 0600; a link never replaces an existing file.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	return LoadCredentials(path)
}

// WithUser returns rawURL with u as its user and password.
func WithUser(rawURL string, u User) (string, error) {
	p, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("broker URL: %w", err)
	}
	p.User = url.UserPassword(u.Name, u.Password)
	return p.String(), nil
}

// Redact hides the password of a broker URL, for logs and listings: of
// each URL of a NATS cluster's comma-separated list, as nats.Connect takes
// it.
func Redact(rawURL string) string {
	parts := strings.Split(rawURL, ",")
	for i, u := range parts {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil {
			parts[i] = "(unparsable URL)"
			continue
		}
		parts[i] = p.Redacted()
	}
	return strings.Join(parts, ",")
}

// HasUser reports whether a broker URL (the first of a list) carries a
// user.
func HasUser(rawURL string) bool {
	first, _, _ := strings.Cut(rawURL, ",")
	p, err := url.Parse(strings.TrimSpace(first))
	return err == nil && p.User != nil
}
