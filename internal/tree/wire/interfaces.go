package wire

// Interfaces attached to and detached from a running server
// (os-interface). The API cell binds or makes the port first, so the
// address of the interface is known when the message is sent; the owning
// cell records or frees it and sends the instance's addresses up.
const (
	// MethodAttachInterface (targeted, down, durable): the instance of
	// the target cell has a new interface, NIC, whose port the API cell
	// has bound and whose addresses it has handed out. The cell records
	// the addresses as the instance's and sends its state up. Applying it
	// twice changes nothing.
	MethodAttachInterface = "attach_interface"
	// MethodDetachInterface (targeted, down, durable): the instance's
	// interface on port PortID is gone (the API cell has unbound or
	// deleted the port). The cell frees the port's addresses and sends
	// the instance's state up. Applying it twice changes nothing.
	MethodDetachInterface = "detach_interface"
)

// AttachInterface is the payload of attach_interface.
type AttachInterface struct {
	UUID      string `json:"uuid"`
	NIC       NIC    `json:"nic"`
	UserID    string `json:"user_id"`
	ProjectID string `json:"project_id"`
}

// DetachInterface is the payload of detach_interface.
type DetachInterface struct {
	UUID      string `json:"uuid"`
	PortID    string `json:"port_id"`
	UserID    string `json:"user_id"`
	ProjectID string `json:"project_id"`
}
