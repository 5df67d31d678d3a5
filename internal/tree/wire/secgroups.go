package wire

// Security groups in the cells. The API cell (the root) owns the groups
// and their rules; a compute cell holds the groups its ports are in and
// the groups their rules name as remote, with the member addresses of
// those, and enforces them. Which cells hold a group the root learns from
// the cells themselves (security_groups_sync); what changes it pushes to
// the holders alone: a group's rules whole, newer-wins by the group's
// revision; its members as deltas numbered by a sequence per group, so a
// cell that missed one sees the gap and asks for the whole set. A cell's
// periodic sync is the heal: it says what it holds, and the root resends
// what is newer.
const (
	// MethodSecurityGroupsSync (targeted to the root, up, durable): the
	// sending cell needs the groups in Want (its ports are in them) and
	// holds those in Held at the revisions and member sequences given.
	// The root records the cell as a holder of the wanted groups and of
	// the remote groups their rules name and, when Complete, stops
	// counting it a holder of any other; it answers with
	// security_groups in the same transaction: each wanted or held group
	// whose revision or member sequence is newer at the root (rules and
	// the whole member set), and Drop for the groups the cell holds but
	// no longer needs or that are gone.
	MethodSecurityGroupsSync = "security_groups_sync"
	// MethodSecurityGroups (targeted, down, durable): groups' rule sets
	// and, with HasMembers, their whole member sets; Drop names groups the
	// cell holds no more. A rule set older than or as old as the cell's is
	// ignored, as is a member set whose sequence is older than the cell's,
	// so a repeat or a late copy changes nothing.
	MethodSecurityGroups = "security_groups"
	// MethodSecurityGroupMembers (targeted, down, durable): member deltas
	// of groups the cell holds. A cell whose sequence of the group is
	// FromSeq applies the delta and is then at ToSeq; one at ToSeq or past
	// it ignores it (a repeat); one below FromSeq (it missed a delta) or
	// that does not hold the group asks for a sync.
	MethodSecurityGroupMembers = "security_group_members"
	// MethodPortUpdate (targeted, down, durable): a port bound to an
	// instance of the target cell changed what its enforcement depends on
	// (its security groups, port security, allowed address pairs). The
	// cell records it on the instance's NIC and enforces it. Newer-wins by
	// the port's revision, so a repeat or a late copy changes nothing.
	MethodPortUpdate = "port_update"
	// MethodInstanceFilter (targeted, down, call): what the instance's
	// host enforces for each of its ports now, as its driver holds it
	// (an admin's view of what a VM is allowed).
	MethodInstanceFilter = "instance_filter"
)

// SecurityGroupsSync is the payload of security_groups_sync.
type SecurityGroupsSync struct {
	// Want are the groups of the cell's ports (without the remote groups
	// their rules name: the root adds those).
	Want []string `json:"want,omitempty"`
	// Held are the groups the cell holds, at what versions.
	Held []HeldGroup `json:"held,omitempty"`
	// Complete says Want is all the cell needs (a periodic sync): the root
	// drops the cell as holder of every group outside Want and their
	// remote groups. A sync sent for a new group alone is not complete.
	Complete bool `json:"complete,omitempty"`
}

// HeldGroup is a group a cell holds: the revision of its rules and the
// sequence of its members. 0 for either means none yet.
type HeldGroup struct {
	ID        string `json:"id"`
	Revision  int64  `json:"revision"`
	MemberSeq int64  `json:"member_seq"`
	// Members is how many members the cell holds of the group (a periodic
	// sync says it; nil: not said). At the root's own member sequence, a
	// count that differs from the root's makes the root send the whole
	// set again, marked Resync.
	Members *int `json:"members,omitempty"`
}

// SecurityGroups is the payload of security_groups.
type SecurityGroups struct {
	Groups []SecurityGroupState `json:"groups,omitempty"`
	// Drop are groups the cell no longer holds: deleted, or no longer
	// needed by its ports or named by the rules of a group they need.
	Drop []string `json:"drop,omitempty"`
}

// SecurityGroupState is one group as the root holds it.
type SecurityGroupState struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	// Revision is the group's revision_number: every change of its rules
	// raises it.
	Revision int64               `json:"revision"`
	Stateful bool                `json:"stateful"`
	Rules    []SecurityGroupRule `json:"rules"`
	// HasMembers says Members is the group's whole member set at
	// MemberSeq; without it, the message carries the rules alone.
	HasMembers bool          `json:"has_members,omitempty"`
	MemberSeq  int64         `json:"member_seq,omitempty"`
	Members    []GroupMember `json:"members,omitempty"`
	// Resync says the cell's member set at MemberSeq was found to differ
	// from the root's: the cell replaces its set even at an equal
	// sequence (never an older one).
	Resync bool `json:"resync,omitempty"`
}

// SecurityGroupRule is one rule of a group, as the Networking API has it
// (protocol as given: a name, a number or empty for any; a port range
// only for the protocols that have ports, or ICMP type and code).
type SecurityGroupRule struct {
	ID             string `json:"id"`
	Direction      string `json:"direction"` // ingress, egress
	EtherType      string `json:"ethertype"` // IPv4, IPv6
	Protocol       string `json:"protocol,omitempty"`
	PortRangeMin   *int   `json:"port_range_min,omitempty"`
	PortRangeMax   *int   `json:"port_range_max,omitempty"`
	RemoteIPPrefix string `json:"remote_ip_prefix,omitempty"`
	RemoteGroupID  string `json:"remote_group_id,omitempty"`
}

// GroupMember is one address of a port in a group (its fixed IPs; the
// addresses of its allowed address pairs too). A group's member set is a
// set of these.
type GroupMember struct {
	PortID  string `json:"port_id"`
	Address string `json:"address"`
}

// SecurityGroupMembers is the payload of security_group_members.
type SecurityGroupMembers struct {
	Deltas []MemberDelta `json:"deltas"`
}

// MemberDelta takes a group's member set from FromSeq to ToSeq: Removed
// go, then Added come (a member is in one of the two at most).
type MemberDelta struct {
	GroupID string        `json:"group_id"`
	FromSeq int64         `json:"from_seq"`
	ToSeq   int64         `json:"to_seq"`
	Added   []GroupMember `json:"added,omitempty"`
	Removed []GroupMember `json:"removed,omitempty"`
}

// AddressPair is an allowed address pair of a port: traffic from this
// address (or prefix), and MAC if set, is let out of the port.
type AddressPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address,omitempty"`
}

// PortUpdate is the payload of port_update.
type PortUpdate struct {
	UUID   string `json:"uuid"`
	PortID string `json:"port_id"`
	// Revision is the port's revision_number after the change.
	Revision            int64         `json:"revision"`
	SecurityGroups      []string      `json:"security_groups"`
	PortSecurity        bool          `json:"port_security"`
	AllowedAddressPairs []AddressPair `json:"allowed_address_pairs,omitempty"`
}

// InstanceFilter is the payload of instance_filter.
type InstanceFilter struct {
	UUID string `json:"uuid"`
}

// InstanceFilterAnswer is the answer to instance_filter: each port's
// effective rules as the host's driver holds them, remote groups expanded
// to the addresses the host holds for them.
type InstanceFilterAnswer struct {
	UUID  string       `json:"uuid"`
	Host  string       `json:"host"`
	Ports []PortFilter `json:"ports"`
}

// PortFilter is what a host lets in and out of one port. With
// PortSecurity false everything passes and Rules is empty. Pending says
// a group of the port is not held by the cell yet (everything in is
// dropped until it is).
type PortFilter struct {
	PortID              string          `json:"port_id"`
	Addresses           []string        `json:"addresses"`
	PortSecurity        bool            `json:"port_security"`
	SecurityGroups      []string        `json:"security_groups"`
	AllowedAddressPairs []AddressPair   `json:"allowed_address_pairs,omitempty"`
	Pending             []string        `json:"pending,omitempty"`
	Rules               []EffectiveRule `json:"rules"`
}

// EffectiveRule is one rule a host enforces on a port: a group's rule with
// its remote group expanded to the group's member addresses of the rule's
// ethertype (none: the rule matches nothing), or its prefix as given;
// neither means any address.
type EffectiveRule struct {
	Direction    string   `json:"direction"`
	EtherType    string   `json:"ethertype"`
	Protocol     string   `json:"protocol,omitempty"`
	PortRangeMin *int     `json:"port_range_min,omitempty"`
	PortRangeMax *int     `json:"port_range_max,omitempty"`
	Remote       []string `json:"remote,omitempty"`
	// RemoteGroupID names the group Remote came from, if any.
	RemoteGroupID string `json:"remote_group_id,omitempty"`
	// RuleID and GroupID say which rule of which group made this one.
	RuleID  string `json:"rule_id"`
	GroupID string `json:"group_id"`
}
