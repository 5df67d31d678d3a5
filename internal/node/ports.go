package node

import (
	"github.com/nats-io/nats.go"

	computerole "github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/instanceops"
	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/computecell/scheduler"
	"github.com/cellcloud/cellcloud/internal/computecell/volume"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// The ports are how the roles of a cell reach one another. Each is chosen
// here, in one function per port: the role itself when this process runs
// it (nil otherwise), else its adapter over the cell's broker (remote.go),
// which reaches the process that does.

// computePort is what the conductor and the instance operations call on
// the compute hosts.
type computePort interface {
	conductor.Compute
	instanceops.Host
	instanceops.VMs
	instanceops.Filters
	volume.Hosts
}

// senderPort is the one sender of the process: the cells service's own
// when it runs here (it wakes the relay directly and applies messages for
// this cell at once), else one that nudges the service over the broker.
func senderPort(nc *nats.Conn, prefix, cell string, local *cells.Service) *cells.Sender {
	if local != nil {
		return local.Sender()
	}
	return cells.NewSender(prefix, cell, nc)
}

func schedulerPort(nc *nats.Conn, cell string, local *scheduler.Service) conductor.HostScheduler {
	if local != nil {
		return local
	}
	return remoteScheduler{nc, cell}
}

func networkPort(nc *nats.Conn, cell string, local *network.Service) conductor.Network {
	if local != nil {
		return local
	}
	return remoteNetwork{nc, cell}
}

func computeHostsPort(nc *nats.Conn, cell string, local *computerole.Service) computePort {
	if local != nil {
		return local
	}
	return remoteCompute{nc, cell}
}

// cellsCallPort is how the api role calls and gathers from the cells.
func cellsCallPort(nc *nats.Conn, cell string, local *cells.Service) caller {
	if local != nil {
		return localCaller{local}
	}
	return remoteCaller{nc, cell}
}

// streamSettings is broker.stream as the cells service takes it.
func streamSettings(s config.BrokerStream) cells.StreamSettings {
	return cells.StreamSettings{Replicas: s.Replicas, Memory: s.Storage == "memory", MaxBytes: s.MaxBytes, MaxMsgs: s.MaxMsgs, MaxAge: s.MaxAge.D()}
}
