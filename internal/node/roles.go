package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	computerole "github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/hostops"
	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/computecell/scheduler"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/rpc"
)

// The roles of a cell as the node runs them: each is a component, started
// in the order Node.Start lists them and shut down in reverse. A role that
// other processes of the cell reach over the broker serves them with its
// own rpc.Server, which owns each request's goroutine.

// schedulerRole is the host scheduler, served to the conductors of other
// processes.
type schedulerRole struct {
	svc  *scheduler.Service
	srv  *rpc.Server
	cell string
}

func (r *schedulerRole) Start(context.Context) error { return serveScheduler(r.srv, r.cell, r.svc) }

func (r *schedulerRole) Shutdown(ctx context.Context) error { return r.srv.Shutdown(ctx) }

// networkRole is the network service, served to the conductors of other
// processes.
type networkRole struct {
	svc  *network.Service
	srv  *rpc.Server
	cell string
}

func (r *networkRole) Start(ctx context.Context) error {
	if err := r.svc.Start(ctx); err != nil {
		return err
	}
	return serveNetwork(r.srv, r.cell, r.svc)
}

func (r *networkRole) Shutdown(ctx context.Context) error {
	return errors.Join(r.srv.Shutdown(ctx), r.svc.Shutdown(ctx))
}

// computeRole is the compute agent of this process's hosts: it starts (its
// hosts registered) before it is served to other processes.
type computeRole struct {
	svc   *computerole.Service
	srv   *rpc.Server
	cell  string
	hosts []string
}

func (r *computeRole) Start(ctx context.Context) error {
	if err := r.svc.Start(ctx); err != nil {
		return err
	}
	return serveCompute(r.srv, r.cell, r.hosts, r.svc)
}

func (r *computeRole) Shutdown(ctx context.Context) error {
	return errors.Join(r.srv.Shutdown(ctx), r.svc.Shutdown(ctx))
}

// cellsRole is the cells service, which also answers the calls of an api
// role in another process of the cell.
type cellsRole struct {
	svc  *cells.Service
	srv  *rpc.Server
	cell string
}

func (r *cellsRole) Start(ctx context.Context) error {
	if err := serveCellsCalls(r.srv, r.cell, localCaller{r.svc}); err != nil {
		return err
	}
	return r.svc.Start(ctx)
}

// cellsShutdownTimeout bounds the wait for the cells service's loops.
const cellsShutdownTimeout = 5 * time.Second

func (r *cellsRole) Shutdown(ctx context.Context) error {
	err := r.srv.Shutdown(ctx)
	sctx, cancel := context.WithTimeout(ctx, cellsShutdownTimeout)
	defer cancel()
	return errors.Join(err, r.svc.Shutdown(sctx))
}

// hostsCapacity is a compute cell's own hosts as the cells service
// reports them up and schedules onto them.
type hostsCapacity struct {
	// network is the cell's default network: the cell offers no capacity
	// while it waits for its first address blocks of it.
	network string
}

// hostsDownAfter is how old a host's heartbeat may be for the host to
// count in the cell's capacity.
const hostsDownAfter = 60 * time.Second

func (h hostsCapacity) Capacity(ctx context.Context, q cells.Querier) (capacity.Report, error) {
	if waiting, err := network.AwaitingFirstBlocks(ctx, q, h.network); err != nil || waiting {
		return capacity.Report{}, err
	}
	return celldb.Capacity(ctx, q, time.Now(), hostsDownAfter)
}

// downCells is the API cell's cells table as the Compute API asks it
// which cells below are down (compute.DownCells): children whose last
// report is older than downAfter, or that never reported in downAfter
// since since (when the API role was built), and the cells their live
// siblings' reports say are down.
type downCells struct {
	db        *db.DB
	downAfter time.Duration
	since     time.Time
}

func (d downCells) Down(ctx context.Context) ([]string, error) {
	return cells.DownCells(ctx, d.db, time.Now(), d.downAfter, d.since)
}

// registrarRole keeps the heartbeat of the controller services this
// process runs in a compute cell, for os-services.
type registrarRole struct{ *hostops.Registrar }

func (r registrarRole) Shutdown(context.Context) error {
	r.Registrar.Shutdown()
	return nil
}

// apiRole is the public APIs' HTTP listener. Before it listens it seeds
// what a fresh cloud needs (the flavors, one image, the default network).
type apiRole struct {
	httpServer
}

func (a *apiRole) Start(ctx context.Context) error {
	return a.httpServer.Start(ctx)
}

// apiSeed makes what a fresh API cell serves (the default flavors, one
// image, the default network) before any role of the cell starts: the
// cells service answers the compute cells' first lease requests of the
// default network's address blocks, which must find it.
type apiSeed struct {
	db     *db.DB
	images *image.API
	// identity is the local identity store (nil unless api.auth is
	// local): the default network belongs to its admin project.
	identity *identity.Store
}

func (a *apiSeed) Start(ctx context.Context) error {
	if err := apidb.SeedFlavors(ctx, a.db); err != nil {
		return err
	}
	// One image that any fresh cloud can boot.
	if err := a.images.Seed(ctx, image.Cirros()); err != nil {
		return err
	}
	return seedDefaultNetwork(ctx, a.db, a.identity)
}

func (a *apiSeed) Shutdown(context.Context) error { return nil }

// seedDefaultNetwork makes sure the default network "private" exists,
// owned by the admin project: the local identity's project "admin" (of the
// default domain) by its id; without local identity, or before that
// project exists, by the name "admin" (the admin's project id in noauth
// mode), which a later seed replaces with the id.
func seedDefaultNetwork(ctx context.Context, d *db.DB, ids *identity.Store) error {
	owner := netdb.SeedProjectID
	if ids != nil {
		p, err := ids.ProjectByName(ctx, identity.DefaultDomainID, "admin")
		switch {
		case err == nil:
			owner = p.ID
		case !errors.Is(err, notfound.Err):
			return fmt.Errorf("the admin project: %w", err)
		}
	}
	_, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", owner)
	return err
}

// OwnDefaultNetwork gives the default network to the admin project, once
// a bootstrap after the start has made it (cellcloud up).
func (n *Node) OwnDefaultNetwork(ctx context.Context) error {
	return seedDefaultNetwork(ctx, n.DB, n.Identity)
}

// httpServer serves handler on listen. It owns the server's goroutine:
// Shutdown returns once Serve has.
type httpServer struct {
	handler http.Handler
	listen  string
	// errs takes a failure of the server after Start.
	errs chan<- error
	// The server's timeouts (zero: none) and its cap on the connections
	// of one client IP (zero or less: none). The image data routes extend
	// their own deadlines (image.Config.DataTimeout).
	readTimeout, writeTimeout, idleTimeout time.Duration
	maxPerClient                           int
	log                                    *slog.Logger
	// headerTimeout bounds reading a request's headers (zero:
	// defaultHeaderTimeout, or the read timeout when that is shorter).
	headerTimeout time.Duration

	srv *http.Server
	ln  *perClientListener
	// lastRefusedLog is when refused last logged (Unix nanoseconds).
	lastRefusedLog atomic.Int64
	addr           string
	served         chan struct{} // closed when Serve returns
}

// defaultHeaderTimeout bounds reading a request's headers.
const defaultHeaderTimeout = 10 * time.Second

func (h *httpServer) Start(context.Context) error {
	ln, err := net.Listen("tcp", h.listen)
	if err != nil {
		return fmt.Errorf("api: listen %s: %w", h.listen, err)
	}
	h.addr = ln.Addr().String()
	if h.maxPerClient > 0 {
		h.ln = newPerClientListener(ln, h.maxPerClient, h.refused)
		ln = h.ln
	}
	header := h.headerTimeout
	if header == 0 {
		header = defaultHeaderTimeout
		if h.readTimeout > 0 {
			header = min(header, h.readTimeout)
		}
	}
	h.srv = &http.Server{Handler: h.handler, ReadHeaderTimeout: header,
		ReadTimeout: h.readTimeout, WriteTimeout: h.writeTimeout, IdleTimeout: h.idleTimeout}
	h.served = make(chan struct{})
	go func() {
		defer close(h.served)
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.errs <- err
		}
	}()
	return nil
}

// refused logs a connection closed at the per-client cap, at most once a
// minute per process (a flood must not flood the log too).
func (h *httpServer) refused(ip string) {
	now := time.Now().UnixNano()
	last := h.lastRefusedLog.Load()
	if h.log == nil || now-last < int64(time.Minute) || !h.lastRefusedLog.CompareAndSwap(last, now) {
		return
	}
	h.log.Warn("closing connections over the per-client cap (api.max_connections_per_client)", "client", ip, "max", h.maxPerClient)
}

// httpShutdownTimeout bounds the wait for requests in flight.
const httpShutdownTimeout = 3 * time.Second

func (h *httpServer) Shutdown(ctx context.Context) error {
	if h.srv == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, httpShutdownTimeout)
	defer cancel()
	err := h.srv.Shutdown(sctx)
	<-h.served
	return err
}
