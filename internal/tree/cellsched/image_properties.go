package cellsched

import "slices"

// ImagePropertiesFilter matches the request's image properties against the
// cell's reported capabilities. For each property K=V: if the cell reports a
// capability K, V must be one of its values; a property the cell does not
// report at all does not constrain it.
type ImagePropertiesFilter struct{}

// Passes implements Filter.
func (ImagePropertiesFilter) Passes(req *Request, c *Candidate) bool {
	for k, v := range req.ImageProperties {
		vs, ok := c.Report.Capabilities[k]
		if ok && !slices.Contains(vs, v) {
			return false
		}
	}
	return true
}
