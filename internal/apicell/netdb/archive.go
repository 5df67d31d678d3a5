package netdb

import "github.com/cellcloud/cellcloud/internal/db/archive"

// ServerArchiveChildren are this package's rows of a server that go, for
// good, when the API copy's deleted server is archived: its security group
// bindings (which Nova keeps in the instance's own row) and its
// interfaces' device tags.
var ServerArchiveChildren = []archive.Child{
	{Name: "security_group_bindings", Column: "instance_uuid", Drop: true},
	{Name: "server_nic_tags", Column: "server_uuid", Drop: true},
}
