// Package virt is the hypervisor driver interface of a compute host. A
// driver implements Driver; optional abilities are separate interfaces that
// callers find by type assertion.
package virt

import "context"

// Instance is what a driver needs to run an instance.
type Instance struct {
	UUID   string
	Name   string
	VCPUs  int
	RAMMB  int64
	DiskGB int64
}

// Driver runs instances on hosts.
type Driver interface {
	// Spawn starts an instance on host. It is safe to call again for an
	// instance that is already running there.
	Spawn(ctx context.Context, host string, in Instance) error
	// Destroy stops and removes an instance; a missing one is not an error.
	Destroy(ctx context.Context, host, uuid string) error
}

// Lister is a driver that can list what runs on a host.
type Lister interface {
	List(host string) []string
}

// Operator is a driver that can carry out lifecycle operations on a running
// instance: "power_off", "power_on", "reboot", "pause", "unpause",
// "suspend", "resume", "rescue", "unrescue", "rebuild", "snapshot", "shelve".
type Operator interface {
	Operate(ctx context.Context, host, uuid, op string) error
}

// Consoler is a driver that can return an instance's console log.
type Consoler interface {
	ConsoleOutput(ctx context.Context, host, uuid string) (string, error)
}
