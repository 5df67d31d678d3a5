package hostsched

import "strings"

// DefaultImagePropertiesIsolationSeparator is the separator
// AggregateImagePropertiesIsolation uses when its Separator is empty (Nova's
// default for aggregate_image_properties_isolation_separator).
const DefaultImagePropertiesIsolationSeparator = "."

// AggregateImagePropertiesIsolation keeps images off hosts whose aggregates
// ask for other values of the image's properties (Nova's
// AggregateImagePropertiesIsolation). For every metadata key K of every
// aggregate of the host, when the image has property K with a non-empty
// value, that value must be one of the items of K (the comma-separated
// values, stripped) over all the host's aggregates. Keys the image does not
// have, or has empty, do not constrain; a host in no aggregate and an image
// without properties pass.
//
// Nova reads the image properties as a typed ImageMetaProps object and
// compares str(value) with the items; this filter compares the property's
// string as it is. Two differences follow. In Nova only the standard
// properties the object knows ("hw_vm_mode", "os_distro", "img_hv_type",
// ...) can constrain, and a legacy name is read under its new one
// ("hypervisor_type" as "img_hv_type"); here every property of
// Request.ImageProperties constrains under its own name. And Nova's typed
// values print canonically and a false or zero value does not constrain
// ("true" is compared as "True"; "false" and "0" pass every host); here
// only an empty string does not constrain, and "true" must be an item.
type AggregateImagePropertiesIsolation struct {
	// Namespace, when set, limits the filter to the metadata keys that
	// begin with Namespace followed by Separator; the property looked up is
	// the whole key (Nova's [filter_scheduler]
	// aggregate_image_properties_isolation_namespace, deprecated there).
	Namespace string
	// Separator follows Namespace; "" means
	// DefaultImagePropertiesIsolationSeparator (Nova's
	// aggregate_image_properties_isolation_separator).
	Separator string
}

// Passes implements Filter.
func (f AggregateImagePropertiesIsolation) Passes(req *Request, h *Host) bool {
	if len(req.ImageProperties) == 0 {
		return true
	}
	for _, md := range h.Aggregates {
		for key := range md {
			if !f.inNamespace(key) {
				continue
			}
			prop := req.ImageProperties[key]
			if prop == "" {
				continue
			}
			if !anyHostMetadataItem(h, key, func(item string) bool { return item == prop }) {
				return false
			}
		}
	}
	return true
}

// inNamespace reports whether the filter reads metadata key.
func (f AggregateImagePropertiesIsolation) inNamespace(key string) bool {
	if f.Namespace == "" {
		return true
	}
	sep := f.Separator
	if sep == "" {
		sep = DefaultImagePropertiesIsolationSeparator
	}
	rest, ok := strings.CutPrefix(key, f.Namespace)
	return ok && strings.HasPrefix(rest, sep)
}
