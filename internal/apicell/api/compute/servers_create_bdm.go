package compute

// The block device mappings of a create (block_device_mapping and
// block_device_mapping_v2): checked against Nova's schema for the request's
// microversion (nova/api/openstack/compute/schemas/servers.py and
// parameter_types), then as nova/block_device.py BlockDeviceDict.from_api
// does. Served: the image boot itself (source image, destination local,
// boot_index 0, the imageRef's image) and every mapping to a volume
// (source volume, snapshot, image or blank; checked against the copies in
// servers_create_volumes.go), in either syntax (the legacy
// block_device_mapping read as from_legacy_mapping does); a mapping that
// removes a device (no_device) is accepted, as there is none to remove.
// Local disks other than the image boot (ephemeral, swap) are a 400 that
// says what is not served.

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// bdmItem is the schema of one mapping: each property and its check.
type bdmItem map[string]func(field string, v any) error

var (
	bdmDeviceNameRE = regexp.MustCompile(`^[a-zA-Z0-9._/-]*$`)
	bdmUUIDRE       = regexp.MustCompile(`^[a-zA-Z0-9._-]*$`)
	bdmBootIndexRE  = regexp.MustCompile(`^-?[0-9]+$`)
	bdmSizeRE       = regexp.MustCompile(`^[0-9]+$`)
)

// bdmLegacy is Nova's _legacy_block_device_mapping.
var bdmLegacy = bdmItem{
	"virtual_name":          bdmString(0, 255, nil, ""),
	"volume_id":             bdmUUID,
	"snapshot_id":           bdmUUID,
	"volume_size":           bdmVolumeSize,
	"device_name":           bdmString(1, 255, bdmDeviceNameRE, `^[a-zA-Z0-9._/-]*$`),
	"delete_on_termination": checkBoolean,
	"no_device":             func(string, any) error { return nil },
	"connection_info":       bdmString(0, 16777215, nil, ""),
}

// bdmV2 is Nova's _block_device_mapping_v2 at ver: the legacy properties
// and the new ones, tag at 2.32 and from 2.42, volume_type from 2.67.
func bdmV2(ver Version) bdmItem {
	item := bdmItem{
		"source_type":      bdmEnum("volume", "image", "snapshot", "blank"),
		"uuid":             bdmString(1, 255, bdmUUIDRE, `^[a-zA-Z0-9._-]*$`),
		"image_id":         bdmUUID,
		"destination_type": bdmEnum("local", "volume"),
		"guest_format":     bdmString(0, 255, nil, ""),
		"device_type":      bdmString(0, 255, nil, ""),
		"disk_bus":         bdmString(0, 255, nil, ""),
		"boot_index":       bdmBootIndex,
	}
	for k, f := range bdmLegacy {
		item[k] = f
	}
	if ver == (Version{2, 32}) || ver.AtLeast(Version{2, 42}) {
		item["tag"] = func(field string, v any) error {
			if msg := tagError(v); msg != "" {
				return invalid(field, v, "%s", msg)
			}
			return nil
		}
	}
	if ver.AtLeast(Version{2, 67}) {
		item["volume_type"] = func(field string, v any) error {
			if v == nil {
				return nil
			}
			if _, ok := v.(string); !ok {
				return invalid(field, v, "%s is not of type 'string', 'null'", pyRepr(v))
			}
			return bdmString(0, 255, nil, "")(field, v)
		}
	}
	return item
}

func bdmString(minLen, maxLen int, re *regexp.Regexp, pattern string) func(string, any) error {
	return func(field string, v any) error {
		if err := checkString(field, v, minLen, maxLen); err != nil {
			return err
		}
		if s := v.(string); re != nil && !re.MatchString(s) {
			return invalid(field, v, "%s does not match %s", pyRepr(s), pyRepr(pattern))
		}
		return nil
	}
}

func bdmEnum(vals ...string) func(string, any) error {
	return func(field string, v any) error {
		s, ok := v.(string)
		if !ok {
			return invalid(field, v, "%s is not of type 'string'", pyRepr(v))
		}
		if !slices.Contains(vals, s) {
			quoted := make([]string, len(vals))
			for i, e := range vals {
				quoted[i] = pyRepr(e)
			}
			return invalid(field, v, "%s is not one of [%s]", pyRepr(s), strings.Join(quoted, ", "))
		}
		return nil
	}
}

func bdmUUID(field string, v any) error {
	s, ok := v.(string)
	if !ok {
		return invalid(field, v, "%s is not of type 'string'", pyRepr(v))
	}
	if !uuidRE.MatchString(s) {
		return invalid(field, v, "%s is not a 'uuid'", pyRepr(s))
	}
	return nil
}

// jsonInteger is a JSON number that jsonschema counts as an integer (no
// fraction), as a float64; ok is false for anything else.
func jsonInteger(v any) (n float64, ok bool) {
	num, isNum := v.(json.Number)
	if !isNum {
		return 0, false
	}
	f, err := strconv.ParseFloat(num.String(), 64)
	if err != nil || math.IsInf(f, 0) || f != math.Trunc(f) {
		return 0, false
	}
	return f, true
}

// bdmVolumeSize is parameter_types.volume_size: an integer or a string of
// digits, from 1 to 2147483647.
func bdmVolumeSize(field string, v any) error {
	var n float64
	switch t := v.(type) {
	case string:
		if !bdmSizeRE.MatchString(t) {
			return invalid(field, v, "%s does not match '^[0-9]+$'", pyRepr(t))
		}
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return invalid(field, v, "%s is greater than the maximum of %d", pyRepr(t), math.MaxInt32)
		}
		n = f
	default:
		f, ok := jsonInteger(v)
		if !ok {
			return invalid(field, v, "%s is not of type 'integer', 'string'", pyRepr(v))
		}
		n = f
	}
	switch {
	case n < 1:
		return invalid(field, v, "%s is less than the minimum of 1", pyRepr(v))
	case n > math.MaxInt32:
		return invalid(field, v, "%s is greater than the maximum of %d", pyRepr(v), math.MaxInt32)
	}
	return nil
}

// bdmBootIndex is boot_index: an integer, a string of one, or null.
func bdmBootIndex(field string, v any) error {
	switch t := v.(type) {
	case nil:
		return nil
	case string:
		if !bdmBootIndexRE.MatchString(t) {
			return invalid(field, v, "%s does not match '^-?[0-9]+$'", pyRepr(t))
		}
		return nil
	}
	if _, ok := jsonInteger(v); !ok {
		return invalid(field, v, "%s is not of type 'integer', 'string', 'null'", pyRepr(v))
	}
	return nil
}

// bootIndex is a checked boot_index as from_api reads it (None is -1);
// ok is false past int's range (never 0, so never the boot disk).
func bootIndex(v any) (int64, bool) {
	var s string
	switch t := v.(type) {
	case nil:
		return -1, true
	case string:
		s = t
	case json.Number:
		s = t.String()
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ok := jsonInteger(v)
		return int64(f), ok && math.Abs(f) < 1<<62
	}
	return n, true
}

// decodeBDMs decodes one of the mapping lists and checks each item
// against item: an object with known properties of the right shape.
func decodeBDMs(field string, raw json.RawMessage, item bdmItem) ([]map[string]any, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, bad("Invalid input for field/attribute %s. Value: %s. is not valid JSON", field, abbreviate(string(raw)))
	}
	list, ok := v.([]any)
	if !ok {
		return nil, invalid(field, v, "%s is not of type 'array'", pyRepr(v))
	}
	out := make([]map[string]any, 0, len(list))
	for _, it := range list {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, invalid(field, it, "%s is not of type 'object'", pyRepr(it))
		}
		allowed := make([]string, 0, len(item))
		for k := range item {
			allowed = append(allowed, k)
		}
		if err := noOtherKeys(m, field, allowed...); err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := item[k](k, m[k]); err != nil {
				return nil, err
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// bdmInvalid is Nova's InvalidBDMFormat message.
func bdmInvalid(format string, args ...any) error {
	return bad("Block Device Mapping is Invalid: %s", fmt.Sprintf(format, args...))
}

// bdmRequest is one block_device_mapping_v2 entry as from_api made it.
type bdmRequest struct {
	source, dest string
	// id is the entry's uuid: the volume, snapshot or image it names
	// ("" for blank).
	id string
	// bootIndex is -1 for none (None, or negative).
	bootIndex  int64
	volumeSize int
	// volumeType is 2.67's volume_type ("": none).
	volumeType                                string
	deviceName, guestFormat, diskBus, devType string
	tag                                       string
	deleteOnTermination                       bool
	// fromImage: the mapping is the image's (mergeImageBDMs), not the
	// request's; legacy: the request's block_device_mapping (v1).
	fromImage, legacy bool
}

// isVolume is Nova's BlockDeviceMapping.is_volume.
func (b *bdmRequest) isVolume() bool { return b.dest == "volume" }

// bdmDiskBuses are Nova's fields.DiskBus.ALL.
var bdmDiskBuses = []string{"fdc", "ide", "sata", "scsi", "usb", "virtio", "xen", "lxc", "uml"}

// createBlockDevices checks block_device_mapping and
// block_device_mapping_v2 (see the top of this file) and keeps the v2
// entries in out.bdms; then, as Nova's _image_from_req_data, a create
// with neither an imageRef nor mappings is refused.
func createBlockDevices(ver Version, b *createBody, out *createRequest) error {
	legacy, err := optionalBDMs("block_device_mapping", b.BlockDeviceMapping, bdmLegacy)
	if err != nil {
		return err
	}
	v2, err := optionalBDMs("block_device_mapping_v2", b.BlockDeviceMappingV2, bdmV2(ver))
	if err != nil {
		return err
	}
	if len(legacy) > 0 && len(v2) > 0 {
		return bad("Using different block_device_mapping syntaxes is not allowed in the same request.")
	}
	// The legacy mappings (Nova's legacy_bdm): each read as
	// BlockDeviceDict.from_legacy, its boot index set once the root
	// device name is known (legacyBoot).
	for _, m := range legacy {
		api, err := legacyBDMToAPI(m)
		if err != nil {
			return err
		}
		req, skip, err := bdmFromAPI(api, out.imageRef)
		if err != nil {
			return err
		}
		if !skip {
			req.legacy = true
			out.bdms = append(out.bdms, req)
		}
	}
	out.legacyBDM = len(legacy) > 0
	out.bdmV2 = len(v2) > 0
	for _, m := range v2 {
		req, skip, err := bdmFromAPI(m, out.imageRef)
		if err != nil {
			return err
		}
		if !skip {
			out.bdms = append(out.bdms, req)
		}
	}
	if out.imageRef == "" && len(v2) == 0 && len(legacy) == 0 {
		return bad("Missing imageRef attribute")
	}
	for _, m := range out.bdms {
		if m.bootIndex == 0 && m.isVolume() {
			out.volumeBacked = true
		}
	}
	return nil
}

func optionalBDMs(field string, raw json.RawMessage, item bdmItem) ([]map[string]any, error) {
	if len(raw) == 0 || isNull(raw) {
		return nil, nil
	}
	return decodeBDMs(field, raw, item)
}

// bdmFromAPI checks one block_device_mapping_v2 entry as from_api and
// BlockDeviceDict._validate do, then refuses what this cloud does not
// serve (local disks other than the image boot itself). skip: the entry
// removes a device (no_device), which there is none to remove.
func bdmFromAPI(m map[string]any, imageRef string) (bdmRequest, bool, error) {
	if nd, ok := m["no_device"]; ok && nd != nil && nd != false && nd != "" {
		return bdmRequest{}, true, nil
	}
	source, _ := m["source_type"].(string)
	dest, _ := m["destination_type"].(string)
	id, _ := m["uuid"].(string)
	volumeType, _ := m["volume_type"].(string)
	switch {
	case source == "blank" && id != "":
		return bdmRequest{}, false, bdmInvalid("Invalid device UUID.")
	case source != "blank" && id == "":
		return bdmRequest{}, false, bdmInvalid("Missing device UUID.")
	}
	boot, ok := bootIndex(m["boot_index"])
	if !ok {
		return bdmRequest{}, false, bdmInvalid("Boot index is invalid.")
	}
	if boot < 0 {
		boot = -1
	}
	if source == "image" && dest == "local" && (imageRef == "" || boot != 0) {
		return bdmRequest{}, false, bdmInvalid("Mapping image to local is not supported.")
	}
	switch {
	case dest == "local" && volumeType != "":
		return bdmRequest{}, false, bdmInvalid("Specifying a volume_type with destination_type=local is not supported.")
	case source == "volume" && volumeType != "":
		return bdmRequest{}, false, bdmInvalid("Specifying volume type to existing volume is not supported.")
	case source == "":
		return bdmRequest{}, false, bdmInvalid("Some required fields are missing")
	}
	req := bdmRequest{source: source, dest: dest, id: strings.ToLower(id), bootIndex: boot, volumeType: volumeType}
	req.deviceName, _ = m["device_name"].(string)
	req.guestFormat, _ = m["guest_format"].(string)
	req.diskBus, _ = m["disk_bus"].(string)
	req.devType, _ = m["device_type"].(string)
	req.tag, _ = m["tag"].(string)
	if v, ok := m["delete_on_termination"]; ok {
		req.deleteOnTermination = boolish(v)
	}
	if v, ok := m["volume_size"]; ok {
		var n int64
		switch t := v.(type) {
		case string:
			n, _ = strconv.ParseInt(t, 10, 64)
		case json.Number:
			n, _ = t.Int64()
		}
		req.volumeSize = int(n)
	}
	switch {
	case dest == "volume":
		return req, false, nil
	case source == "blank":
		return req, false, bdmInvalid("a blank local disk (ephemeral or swap) is not supported: a server gets the flavor's disks only")
	case source != "image" || dest != "local":
		return req, false, bdmInvalid("source_type %s with destination_type %s is not served", pyRepr(source), pyRepr(dest))
	case !strings.EqualFold(id, imageRef):
		return req, false, bdmInvalid("the boot image %s is not the imageRef %s", id, imageRef)
	}
	return req, false, nil
}

// boolish is oslo's bool_from_string of a checked boolean-like value.
func boolish(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case string:
		return pyBool(t)
	case json.Number:
		return t.String() == "1"
	}
	return false
}
