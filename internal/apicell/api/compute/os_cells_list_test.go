package compute

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// A cell on a NATS cluster has a comma-separated list of broker URLs: its
// rpc_host and rpc_port are the first server's (they were
// "127.0.0.1:14301,nats" and 0).
func TestCellViewOfAClusterBrokerList(t *testing.T) {
	v := cellView(&treeCell{info: wire.CellInfo{Path: "api!c1", BrokerURL: "nats://n1.example.net:4222,nats://n2.example.net:4222"}, up: true}, false)
	if v["rpc_host"] != "n1.example.net" || v["rpc_port"] != 4222 {
		t.Fatalf("rpc_host %v, rpc_port %v; want n1.example.net and 4222", v["rpc_host"], v["rpc_port"])
	}
}
