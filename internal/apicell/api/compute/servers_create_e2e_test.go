package compute_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestCreateChecksWhatItNames: a create names an image, a key pair, a
// flavor and networks that must exist and be the caller's to use; each
// that is not is a 400 naming it, and nothing is created.
func TestCreateChecksWhatItNames(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})

	var nets struct {
		Networks []struct{ ID, Name string } `json:"networks"`
	}
	tr.Do(t, http.MethodGet, "/networking/v2.0/networks?name=private", demo, nil).JSON(t, &nets)
	if len(nets.Networks) != 1 {
		t.Fatalf("network private: %+v", nets)
	}
	private := nets.Networks[0].ID
	r := tr.Do(t, http.MethodPost, "/networking/v2.0/networks", admin, map[string]any{"network": map[string]any{"name": "other-net", "shared": true}})
	if r.Status != http.StatusCreated {
		t.Fatalf("create network: %s", r)
	}
	var other struct{ Network struct{ ID string } }
	r.JSON(t, &other)
	if r := tr.Do(t, http.MethodPost, "/v2.1/os-keypairs", demo, map[string]any{"keypair": map[string]any{"name": "mine"}}); r.Status != http.StatusOK {
		t.Fatalf("create keypair: %s", r)
	}
	if r := tr.Do(t, http.MethodPost, "/v2.1/flavors", admin, map[string]any{"flavor": map[string]any{
		"name": "secret", "id": "secret", "ram": 512, "vcpus": 1, "disk": 1, "os-flavor-access:is_public": false}}); r.Status != http.StatusOK {
		t.Fatalf("create private flavor: %s", r)
	}

	good := map[string]any{"name": "ok", "flavorRef": "1", "imageRef": imageID, "key_name": "mine", "availability_zone": "nova",
		"networks": []map[string]any{{"uuid": private}}}
	id := create(t, tr, demo, good)
	waitStatus(t, tr.Compute(demo), id, "ACTIVE")

	before := len(listAll(t, tr, admin, "?all_tenants=1"))
	for _, c := range []struct {
		change map[string]any
		want   string
	}{
		{map[string]any{"imageRef": "11111111-2222-3333-4444-555555555555"}, "Image 11111111-2222-3333-4444-555555555555 could not be found."},
		{map[string]any{"key_name": "theirs"}, "Invalid key_name provided."},
		{map[string]any{"flavorRef": "secret"}, "Flavor secret could not be found."},
		{map[string]any{"networks": []map[string]any{{"uuid": "11111111-2222-3333-4444-555555555555"}}}, "could not be found"},
		{map[string]any{"networks": []map[string]any{{"uuid": other.Network.ID}}}, "requires a subnet in order to boot instances on"},
		{map[string]any{"networks": []map[string]any{{"port": "11111111-2222-3333-4444-555555555555"}}}, "Port id 11111111-2222-3333-4444-555555555555 could not be found."},
		{map[string]any{"networks": []map[string]any{{}}}, "needs a uuid or a port"},
		{map[string]any{"availability_zone": "mars"}, "The requested availability zone is not available"},
		{map[string]any{"networks": []map[string]any{{"uuid": private, "fixed_ip": "fd00::42"}}}, "Fixed IP fd00::42 is not a valid ip address for network"},
		{map[string]any{"networks": []map[string]any{{"uuid": private, "fixed_ip": "10.0.0.42"}}, "max_count": 2}, "max_count cannot be greater than 1 if an fixed_ip is specified"},
	} {
		body := map[string]any{}
		for k, v := range good {
			body[k] = v
		}
		for k, v := range c.change {
			body[k] = v
		}
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": body})
		if msg := testtree.Fault(t, r, http.StatusBadRequest); !strings.Contains(msg, c.want) {
			t.Errorf("create with %v: %q, want it to say %q", c.change, msg, c.want)
		}
	}
	// The admin may boot the private flavor.
	adminBody := map[string]any{"name": "adm", "flavorRef": "secret", "imageRef": imageID}
	waitStatus(t, tr.Compute(admin), create(t, tr, admin, adminBody), "ACTIVE")
	if after := len(listAll(t, tr, admin, "?all_tenants=1")); after != before+1 {
		t.Errorf("refused creates left servers: %d before, %d after (one admin boot)", before, after)
	}
	// The image boot written as a block device mapping (as terraform and
	// the openstack CLI may send it) is the one mapping served.
	bdmBody := map[string]any{"name": "bdm", "flavorRef": "1", "imageRef": imageID, "block_device_mapping_v2": []map[string]any{
		{"source_type": "image", "destination_type": "local", "boot_index": "0", "uuid": imageID, "delete_on_termination": true}}}
	waitStatus(t, tr.Compute(demo), create(t, tr, demo, bdmBody), "ACTIVE")
}

// TestBadCreate: creates with bad input are refused with a fault naming
// the problem, and create nothing.
func TestBadCreate(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	// server builds a valid server with changes; a nil value removes a field.
	server := func(changes map[string]any) map[string]any {
		s := map[string]any{"name": "bad", "flavorRef": "1", "imageRef": imageID}
		for k, v := range changes {
			if v == nil {
				delete(s, k)
			} else {
				s[k] = v
			}
		}
		return map[string]any{"server": s}
	}
	// bdm is the image boot as a block device mapping, with changes; a nil
	// value removes a field.
	bdm := func(changes map[string]any) map[string]any {
		m := map[string]any{"source_type": "image", "destination_type": "local", "boot_index": 0, "uuid": imageID}
		for k, v := range changes {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	const otherUUID = "11111111-2222-3333-4444-555555555555"
	cases := []struct {
		name   string
		body   any
		status int
		// want are words the message must hold, naming the problem.
		want []string
	}{
		{"missing name", server(map[string]any{"name": nil}), 400, []string{"'name' is a required property"}},
		{"empty name", server(map[string]any{"name": ""}), 400, []string{"name"}},
		{"blank name", server(map[string]any{"name": "   "}), 400, []string{"name"}},
		{"name with leading space", server(map[string]any{"name": " web"}), 400, []string{"name"}},
		{"name too long", server(map[string]any{"name": strings.Repeat("n", 256)}), 400, []string{"name"}},
		{"name not a string", server(map[string]any{"name": 7}), 400, []string{"name"}},
		{"missing flavorRef", server(map[string]any{"flavorRef": nil}), 400, []string{"'flavorRef' is a required property"}},
		{"accessIPv4 short", server(map[string]any{"accessIPv4": "1.2.3"}), 400, []string{"Invalid input for field/attribute accessIPv4. Value: 1.2.3. '1.2.3' is not a 'ipv4'"}},
		{"accessIPv4 out of range", server(map[string]any{"accessIPv4": "300.1.2.3"}), 400, []string{"'300.1.2.3' is not a 'ipv4'"}},
		{"accessIPv4 leading zero", server(map[string]any{"accessIPv4": "01.2.3.4"}), 400, []string{"'01.2.3.4' is not a 'ipv4'"}},
		{"accessIPv4 an IPv6", server(map[string]any{"accessIPv4": "2001:db8::1"}), 400, []string{"'2001:db8::1' is not a 'ipv4'"}},
		{"accessIPv4 a number", server(map[string]any{"accessIPv4": 7}), 400, []string{"accessIPv4", "is not of type 'string'"}},
		{"accessIPv6 an IPv4", server(map[string]any{"accessIPv6": "192.0.2.1"}), 400, []string{"'192.0.2.1' is not a 'ipv6'"}},
		{"accessIPv6 with a zone", server(map[string]any{"accessIPv6": "fe80::1%eth0"}), 400, []string{"accessIPv6"}},
		{"accessIPv6 null", server(map[string]any{"accessIPv6": []any{}}), 400, []string{"accessIPv6", "is not of type 'string'"}},
		{"empty flavorRef", server(map[string]any{"flavorRef": ""}), 400, []string{"flavorRef"}},
		{"flavorRef an object", server(map[string]any{"flavorRef": map[string]any{}}), 400, []string{"flavorRef"}},
		{"no such flavor", server(map[string]any{"flavorRef": "999"}), 400, []string{"Flavor 999 could not be found"}},
		{"no such flavor by number", server(map[string]any{"flavorRef": 999}), 400, []string{"Flavor 999 could not be found"}},
		{"missing imageRef", server(map[string]any{"imageRef": nil}), 400, []string{"Missing imageRef attribute"}},
		{"empty imageRef", server(map[string]any{"imageRef": ""}), 400, []string{"Missing imageRef attribute"}},
		{"malformed imageRef", server(map[string]any{"imageRef": "not-an-image"}), 400, []string{"imageRef", "not-an-image"}},
		{"imageRef not a string", server(map[string]any{"imageRef": 5}), 400, []string{"imageRef"}},
		{"unknown field", server(map[string]any{"bogus": 1}), 400, []string{"Additional properties are not allowed", "'bogus'"}},
		{"unknown top-level key", map[string]any{"server": server(nil)["server"], "extra": 1}, 400, []string{"'extra'"}},
		{"min_count > max_count", server(map[string]any{"min_count": 3, "max_count": 2}), 400, []string{"min_count must be <= max_count"}},
		{"min_count 0", server(map[string]any{"min_count": 0}), 400, []string{"min_count", "minimum of 1"}},
		{"max_count 0", server(map[string]any{"max_count": 0}), 400, []string{"max_count", "minimum of 1"}},
		{"min_count not a number", server(map[string]any{"min_count": "two"}), 400, []string{"min_count"}},
		{"max_count too large", server(map[string]any{"max_count": 100000}), 400, []string{"max_count"}},
		{"user_data not base64", server(map[string]any{"user_data": "not base64!"}), 400, []string{"user_data", "base64"}},
		{"user_data too long", server(map[string]any{"user_data": base64.StdEncoding.EncodeToString(make([]byte, 49152+3))}), 400, []string{"user_data", "too long"}},
		{"metadata value not a string", server(map[string]any{"metadata": map[string]any{"k": 1}}), 400, []string{"metadata"}},
		{"networks auto at 2.1", server(map[string]any{"networks": "auto"}), 400, []string{"networks"}},
		{"return_reservation_id not a boolean", server(map[string]any{"return_reservation_id": "maybe"}), 400, []string{"return_reservation_id"}},
		{"scheduler hints not an object", map[string]any{"server": server(nil)["server"], "os:scheduler_hints": []int{1}}, 400, []string{"os:scheduler_hints"}},
		{"server not an object", map[string]any{"server": "web"}, 400, []string{"server", "object"}},
		{"no server", map[string]any{"servers": server(nil)["server"]}, 400, []string{"'server' is a required property"}},
		{"non-JSON body", "name=web&flavorRef=1", 400, []string{"Malformed request body"}},
		{"truncated JSON", `{"server": {"name": "web"`, 400, []string{"Malformed request body"}},
		{"JSON array", `[{"server": {"name": "web", "flavorRef": "1", "imageRef": "` + imageID + `"}}]`, 400, []string{"Malformed request body"}},
		{"JSON null", "null", 400, []string{"Malformed request body"}},
		{"empty body", "", 400, []string{"Malformed request body"}},
		{"body too large", server(map[string]any{"metadata": map[string]string{"k": strings.Repeat("x", 120<<10)}}), 413, []string{"too large"}},
		// Nova's parameter_types.name: printable characters only.
		{"NUL in name", server(map[string]any{"name": "web\x00one"}), 400, []string{"'name'", "printable characters"}},
		{"tab in name", server(map[string]any{"name": "web\tone"}), 400, []string{"'name'", "printable characters"}},
		// parameter_types.metadata: keys of 1 to 255 of [a-zA-Z0-9-_:. ].
		{"metadata key too long", server(map[string]any{"metadata": map[string]string{strings.Repeat("k", 256): "v"}}), 400, []string{"metadata", "does not match"}},
		{"metadata key with a slash", server(map[string]any{"metadata": map[string]string{"a/b": "v"}}), 400, []string{"metadata", "'a/b'"}},
		{"metadata value too long", server(map[string]any{"metadata": map[string]string{"k": strings.Repeat("v", 256)}}), 400, []string{"k", "too long"}},
		// networks: each entry as Nova's schema and _get_requested_networks.
		{"fixed_ip not an address", server(map[string]any{"networks": []map[string]any{{"uuid": otherUUID, "fixed_ip": "10.0.0.300"}}}), 400, []string{"fixed_ip", "10.0.0.300"}},
		{"fixed_ip not a string", server(map[string]any{"networks": []map[string]any{{"uuid": otherUUID, "fixed_ip": 10}}}), 400, []string{"fixed_ip", "'string'"}},
		{"fixed_ip with a prefix", server(map[string]any{"networks": []map[string]any{{"uuid": otherUUID, "fixed_ip": "10.0.0.5/8"}}}), 400, []string{"fixed_ip"}},
		{"port not a uuid", server(map[string]any{"networks": []map[string]any{{"port": "my-port"}}}), 400, []string{"port", "'uuid'"}},
		{"port with a fixed_ip", server(map[string]any{"networks": []map[string]any{{"port": otherUUID, "fixed_ip": "10.0.0.5"}}}), 400, []string{"cannot be used with port"}},
		{"port twice", server(map[string]any{"networks": []map[string]any{{"port": otherUUID}, {"port": otherUUID}}}), 400, []string{"specified twice"}},
		{"network uuid not a uuid", server(map[string]any{"networks": []map[string]any{{"uuid": "private"}}}), 400, []string{"network uuid is not in proper format (private)"}},
		{"network uuid not a string", server(map[string]any{"networks": []map[string]any{{"uuid": 7}}}), 400, []string{"uuid", "'string'"}},
		{"network entry not an object", server(map[string]any{"networks": []any{"private"}}), 400, []string{"networks", "'object'"}},
		{"network tag at 2.1", server(map[string]any{"networks": []map[string]any{{"uuid": otherUUID, "tag": "nic1"}}}), 400, []string{"'tag' was unexpected"}},
		// block_device_mapping_v2: Nova's schema, then BlockDeviceDict.from_api,
		// then what is served here and the copies of volumes, snapshots and
		// images (none of these exists).
		{"bdm not a list", server(map[string]any{"block_device_mapping_v2": "disk"}), 400, []string{"block_device_mapping_v2", "'array'"}},
		{"bdm entry a string", server(map[string]any{"block_device_mapping_v2": []any{"disk"}}), 400, []string{"block_device_mapping_v2", "'object'"}},
		{"bdm unknown field", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"size": 1})}}), 400, []string{"'size' was unexpected"}},
		{"bdm volume_size 0", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"volume_size": 0})}}), 400, []string{"volume_size", "minimum of 1"}},
		{"bdm volume_size too large", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"volume_size": int64(1) << 40})}}), 400, []string{"volume_size", "maximum of 2147483647"}},
		{"bdm volume_size a word", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"volume_size": "ten"})}}), 400, []string{"volume_size", "does not match"}},
		{"bdm volume_size a fraction", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"volume_size": 1.5})}}), 400, []string{"volume_size", "'integer'"}},
		{"bdm boot_index a fraction", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"boot_index": 0.5})}}), 400, []string{"boot_index"}},
		{"bdm boot_index an object", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"boot_index": map[string]any{}})}}), 400, []string{"boot_index"}},
		{"bdm boot_index a word", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"boot_index": "first"})}}), 400, []string{"boot_index", "does not match"}},
		{"bdm source_type unknown", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"source_type": "tape"})}}), 400, []string{"source_type", "is not one of"}},
		{"bdm destination_type unknown", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"destination_type": "cloud"})}}), 400, []string{"destination_type", "is not one of"}},
		{"bdm device_name with a space", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"device_name": "vd a"})}}), 400, []string{"device_name", "does not match"}},
		{"bdm device_name an object", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"device_name": map[string]any{"x": 1}})}}), 400, []string{"device_name", "'string'"}},
		{"bdm delete_on_termination maybe", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"delete_on_termination": "maybe"})}}), 400, []string{"delete_on_termination"}},
		{"bdm uuid an object", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"uuid": map[string]any{}})}}), 400, []string{"uuid", "'string'"}},
		{"bdm volume_id not a uuid", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"volume_id": "vol"})}}), 400, []string{"volume_id", "'uuid'"}},
		{"bdm disk_bus too long", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"disk_bus": strings.Repeat("b", 256)})}}), 400, []string{"disk_bus", "too long"}},
		{"bdm tag at 2.1", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"tag": "root"})}}), 400, []string{"'tag' was unexpected"}},
		{"bdm volume_type at 2.1", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"volume_type": "ssd"})}}), 400, []string{"'volume_type' was unexpected"}},
		{"bdm missing uuid", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"uuid": nil})}}), 400, []string{"Missing device UUID"}},
		{"bdm blank with a uuid", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"source_type": "blank"})}}), 400, []string{"Invalid device UUID"}},
		{"bdm image to local not first", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"boot_index": 1})}}), 400, []string{"Mapping image to local is not supported"}},
		{"bdm volume", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"source_type": "volume", "destination_type": "volume", "uuid": otherUUID})}}), 400, []string{"Volume " + otherUUID + " could not be found."}},
		{"bdm snapshot", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"source_type": "snapshot", "destination_type": "volume", "uuid": otherUUID})}}), 400, []string{"Block Device Mapping is Invalid: failed to get snapshot " + otherUUID + "."}},
		{"bdm image to a volume", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"destination_type": "volume", "volume_size": 1, "uuid": otherUUID})}}), 400, []string{"Block Device Mapping is Invalid: failed to get image " + otherUUID + "."}},
		{"bdm blank local disk", server(map[string]any{"block_device_mapping_v2": []any{bdm(nil), bdm(map[string]any{"source_type": "blank", "uuid": nil, "boot_index": -1, "guest_format": "swap", "volume_size": 1})}}), 400, []string{"blank local disk"}},
		{"bdm another image", server(map[string]any{"block_device_mapping_v2": []any{bdm(map[string]any{"uuid": otherUUID})}}), 400, []string{"is not the imageRef"}},
		{"legacy bdm of no volume", server(map[string]any{"block_device_mapping": []any{map[string]any{"volume_id": otherUUID, "device_name": "vdb"}}}), 400, []string{"Volume " + otherUUID + " could not be found."}},
		{"legacy bdm volume_size negative", server(map[string]any{"block_device_mapping": []any{map[string]any{"volume_id": otherUUID, "volume_size": -1}}}), 400, []string{"volume_size"}},
		{"legacy bdm with v2 fields", server(map[string]any{"block_device_mapping": []any{map[string]any{"source_type": "image"}}}), 400, []string{"'source_type' was unexpected"}},
		{"both bdm syntaxes", server(map[string]any{"block_device_mapping": []any{map[string]any{"volume_id": otherUUID}}, "block_device_mapping_v2": []any{bdm(nil)}}), 400, []string{"different block_device_mapping syntaxes"}},
	}
	before := len(listAll(t, tr, admin, "?all_tenants=1"))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, c.body)
			msg := testtree.Fault(t, r, c.status)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not hold %q", msg, w)
				}
			}
		})
	}
	// The microversions that change the schema of networks and of
	// block_device_mapping_v2.
	for _, c := range []struct {
		version string
		change  map[string]any
		want    []string
	}{
		{"2.37", map[string]any{"networks": []map[string]any{{"uuid": "private"}}}, []string{"uuid", "'private' is not a 'uuid'"}},
		{"2.37", map[string]any{"networks": []map[string]any{{"uuid": otherUUID, "tag": "nic1"}}}, []string{"'tag' was unexpected"}},
		{"2.42", map[string]any{"networks": []map[string]any{{"uuid": otherUUID, "tag": "a/b"}}}, []string{"tag", "does not match"}},
		{"2.33", map[string]any{"networks": "none", "block_device_mapping_v2": []any{bdm(map[string]any{"tag": "root"})}}, []string{"'tag' was unexpected"}},
		{"2.42", map[string]any{"networks": "none", "block_device_mapping_v2": []any{bdm(map[string]any{"tag": strings.Repeat("t", 61)})}}, []string{"tag", "too long"}},
		{"2.66", map[string]any{"networks": "none", "block_device_mapping_v2": []any{bdm(map[string]any{"volume_type": "ssd"})}}, []string{"'volume_type' was unexpected"}},
		{"2.67", map[string]any{"networks": "none", "block_device_mapping_v2": []any{bdm(map[string]any{"volume_type": "ssd"})}}, []string{"volume_type with destination_type=local is not supported"}},
	} {
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, server(c.change), atVersion(c.version)...)
		msg := testtree.Fault(t, r, http.StatusBadRequest)
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s %v: message %q does not hold %q", c.version, c.change, msg, w)
			}
		}
	}
	// gophercloud sees the same.
	_, err := servers.Create(ctxT(t), tr.Compute(demo), servers.CreateOpts{Name: "bad", FlavorRef: "999", ImageRef: imageID}, nil).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Errorf("gophercloud create with a missing flavor: %v, want a 400", err)
	}
	if after := len(listAll(t, tr, admin, "?all_tenants=1")); after != before {
		t.Errorf("bad requests created servers: %d before, %d after", before, after)
	}
}

// TestCellSchedulerHints: an admin's target_cell forces the cell, a
// member's is ignored; same_cell and different_cell follow the named
// instances' cells; bad hints are 400 and create nothing.
func TestCellSchedulerHints(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 3, HostsPerCell: 2})
	adminSC := tr.Compute(admin)
	boot := func(token string, hints map[string]any) string {
		t.Helper()
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", token, map[string]any{
			"server":             map[string]any{"name": "h", "flavorRef": "1", "imageRef": imageID},
			"os:scheduler_hints": hints,
		})
		if r.Status != http.StatusAccepted {
			t.Fatalf("create with hints %v: %s", hints, r)
		}
		var out struct {
			Server struct{ ID string } `json:"server"`
		}
		r.JSON(t, &out)
		return out.Server.ID
	}
	cellOf := func(id string) string {
		t.Helper()
		waitStatus(t, adminSC, id, "ACTIVE")
		// Hosts are named after their cell: cell2-host001.
		var body struct {
			Server struct {
				Host string `json:"OS-EXT-SRV-ATTR:host"`
			} `json:"server"`
		}
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil).JSON(t, &body)
		return "api!" + strings.SplitN(body.Server.Host, "-", 2)[0]
	}

	for _, target := range []string{"api!cell3", "api!cell1", "api!cell3"} {
		id := boot(admin, map[string]any{"target_cell": target})
		if got := cellOf(id); got != target {
			t.Errorf("admin target_cell %s: built in %s", target, got)
		}
	}
	anchor := boot(admin, map[string]any{"target_cell": "api!cell2"})
	anchorCell := cellOf(anchor)
	same := boot(admin, map[string]any{"same_cell": anchor})
	if got := cellOf(same); got != anchorCell {
		t.Errorf("same_cell as %s (in %s): built in %s", anchor, anchorCell, got)
	}
	for range 3 {
		diff := boot(admin, map[string]any{"different_cell": []string{anchor}})
		if got := cellOf(diff); got == anchorCell {
			t.Errorf("different_cell from %s: built in the same cell %s", anchor, got)
		}
	}
	// A member's target_cell is ignored, not refused (as in cells v1).
	if id := boot(demo, map[string]any{"target_cell": "api!nope"}); id == "" {
		t.Error("a member's target_cell hint was refused")
	}

	before := len(listAll(t, tr, admin, "?all_tenants=1"))
	for _, hints := range []map[string]any{
		{"target_cell": "api!nope!x y"},
		{"target_cell": "other!cell1"},
		{"target_cell": []string{"api!cell1", "api!cell2"}},
		{"same_cell": "00000000-0000-0000-0000-000000000000"},
		{"different_cell": []string{"nonsense"}},
	} {
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", admin, map[string]any{
			"server":             map[string]any{"name": "bad", "flavorRef": "1", "imageRef": imageID},
			"os:scheduler_hints": hints,
		})
		if msg := testtree.Fault(t, r, http.StatusBadRequest); !strings.Contains(msg, "os:scheduler_hints") {
			t.Errorf("hints %v: fault %q does not name the hints", hints, msg)
		}
	}
	if after := len(listAll(t, tr, admin, "?all_tenants=1")); after != before {
		t.Errorf("bad hints created servers: %d before, %d after", before, after)
	}
}

// TestTrustedImageCertificates: 2.63's trusted_image_certificates are
// checked as Nova's schema does, refused since no driver here verifies
// signatures, and shown as null.
func TestTrustedImageCertificates(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 2})
	at := func(v string) []string { return []string{"X-OpenStack-Nova-API-Version", v} }
	id := create(t, tr, demo, map[string]any{"name": "mv69", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, tr.Compute(demo), id, "ACTIVE")

	server := func(certs any) map[string]any {
		return map[string]any{"server": map[string]any{"name": "c", "flavorRef": "1", "imageRef": imageID, "networks": "auto",
			"trusted_image_certificates": certs}}
	}
	for _, c := range []struct {
		ver   string
		certs any
		msg   string
	}{
		{"2.62", []string{"a"}, "('trusted_image_certificates' was unexpected)"},
		{"2.63", []string{}, "Value: []. [] should be non-empty"},
		{"2.63", []string{"a", "a"}, "['a', 'a'] has non-unique elements"},
		{"2.63", "x", "'x' is not of type 'array', 'null'"},
		{"2.63", []any{1}, "Invalid input for field/attribute 0. Value: 1. 1 is not of type 'string'"},
		{"2.63", []string{"cert-1"}, "Image certificate validation is not supported"},
	} {
		r := tr.Do(t, "POST", "/v2.1/servers", demo, server(c.certs), at(c.ver)...)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("create with certificates %v at %s: %d %s, want 400 %q", c.certs, c.ver, r.Status, r.Body, c.msg)
		}
	}
	if r := tr.Do(t, "POST", "/v2.1/servers", demo, server(nil), at("2.63")...); r.Status != http.StatusAccepted {
		t.Errorf("create with null certificates: %d %s", r.Status, r.Body)
	}
	var shown struct {
		Server map[string]any `json:"server"`
	}
	tr.Do(t, "GET", "/v2.1/servers/"+id, demo, nil, at("2.63")...).JSON(t, &shown)
	if v, ok := shown.Server["trusted_image_certificates"]; !ok || v != nil {
		t.Errorf("trusted_image_certificates at 2.63: %v (present %v)", v, ok)
	}
}

// TestCreateStoresAccessIPs: accessIPv4 and accessIPv6 given on create are
// stored and shown (Nova's view: "" when none), and filter the list.
func TestCreateStoresAccessIPs(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
		"name": "reachable", "flavorRef": "1", "imageRef": imageID, "accessIPv4": "192.0.2.10", "accessIPv6": "2001:db8::10"}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("create: %s", r)
	}
	var created struct{ Server struct{ ID string } }
	r.JSON(t, &created)
	other := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{"name": "plain", "flavorRef": "1", "imageRef": imageID}})
	if other.Status != http.StatusAccepted {
		t.Fatalf("create: %s", other)
	}
	var shown struct {
		Server struct {
			V4 *string `json:"accessIPv4"`
			V6 *string `json:"accessIPv6"`
		}
	}
	tr.Do(t, http.MethodGet, "/v2.1/servers/"+created.Server.ID, demo, nil).JSON(t, &shown)
	if shown.Server.V4 == nil || *shown.Server.V4 != "192.0.2.10" || shown.Server.V6 == nil || *shown.Server.V6 != "2001:db8::10" {
		t.Errorf("show: accessIPv4 %v, accessIPv6 %v", shown.Server.V4, shown.Server.V6)
	}
	var list struct {
		Servers []struct {
			ID string `json:"id"`
			V4 string `json:"accessIPv4"`
		}
	}
	tr.Do(t, http.MethodGet, "/v2.1/servers/detail?all_tenants=1&access_ip_v4=192.0.2.10", admin, nil).JSON(t, &list)
	if len(list.Servers) != 1 || list.Servers[0].ID != created.Server.ID || list.Servers[0].V4 != "192.0.2.10" {
		t.Errorf("list by access_ip_v4: %+v", list.Servers)
	}
}
