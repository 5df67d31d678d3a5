package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
)

// cmdStatus prints the cell tree as the API cell sees it (os-cells): each
// cell, whether it is up, its hosts and instances. It signs in as an
// administrator with an openrc file (default DATA_DIR/openrc-admin) or
// the OS_* environment, as the openstack CLI does.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "./data", "the data directory of `cellcloud up` (its openrc-admin signs in)")
	openrc := fs.String("openrc", "", "an openrc file of an administrator (default: DATA_DIR/openrc-admin, else the OS_* environment)")
	url := fs.String("url", "", "the Compute API URL, with --token (for auth noauth)")
	token := fs.String("token", "", "a token to send as is (noauth: USER:PROJECT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sc, err := statusClient(ctx, *dataDir, *openrc, *url, *token)
	if err != nil {
		return err
	}
	var body struct {
		Cells []struct {
			Name      string `json:"name"`
			State     string `json:"state"`
			Hosts     int    `json:"hosts"`
			Instances int    `json:"instances"`
			RPCHost   string `json:"rpc_host"`
			RPCPort   int    `json:"rpc_port"`
		} `json:"cells"`
	}
	resp, err := sc.Get(ctx, sc.ServiceURL("os-cells", "detail"), &body, &gophercloud.RequestOpts{OkCodes: []int{http.StatusOK}})
	if err != nil {
		return fmt.Errorf("os-cells: %w", err)
	}
	root := "api"
	if len(body.Cells) > 0 {
		root = cellpath.Root(body.Cells[0].Name)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t(API cell)\n", root)
	for _, c := range body.Cells {
		indent := strings.Repeat("  ", cellpath.Depth(c.Name)-1)
		if c.State != "up" {
			fmt.Fprintf(tw, "%s%s\tDOWN\t\t\t(cannot receive, or did not answer)\n", indent, c.Name)
			continue
		}
		fmt.Fprintf(tw, "%s%s\tup\t%d hosts\t%d instances\tbroker %s:%d\n", indent, c.Name, c.Hosts, c.Instances, c.RPCHost, c.RPCPort)
	}
	if missing := resp.Header.Get("X-Cellcloud-Missing-Cells"); missing != "" {
		fmt.Fprintf(tw, "\nmissing from this answer: %s\n", missing)
	}
	return tw.Flush()
}

// statusClient signs in to the Compute API.
func statusClient(ctx context.Context, dataDir, openrc, url, token string) (*gophercloud.ServiceClient, error) {
	if url != "" || token != "" {
		if url == "" || token == "" {
			return nil, usageError{errors.New("--url and --token go together")}
		}
		pc := &gophercloud.ProviderClient{}
		pc.SetToken(token)
		u := strings.TrimSuffix(url, "/") + "/"
		return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: u, ResourceBase: u, Type: "compute"}, nil
	}
	env := map[string]string{}
	if openrc == "" {
		if p := filepath.Join(dataDir, "openrc-admin"); fileExists(p) {
			openrc = p
		}
	}
	if openrc != "" {
		var err error
		if env, err = readOpenRC(openrc); err != nil {
			return nil, err
		}
	}
	get := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	if get("OS_AUTH_URL") == "" {
		return nil, usageError{errors.New("no credentials: give --openrc FILE (cellcloud up writes DATA_DIR/openrc-admin), set OS_AUTH_URL and the other OS_* variables, or --url and --token")}
	}
	pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: get("OS_AUTH_URL"), Username: get("OS_USERNAME"), Password: get("OS_PASSWORD"),
		DomainName: get("OS_USER_DOMAIN_NAME"), TenantName: get("OS_PROJECT_NAME"),
	})
	if err != nil {
		return nil, fmt.Errorf("signing in at %s: %w", get("OS_AUTH_URL"), err)
	}
	return openstack.NewComputeV2(pc, gophercloud.EndpointOpts{Region: get("OS_REGION_NAME")})
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readOpenRC reads the "export KEY=VALUE" lines of an openrc file.
func readOpenRC(path string) (map[string]string, error) {
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
		out[k] = strings.Trim(v, `'"`)
	}
	return out, sc.Err()
}
