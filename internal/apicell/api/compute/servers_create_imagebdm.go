package compute

// The block device mappings an image carries (Nova's
// _get_image_defined_bdms and the merge of _check_and_transform_bdm): the
// image a volume-backed server's createImage makes holds its mapping
// (block_device_mapping, a JSON list; bdm_v2 "True"; root_device_name),
// each a snapshot of one of its volumes. A boot from such an image maps
// each snapshot to a new volume made from it (volume_size and
// delete_on_termination from the mapping), its root one the boot volume:
// the server is volume-backed and keeps the image as its image_ref, as
// Nova's does (isVolumeBacked reads its root attachment). The image's
// legacy mappings (no bdm_v2) are read as from_legacy_mapping does; its
// "mappings" property (EC2's ephemeral and swap devices) names only local
// disks, which are not served, and only its root device name is read.

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
)

// createRootDeviceName is Nova's root_device_name of a create from an image
// with properties props (prepend_dev of properties_root_device_name),
// "vda" without one: the name _check_and_transform_bdm compares the
// request's volume device names with (after strip_dev, so that a name
// from the image, "/dev/..." never matches, as in Nova).
func createRootDeviceName(props map[string]string) string {
	name := ""
	var mappings []map[string]any
	if raw := props["mappings"]; raw != "" && json.Unmarshal([]byte(raw), &mappings) == nil {
		for _, m := range mappings {
			if v, _ := m["virtual"].(string); v == "root" {
				name, _ = m["device"].(string)
			}
		}
	}
	if v, ok := props["root_device_name"]; ok {
		name = v
	}
	if name == "" {
		return "vda"
	}
	return "/dev/" + strings.TrimPrefix(name, "/dev/")
}

// ephemeralRE is Nova's ephemeral virtual name.
var ephemeralRE = regexp.MustCompile(`^ephemeral(\d+)$`)

// legacyBDMToAPI is BlockDeviceDict.from_legacy of one legacy mapping (of
// an image, or of a create's block_device_mapping), as the API's v2 form
// that bdmFromAPI reads: its source and destination from what it names,
// the fields the two forms share copied, no boot_index (the caller's).
func legacyBDMToAPI(legacy map[string]any) (map[string]any, error) {
	m := map[string]any{}
	for _, k := range []string{"device_name", "delete_on_termination", "volume_size", "no_device"} {
		if v, ok := legacy[k]; ok && v != nil {
			m[k] = v
		}
	}
	virt, _ := legacy["virtual_name"].(string)
	str := func(k string) string { s, _ := legacy[k].(string); return s }
	switch {
	case virt == "swap" || ephemeralRE.MatchString(virt):
		m["source_type"], m["destination_type"], m["delete_on_termination"] = "blank", "local", true
	case str("snapshot_id") != "":
		m["source_type"], m["destination_type"], m["uuid"] = "snapshot", "volume", str("snapshot_id")
	case str("volume_id") != "":
		m["source_type"], m["destination_type"], m["uuid"] = "volume", "volume", str("volume_id")
	case legacy["no_device"] != nil && legacy["no_device"] != false && legacy["no_device"] != "":
	default:
		return nil, bdmInvalid("Unrecognized legacy format.")
	}
	return m, nil
}

// imageBDMs are the mappings the image with properties props defines,
// each as bdmFromAPI makes it (fromImage set); none without a
// block_device_mapping property. rootName is the create's root device
// name (createRootDeviceName), which picks the boot device among legacy ones.
func imageBDMs(props map[string]string, imageRef, rootName string) ([]bdmRequest, error) {
	raw := props["block_device_mapping"]
	if raw == "" {
		return nil, nil
	}
	var list []map[string]any
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&list); err != nil {
		return nil, bdmInvalid("Unrecognized legacy format.")
	}
	// Any bdm_v2 value is true to Nova (a string, never converted).
	v2 := props["bdm_v2"] != ""
	var out []bdmRequest
	for _, d := range list {
		var m map[string]any
		if v2 {
			m = map[string]any{}
			for k, v := range d {
				if v != nil {
					m[k] = v
				}
			}
			if src, _ := m["source_type"].(string); src != "" && src != "blank" {
				m["uuid"], _ = m[src+"_id"].(string)
			}
		} else {
			var err error
			if m, err = legacyBDMToAPI(d); err != nil {
				return nil, err
			}
			// from_legacy_mapping with a root device name and no image:
			// the volume on it boots, the others do not (no_device: None).
			src, _ := m["source_type"].(string)
			dev, _ := m["device_name"].(string)
			switch {
			case src != "blank" && src != "" && strings.TrimPrefix(dev, "/dev/") == strings.TrimPrefix(rootName, "/dev/"):
				m["boot_index"] = json.Number("0")
			case m["no_device"] == nil:
				m["boot_index"] = json.Number("-1")
			}
		}
		b, skip, err := bdmFromAPI(m, imageRef)
		if err != nil {
			return nil, err
		}
		if !skip {
			b.fromImage = true
			out = append(out, b)
		}
	}
	return out, nil
}

// mergeImageBDMs is the part of _check_and_transform_bdm that takes in
// the image's mappings: when one of them is the boot device, the
// request's image boot mapping is dropped; the request's mappings then
// replace the image's of the same device name. A create with no v2
// mappings whose image defines no boot device boots from the image
// (from_legacy_mapping's image mapping), kept here when the image has
// mappings for the boot sequence check; a create's legacy mappings get
// their boot indexes here (legacyBoot). It sets req.volumeBacked.
func mergeImageBDMs(req *createRequest, img *imagedb.Image) error {
	req.rootDeviceName = createRootDeviceName(img.Properties)
	fromImage, err := imageBDMs(img.Properties, req.imageRef, req.rootDeviceName)
	if err != nil {
		return err
	}
	rootInImage := slices.ContainsFunc(fromImage, func(b bdmRequest) bool { return b.bootIndex == 0 })
	if req.legacyBDM {
		req.bdms = legacyBoot(req.bdms, req.rootDeviceName, rootInImage, req.imageRef)
	}
	if len(fromImage) == 0 {
		req.volumeBacked = slices.ContainsFunc(req.bdms, func(b bdmRequest) bool { return b.bootIndex == 0 && b.isVolume() })
		return nil
	}
	asked := req.bdms
	switch {
	case req.legacyBDM:
	case rootInImage:
		asked = slices.DeleteFunc(asked, func(b bdmRequest) bool { return b.bootIndex == 0 && b.source == "image" })
	case !req.bdmV2:
		asked = append([]bdmRequest{{source: "image", dest: "local", id: req.imageRef, bootIndex: 0, fromImage: true}}, asked...)
	}
	var names []string
	for _, b := range asked {
		if b.deviceName != "" {
			names = append(names, b.deviceName)
		}
	}
	for _, b := range fromImage {
		if !slices.Contains(names, b.deviceName) {
			asked = append(asked, b)
		}
	}
	req.bdms = asked
	req.volumeBacked = slices.ContainsFunc(asked, func(b bdmRequest) bool { return b.bootIndex == 0 && b.isVolume() })
	return nil
}

// legacyBoot is the boot indexes from_legacy_mapping gives a create's
// legacy mappings: none boots when the image has a boot device (noRoot);
// else the volume (or snapshot) on the root device name rootName boots,
// and without one a create with an image boots from it (its mapping
// first).
func legacyBoot(bdms []bdmRequest, rootName string, noRoot bool, imageRef string) []bdmRequest {
	volumeBacked := false
	for i := range bdms {
		b := &bdms[i]
		if !b.legacy {
			continue
		}
		b.bootIndex = -1
		if !noRoot && b.source != "blank" && strings.TrimPrefix(b.deviceName, "/dev/") == strings.TrimPrefix(rootName, "/dev/") {
			b.bootIndex, volumeBacked = 0, true
		}
	}
	if noRoot || volumeBacked || imageRef == "" {
		return bdms
	}
	return append([]bdmRequest{{source: "image", dest: "local", id: imageRef, bootIndex: 0, legacy: true}}, bdms...)
}
