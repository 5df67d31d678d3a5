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

// ImageCacher is a driver that can fetch an image into a host's local
// cache before any instance boots from it (Nova's driver cache_image).
// CacheImage reports whether it fetched the image now (false: the host had
// it); it is safe to call again.
type ImageCacher interface {
	CacheImage(ctx context.Context, host, imageID string) (bool, error)
}

// ImageCacheLister is a driver that can say which images a host has
// cached, sorted.
type ImageCacheLister interface {
	CachedImages(host string) []string
}

// VolumeAttacher is a driver that can attach a volume to a running
// instance as a disk of its guest (Nova's driver attach_volume) and
// detach it. AttachVolume gives the guest device (/dev/vdb) the volume's
// backing path (the backend's file); attaching the same path at the same
// device again does nothing, and detaching a device the instance does not
// have is not an error.
type VolumeAttacher interface {
	AttachVolume(ctx context.Context, host, uuid, device, path string) error
	DetachVolume(ctx context.Context, host, uuid, device string) error
}

// Consoler is a driver that can return an instance's console log.
type Consoler interface {
	ConsoleOutput(ctx context.Context, host, uuid string) (string, error)
}

// Firewall is a driver that filters the traffic of an instance's ports
// (Neutron's security groups, as a host enforces them). A port's rules may
// name a remote group: they then match the addresses of the host's
// address set of that group, which SetAddressSet keeps. Both calls replace
// what the host had: they are safe to repeat.
type Firewall interface {
	// SetAddressSet sets the host's address set of group groupID to
	// addrs (addresses or prefixes); none removes the set, which matches
	// no address, as an empty one does.
	SetAddressSet(ctx context.Context, host, groupID string, addrs []string) error
	// SetFilter sets the filter of the instance's ports on host; none
	// removes it (nothing is filtered).
	SetFilter(ctx context.Context, host, uuid string, ports []PortFilter) error
}

// AddressSetUpdater is a firewall that can change a host's address set of
// a group by some addresses, at a cost that grows with them and not with
// the set. Addresses in remove leave the set, then those in add come
// (adding one it has or removing one it has not changes nothing); a set
// left empty is removed, as SetAddressSet with none would.
type AddressSetUpdater interface {
	UpdateAddressSet(ctx context.Context, host, groupID string, add, remove []string) error
}

// FilterReader is a firewall that can say what it enforces on an
// instance: its ports' filters and the address sets their rules name
// (group id to addresses), and whether the instance has a filter at all.
type FilterReader interface {
	Filter(host, uuid string) ([]PortFilter, map[string][]string, bool)
}

// PortFilter is what a host lets in and out of one port of an instance:
// everything, when PortSecurity is off; else what Rules allow, nothing in
// at all while a group of the port is Pending (not held by the cell yet).
// Traffic out of the port is from its Addresses or those of its
// AllowedAddressPairs.
type PortFilter struct {
	PortID              string
	Addresses           []string
	PortSecurity        bool
	SecurityGroups      []string
	AllowedAddressPairs []AddressPair
	Pending             []string
	Rules               []Rule
}

// AddressPair is an address (or prefix), and MAC if set, a port may also
// send from.
type AddressPair struct {
	IPAddress  string
	MACAddress string
}

// Rule is one rule a port enforces. Direction is "ingress" (traffic to
// the port, Remote being its source) or "egress" (from it, Remote its
// destination); EtherType "IPv4" or "IPv6"; Protocol as the Networking API
// gives it (a name, a number, "" for any); PortMin and PortMax the
// destination port range of TCP, UDP and the like, or the ICMP type and
// code (nil: any). The remote is RemotePrefix, or the host's address set
// of RemoteGroupID, or any address when neither is set. Stateful rules
// let replies back (conntrack).
type Rule struct {
	Direction     string
	EtherType     string
	Protocol      string
	PortMin       *int
	PortMax       *int
	RemotePrefix  string
	RemoteGroupID string
	Stateful      bool
	// RuleID and GroupID say which rule of which group this is.
	RuleID  string
	GroupID string
}
