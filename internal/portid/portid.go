// Package portid derives the id of a port a compute cell makes for an
// instance's address on a network: the API cell and the cells derive the
// same id from the same three facts, with no message between them.
package portid

import "github.com/google/uuid"

// namespace is the UUID v5 namespace of derived port ids (as the API cell's
// netdb used before the derivation moved here: ids already shown stay).
var namespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://cellcloud.invalid/netdb/ports"))

// Derive is the id of the port that holds addr in the network named network
// for an instance: a UUID v5, the same every time it is derived.
func Derive(instanceUUID, network, addr string) string {
	return uuid.NewSHA1(namespace, []byte(instanceUUID+"\x00"+network+"\x00"+addr)).String()
}
