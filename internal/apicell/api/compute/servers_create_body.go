package compute

// The body of POST /servers: reading it and checking it against Nova's
// schema for the request's microversion, into a createRequest. Nothing
// here reads the database or the handler: what the body names is checked
// against what exists in servers_create.go (checkCreateRefs).

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// maxUserData is Nova's limit on base64 user_data (65535 bytes).
const maxUserData = 65535

// maxCount bounds a multi-create.
const maxCount = 1000

// createFields are the "server" fields the 2.1 create schema allows.
var createFields = []string{
	"name", "imageRef", "flavorRef", "adminPass", "metadata", "networks", "personality", "key_name", "user_data",
	"availability_zone", "min_count", "max_count", "return_reservation_id", "security_groups", "config_drive",
	"description", "tags",
	"accessIPv4", "accessIPv6", "OS-DCF:diskConfig", "block_device_mapping", "block_device_mapping_v2",
	"trusted_image_certificates", "host", "hypervisor_hostname",
}

type createBody struct {
	Name              *string           `json:"name"`
	ImageRef          *string           `json:"imageRef"`
	FlavorRef         json.RawMessage   `json:"flavorRef"`
	AdminPass         *string           `json:"adminPass"`
	Metadata          json.RawMessage   `json:"metadata"`
	Networks          json.RawMessage   `json:"networks"`
	KeyName           *string           `json:"key_name"`
	UserData          *string           `json:"user_data"`
	AvailabilityZone  *string           `json:"availability_zone"`
	MinCount          json.RawMessage   `json:"min_count"`
	MaxCount          json.RawMessage   `json:"max_count"`
	ReturnReservation json.RawMessage   `json:"return_reservation_id"`
	Description       json.RawMessage   `json:"description"`
	Tags              json.RawMessage   `json:"tags"`
	AccessIPv4        json.RawMessage   `json:"accessIPv4"`
	AccessIPv6        json.RawMessage   `json:"accessIPv6"`
	DiskConfig        json.RawMessage   `json:"OS-DCF:diskConfig"`
	SecurityGroups    []json.RawMessage `json:"security_groups"`
	// BlockDeviceMapping and BlockDeviceMappingV2 are checked in
	// servers_create_bdm.go.
	BlockDeviceMapping   json.RawMessage `json:"block_device_mapping"`
	BlockDeviceMappingV2 json.RawMessage `json:"block_device_mapping_v2"`
	// Host and HypervisorHostname are a requested destination (2.74).
	Host               json.RawMessage `json:"host"`
	HypervisorHostname json.RawMessage `json:"hypervisor_hostname"`
}

// readCreate reads a create request's body and checks it against Nova's
// schema (validateCreate).
func readCreate(w http.ResponseWriter, r *http.Request) (*createRequest, error) {
	top, raw, err := decodeBody(w, r, "server")
	if err != nil {
		return nil, err
	}
	for k := range top {
		if k != "server" && k != "os:scheduler_hints" && k != "OS-SCH-HNT:scheduler_hints" {
			return nil, bad("Invalid input for field/attribute. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, bad("Invalid input for field/attribute server. Value: %s. %s is not of type 'object'", raw, raw)
	}
	for k := range fields {
		// 2.57 removed personality (file injection).
		if !slices.Contains(createFields, k) || (k == "personality" && atLeast(r, 57)) ||
			(k == "trusted_image_certificates" && !atLeast(r, 63)) ||
			((k == "host" || k == "hypervisor_hostname") && !atLeast(r, 74)) {
			return nil, bad("Invalid input for field/attribute server. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	if err := checkTrustedCerts(fields["trusted_image_certificates"]); err != nil {
		return nil, err
	}
	var body createBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, bad("Invalid input for field/attribute server: %v", jsonFieldError(err))
	}
	return validateCreate(apiVersion(r.Context()), &body, top)
}

type createRequest struct {
	name, imageRef, flavorRef, keyName, userData, az, adminPass string
	metadata                                                    map[string]string
	count                                                       int
	// minCount is the fewest instances the request accepts (min_count).
	minCount          int
	returnReservation bool
	hints             map[string][]string
	networks          []requestedNetwork
	// nics are the networks checked (checkNetworks).
	nics      []bootNIC
	noNetwork bool
	// description is the server's description (2.19; before, Nova stores
	// the name); tags are given from 2.52.
	description *string
	tags        []string
	// accessIPv4 and accessIPv6 are the access addresses the user gives
	// (Nova stores them and shows them; nothing routes to them).
	accessIPv4, accessIPv6 string
	// diskConfig is OS-DCF:diskConfig ("" when not given: the image's
	// auto_disk_config property decides, as in Nova).
	diskConfig string
	// autoDiskConfig is the server's OS-DCF:diskConfig, once the image is
	// known.
	autoDiskConfig bool
	// securityGroups are the security groups asked for, by name or id,
	// each once, in the order given (nil: none given, the project's
	// default); securityGroupsBody is the request's list as given, which
	// the create's answer shows; securityGroupIDs are what they resolve to.
	securityGroups     []string
	securityGroupsBody []json.RawMessage
	securityGroupIDs   []string
	// forcedHost and forcedNode are the host (by its name in its cell)
	// and node an admin's availability_zone forces (createZone);
	// forcedCell is the host's cell, "" when the API cell has no mapping
	// of the host.
	forcedHost, forcedNode, forcedCell string
	// requestedHost and requestedNode are an admin's requested
	// destination (2.74's host and hypervisor_hostname), as given until
	// resolveDestination names them in their cell, requestedCell.
	requestedHost, requestedNode, requestedCell string
	// imageProps are the image's properties, for the build.
	imageProps map[string]string
	// bdms are the block_device_mapping_v2 entries as from_api made them
	// (servers_create_bdm.go); volumeBacked: the boot device (boot_index
	// 0) is a volume, and the server has no image of its own.
	bdms         []bdmRequest
	volumeBacked bool
	// bdmV2: the request gave block_device_mapping_v2 (Nova's legacy_bdm
	// false); legacyBDM: it gave block_device_mapping (v1), whose entries
	// in bdms have their boot index once the root device name is known.
	bdmV2, legacyBDM bool
	// rootDeviceName is the root device name of an image boot
	// (createRootDeviceName); imageMinDisk is the image's min_disk (GiB).
	rootDeviceName string
	imageMinDisk   int64
	// vols are the volumes the mappings take or make, resolved against
	// the copies (servers_create_volumes.go).
	vols *bootVolumes
}

// validateCreate checks a create request as Nova's 2.1 schema does, one
// group of fields after the other, in Nova's order (the first error is
// the answer).
func validateCreate(ver Version, b *createBody, top map[string]json.RawMessage) (*createRequest, error) {
	out := &createRequest{count: 1}
	for _, check := range []func(Version, *createBody, *createRequest) error{
		createName, createFlavorRef, createImageRef, createBlockDevices, createDescriptionAndTags,
		createNamedFields, createDestination, createAccessIPs, createMetadata, createNetworks, createCounts, createNetworkCounts, createSecurityGroups,
	} {
		if err := check(ver, b, out); err != nil {
			return nil, err
		}
	}
	hints, err := parseHints(top)
	if err != nil {
		return nil, err
	}
	out.hints = hints
	return out, nil
}

// createName checks name: Nova's 2.1 schema (parameter_types.name), 1 to
// 255 printable characters (no NUL or other control character), not
// starting or ending with whitespace.
func createName(_ Version, b *createBody, out *createRequest) error {
	if b.Name == nil {
		return bad("Invalid input for field/attribute server. Value: None. 'name' is a required property")
	}
	if err := checkName("name", *b.Name); err != nil {
		return err
	}
	out.name = *b.Name
	return nil
}

// createFlavorRef checks flavorRef: an id (string or positive integer),
// or a URL that names the id last, as Nova accepts.
func createFlavorRef(_ Version, b *createBody, out *createRequest) error {
	if len(b.FlavorRef) == 0 {
		return bad("Invalid input for field/attribute server. Value: None. 'flavorRef' is a required property")
	}
	var fs string
	var fi int64
	switch {
	case json.Unmarshal(b.FlavorRef, &fs) == nil && strings.TrimSpace(fs) != "":
		out.flavorRef = fs
	case json.Unmarshal(b.FlavorRef, &fi) == nil && fi > 0:
		out.flavorRef = strconv.FormatInt(fi, 10)
	default:
		return bad("Invalid input for field/attribute flavorRef. Value: %s. %s is not valid under any of the given schemas", b.FlavorRef, b.FlavorRef)
	}
	if i := strings.LastIndex(out.flavorRef, "/"); i >= 0 {
		out.flavorRef = out.flavorRef[i+1:]
	}
	return nil
}

// createImageRef checks imageRef (a UUID, or a URL ending in one; Nova's
// image_id_or_empty_string), and takes adminPass. None, or "", is a boot
// from volume, which createBlockDevices checks (Nova's
// _image_from_req_data: "Missing imageRef attribute" without mappings).
func createImageRef(_ Version, b *createBody, out *createRequest) error {
	if b.AdminPass != nil {
		out.adminPass = *b.AdminPass
	}
	if b.ImageRef == nil || *b.ImageRef == "" {
		return nil
	}
	img := *b.ImageRef
	if i := strings.LastIndex(img, "/"); i >= 0 {
		img = img[i+1:]
	}
	if !uuidRE.MatchString(img) {
		return bad("Invalid input for field/attribute imageRef. Value: %s. '%s' is not a 'uuid'", *b.ImageRef, *b.ImageRef)
	}
	out.imageRef = strings.ToLower(img)
	return nil
}

// createDescriptionAndTags checks description (2.19; before, Nova stores
// the name) and tags (2.52).
func createDescriptionAndTags(ver Version, b *createBody, out *createRequest) error {
	switch {
	case len(b.Description) > 0 && !ver.AtLeast(Version{2, 19}):
		return bad("Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)")
	case len(b.Description) > 0 && !isNull(b.Description):
		var d string
		if err := json.Unmarshal(b.Description, &d); err != nil || len(d) > 255 {
			return bad("Invalid input for field/attribute description. Value: %s. must be a string of at most 255 characters", b.Description)
		}
		out.description = &d
	case !ver.AtLeast(Version{2, 19}):
		out.description = &out.name
	}
	if len(b.Tags) > 0 {
		if !ver.AtLeast(Version{2, 52}) {
			return bad("Invalid input for field/attribute server. Additional properties are not allowed ('tags' was unexpected)")
		}
		tags, err := parseCreateTags(b.Tags)
		if err != nil {
			return err
		}
		out.tags = tags
	}
	return nil
}

// createNamedFields checks key_name, availability_zone and user_data.
func createNamedFields(_ Version, b *createBody, out *createRequest) error {
	if b.KeyName != nil {
		if *b.KeyName == "" || len(*b.KeyName) > 255 {
			return bad("Invalid input for field/attribute key_name. Value: %s. must be 1 to 255 characters", *b.KeyName)
		}
		out.keyName = *b.KeyName
	}
	if b.AvailabilityZone != nil {
		if *b.AvailabilityZone == "" || len(*b.AvailabilityZone) > 255 {
			return bad("Invalid input for field/attribute availability_zone. Value: %s. must be 1 to 255 characters", *b.AvailabilityZone)
		}
		out.az = *b.AvailabilityZone
	}
	if b.UserData != nil {
		if err := checkUserData(*b.UserData); err != nil {
			return err
		}
		out.userData = *b.UserData
	}
	return nil
}

// createDestination checks host and hypervisor_hostname (2.74, Nova's
// parameter_types.fqdn; a host may be named as os-services names it,
// "PATH@HOST", and so may a node). readCreate refuses them below 2.74.
func createDestination(_ Version, b *createBody, out *createRequest) error {
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		to   *string
	}{{"host", b.Host, &out.requestedHost}, {"hypervisor_hostname", b.HypervisorHostname, &out.requestedNode}} {
		if len(f.raw) == 0 {
			continue
		}
		// A number is named as the body gives it (7, not 7.0).
		var v any
		dec := json.NewDecoder(strings.NewReader(string(f.raw)))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return invalid(f.name, string(f.raw), "is not valid JSON")
		}
		if err := checkHostName(f.name, v); err != nil {
			return err
		}
		*f.to = v.(string)
	}
	return nil
}

// checkUserData checks user_data as Nova's create and rebuild schemas do: base64, at
// most 65535 characters.
func checkUserData(s string) error {
	if len(s) > maxUserData {
		return bad("Invalid input for field/attribute user_data. Value: (%d bytes). is too long (at most %d)", len(s), maxUserData)
	}
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		return bad("Invalid input for field/attribute user_data. Value: %s. is not a 'base64'", abbreviate(s))
	}
	return nil
}

// createAccessIPs checks accessIPv4 and accessIPv6 as Nova's schema does
// (strings of jsonschema's ipv4 and ipv6 formats), and OS-DCF:diskConfig
// (AUTO or MANUAL).
func createAccessIPs(_ Version, b *createBody, out *createRequest) error {
	for _, f := range []struct {
		name, format string
		raw          json.RawMessage
		to           *string
	}{{"accessIPv4", "ipv4", b.AccessIPv4, &out.accessIPv4}, {"accessIPv6", "ipv6", b.AccessIPv6, &out.accessIPv6}} {
		if len(f.raw) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(f.raw, &v); err != nil {
			return invalid(f.name, string(f.raw), "is not valid JSON")
		}
		if err := checkIP(f.name, v, f.format); err != nil {
			return err
		}
		*f.to = v.(string)
	}
	if len(b.DiskConfig) > 0 {
		var v any
		if err := json.Unmarshal(b.DiskConfig, &v); err != nil {
			return invalid("OS-DCF:diskConfig", string(b.DiskConfig), "is not valid JSON")
		}
		if err := checkEnum("OS-DCF:diskConfig", v, "AUTO", "MANUAL"); err != nil {
			return err
		}
		out.diskConfig = v.(string)
	}
	return nil
}

// createMetadata checks metadata as Nova's parameter_types.metadata
// (checkMetadata): keys of 1 to 255 of [a-zA-Z0-9-_:. ], string values of
// at most 255 characters.
func createMetadata(_ Version, b *createBody, out *createRequest) error {
	if len(b.Metadata) == 0 {
		return nil
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(string(b.Metadata)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return bad("Invalid input for field/attribute metadata. Value: %s. is not valid JSON", b.Metadata)
	}
	// A value that is not a string is named by its key and the field.
	if obj, ok := v.(map[string]any); ok {
		for k, val := range obj {
			if _, isStr := val.(string); !isStr {
				return invalid("metadata", val, "%s is not of type 'string' (key %s)", pyRepr(val), pyRepr(k))
			}
		}
	}
	m, err := checkMetadata("metadata", v)
	if err != nil {
		return err
	}
	out.metadata = m
	return nil
}

// createNetworks checks networks: from 2.37 it is required, and may be
// "auto" (the default network) or "none" (no network at all).
func createNetworks(ver Version, b *createBody, out *createRequest) error {
	var mode string
	if ver.AtLeast(Version{2, 37}) {
		if len(b.Networks) == 0 {
			return bad("Invalid input for field/attribute server. Value: %s. 'networks' is a required property", "{...}")
		}
		if json.Unmarshal(b.Networks, &mode) == nil && mode != "auto" && mode != "none" {
			return bad("Invalid input for field/attribute networks. Value: %s. '%s' is not one of ['none', 'auto']", mode, mode)
		}
	}
	switch {
	case mode == "none":
		out.noNetwork = true
	case mode == "auto":
	case len(b.Networks) > 0:
		nets, err := validateNetworks(ver, b.Networks)
		if err != nil {
			return err
		}
		out.networks = nets
	}
	return nil
}

// createCounts checks min_count, max_count and return_reservation_id.
func createCounts(_ Version, b *createBody, out *createRequest) error {
	minC, err := countField("min_count", b.MinCount)
	if err != nil {
		return err
	}
	maxC, err := countField("max_count", b.MaxCount)
	if err != nil {
		return err
	}
	switch {
	case minC == 0 && maxC == 0:
		out.count, out.minCount = 1, 1
	case maxC == 0:
		out.count, out.minCount = minC, minC
	case minC == 0:
		out.count, out.minCount = maxC, 1
	default:
		if minC > maxC {
			return bad("min_count must be <= max_count")
		}
		out.count, out.minCount = maxC, minC
	}
	if out.count > maxCount {
		return bad("Invalid input for field/attribute max_count. Value: %d. %d is greater than the maximum of %d", out.count, out.count, maxCount)
	}
	if len(b.ReturnReservation) > 0 {
		v, ok := parseBool(b.ReturnReservation)
		if !ok {
			return bad("Invalid input for field/attribute return_reservation_id. Value: %s. is not a 'boolean'", b.ReturnReservation)
		}
		out.returnReservation = v
	}
	return nil
}
func countField(name string, raw json.RawMessage) (int, error) {
	if len(raw) == 0 {
		return 0, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if v, err := strconv.ParseInt(s, 10, 64); err == nil {
				n = v
			} else {
				return 0, bad("Invalid input for field/attribute %s. Value: %s. '%s' is not a 'integer'", name, s, s)
			}
		} else {
			return 0, bad("Invalid input for field/attribute %s. Value: %s. is not of type 'integer'", name, raw)
		}
	}
	if n < 1 {
		return 0, bad("Invalid input for field/attribute %s. Value: %d. %d is less than the minimum of 1", name, n, n)
	}
	if n > maxCount {
		return 0, bad("Invalid input for field/attribute %s. Value: %d. %d is greater than the maximum of %d", name, n, n, maxCount)
	}
	return int(n), nil
}
func parseBool(raw json.RawMessage) (bool, bool) {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch strings.ToLower(s) {
		case "true", "1", "yes", "on", "t", "y":
			return true, true
		case "false", "0", "no", "off", "f", "n":
			return false, true
		}
	}
	return false, false
}

// requestedNetwork is one entry of "networks" in a create.
type requestedNetwork struct {
	UUID    string `json:"uuid,omitempty"`
	Port    string `json:"port,omitempty"`
	FixedIP string `json:"fixed_ip,omitempty"`
	// Tag is the interface's device tag (2.32 to 2.36, and from 2.42;
	// "": none), which the interface list shows from 2.70.
	Tag string `json:"tag,omitempty"`
}

// networkTagged says whether a networks entry may carry a tag: Nova's
// create_v232 and create_v233 (2.32 to 2.36) and create_v242 on (2.42).
func networkTagged(ver Version) bool {
	return (ver.AtLeast(Version{2, 32}) && !ver.AtLeast(Version{2, 37})) || ver.AtLeast(Version{2, 42})
}

// validateNetworks checks a networks list as Nova does: each entry against
// the schema of the microversion (fixed_ip an IPv4 or IPv6 address, port a
// UUID or null, uuid a string, a UUID from 2.37, tag where the version has
// it), then as servers.py _get_requested_networks does (a port named
// twice, a port with a fixed_ip, an entry without uuid or port). Each
// entry is one interface of the server, the same network named twice
// included.
func validateNetworks(ver Version, raw json.RawMessage) ([]requestedNetwork, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return nil, bad("Invalid input for field/attribute networks. Value: %s. '%s' is not of type 'array' (auto and none need microversion 2.37)", s, s)
	}
	var items []any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&items); err != nil || items == nil {
		return nil, bad("Invalid input for field/attribute networks. Value: %s. is not of type 'array'", raw)
	}
	out := make([]requestedNetwork, 0, len(items))
	for _, it := range items {
		rn, err := networkEntry(ver, it)
		if err != nil {
			return nil, err
		}
		out = append(out, rn)
	}
	ports := map[string]bool{}
	for _, rn := range out {
		switch {
		case rn.Port != "" && ports[rn.Port]:
			return nil, bad("Port ID '%s' was specified twice: you cannot attach a port multiple times.", rn.Port)
		case rn.Port != "" && rn.FixedIP != "":
			return nil, bad("Specified Fixed IP '%s' cannot be used with port '%s': the two cannot be specified together.", rn.FixedIP, rn.Port)
		case rn.Port == "" && rn.UUID == "":
			return nil, bad("Bad network format: missing 'uuid' (each network needs a uuid or a port)")
		case rn.Port == "" && !uuidRE.MatchString(rn.UUID):
			return nil, bad("Bad networks format: network uuid is not in proper format (%s)", rn.UUID)
		}
		ports[rn.Port] = rn.Port != ""
	}
	return out, nil
}

// createNetworkCounts refuses more than one instance with a port or a
// fixed IP, as Nova does: each is one server's.
func createNetworkCounts(_ Version, _ *createBody, out *createRequest) error {
	if out.count <= 1 {
		return nil
	}
	for _, rn := range out.networks {
		if rn.Port != "" {
			return bad("Failed to launch instances: Unable to launch multiple instances with a single configured port ID. " +
				"Please launch your instance one by one with different ports.")
		}
		if rn.FixedIP != "" {
			return bad("Failed to launch instances: max_count cannot be greater than 1 if an fixed_ip is specified.")
		}
	}
	return nil
}

// networkEntry checks one entry of networks against Nova's schema.
func networkEntry(ver Version, it any) (requestedNetwork, error) {
	var rn requestedNetwork
	n, ok := it.(map[string]any)
	if !ok {
		return rn, invalid("networks", it, "%s is not of type 'object'", pyRepr(it))
	}
	allowed := []string{"uuid", "port", "fixed_ip"}
	if networkTagged(ver) {
		allowed = append(allowed, "tag")
	}
	if err := noOtherKeys(n, "networks", allowed...); err != nil {
		return rn, err
	}
	if v, ok := n["fixed_ip"]; ok {
		ip, isStr := v.(string)
		if !isStr {
			return rn, invalid("fixed_ip", v, "%s is not of type 'string'", pyRepr(v))
		}
		if !isIPAddress(ip) {
			return rn, invalid("fixed_ip", v, "%s is not valid under any of the given schemas", pyRepr(v))
		}
		rn.FixedIP = ip
	}
	if v, ok := n["port"]; ok && v != nil {
		p, isStr := v.(string)
		if !isStr {
			return rn, invalid("port", v, "%s is not of type 'string', 'null'", pyRepr(v))
		}
		if !uuidRE.MatchString(p) {
			return rn, invalid("port", v, "%s is not a 'uuid'", pyRepr(v))
		}
		rn.Port = p
	}
	if v, ok := n["uuid"]; ok {
		u, isStr := v.(string)
		if !isStr {
			return rn, invalid("uuid", v, "%s is not of type 'string'", pyRepr(v))
		}
		if ver.AtLeast(Version{2, 37}) && !uuidRE.MatchString(u) {
			return rn, invalid("uuid", v, "%s is not a 'uuid'", pyRepr(v))
		}
		rn.UUID = u
	}
	if v, ok := n["tag"]; ok {
		if msg := tagError(v); msg != "" {
			return rn, invalid("tag", v, "%s", msg)
		}
		rn.Tag, _ = v.(string)
	}
	return rn, nil
}

// isIPAddress is Nova's parameter_types.ip_address: an IPv4 or an IPv6
// address (no zone, no prefix).
func isIPAddress(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

func parseHints(top map[string]json.RawMessage) (map[string][]string, error) {
	raw, ok := top["os:scheduler_hints"]
	if !ok {
		raw, ok = top["OS-SCH-HNT:scheduler_hints"]
	}
	if !ok {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, bad("Invalid input for field/attribute os:scheduler_hints. Value: %s. is not of type 'object'", raw)
	}
	out := map[string][]string{}
	for k, v := range m {
		switch t := v.(type) {
		case string:
			out[k] = []string{t}
		case []any:
			for _, e := range t {
				s, ok := e.(string)
				if !ok {
					return nil, bad("Invalid input for field/attribute os:scheduler_hints. Hint %q holds a non-string", k)
				}
				out[k] = append(out[k], s)
			}
		default:
			out[k] = []string{fmt.Sprint(t)}
		}
	}
	return out, nil
}

// checkTrustedCerts checks trusted_image_certificates (2.63) as Nova's
// schema does. A list of certificates is then refused: no driver here
// can verify an image's signature, and a cloud must not accept
// certificates it will not check. null (or absent) is accepted.
func checkTrustedCerts(raw json.RawMessage) error {
	const f = "trusted_image_certificates"
	if isNull(raw) {
		return nil
	}
	var val any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&val); err != nil {
		return bad("Invalid input for field/attribute %s. Value: %s. is not valid JSON", f, raw)
	}
	items, ok := val.([]any)
	if !ok {
		return invalid(f, val, "%s is not of type 'array', 'null'", pyRepr(val))
	}
	switch {
	case len(items) == 0:
		return invalid(f, val, "[] should be non-empty")
	case len(items) > 50:
		return invalid(f, val, "%s is too long", pyRepr(val))
	}
	seen := map[string]bool{}
	for i, it := range items {
		s, ok := it.(string)
		if !ok {
			return invalid(strconv.Itoa(i), it, "%s is not of type 'string'", pyRepr(it))
		}
		if s == "" {
			return bad("Invalid input for field/attribute %d. Value: . '' should be non-empty", i)
		}
		if seen[s] {
			return invalid(f, val, "%s has non-unique elements", pyRepr(val))
		}
		seen[s] = true
	}
	return bad("Image certificate validation is not supported: this cloud's hypervisor drivers cannot verify image signatures.")
}

// createSecurityGroups checks security_groups as Nova's schema does (a list
// of objects with at most a name, parameter_types.name) and keeps the
// names given, each once (Nova's set; entries without a name are
// ignored).
func createSecurityGroups(_ Version, b *createBody, out *createRequest) error {
	if b.SecurityGroups == nil {
		return nil
	}
	out.securityGroupsBody = b.SecurityGroups
	out.securityGroups = []string{}
	for _, raw := range b.SecurityGroups {
		var entry map[string]any
		if err := json.Unmarshal(raw, &entry); err != nil || entry == nil {
			return bad("Invalid input for field/attribute security_groups. Value: %s. %s is not of type 'object'", raw, raw)
		}
		for k := range entry {
			if k != "name" {
				return bad("Invalid input for field/attribute security_groups. Value: %s. Additional properties are not allowed ('%s' was unexpected)", raw, k)
			}
		}
		v, ok := entry["name"]
		if !ok {
			continue
		}
		if err := checkName("name", v); err != nil {
			return err
		}
		if name := v.(string); name != "" && !slices.Contains(out.securityGroups, name) {
			out.securityGroups = append(out.securityGroups, name)
		}
	}
	return nil
}
