package image_test

import (
	"net/http"
	"slices"
	"testing"
)

// TestSchema checks the schema documents clients such as the openstack CLI
// (through glanceclient's warlock models) fetch and validate images with.
func TestSchema(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		r := s.do(t, http.MethodGet, "/v2/schemas/image", demo, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("image schema: %s", r)
		}
		var schema struct {
			Name                 string                    `json:"name"`
			Properties           map[string]map[string]any `json:"properties"`
			AdditionalProperties map[string]any            `json:"additionalProperties"`
			Links                []map[string]string       `json:"links"`
		}
		r.JSON(t, &schema)
		if schema.Name != "image" || schema.AdditionalProperties["type"] != "string" || len(schema.Links) != 3 {
			t.Fatalf("schema: %s", r.Body)
		}
		// Every attribute an image view has is in the schema.
		img := s.create(t, demo, imagesCreateOpts("schema-check"))
		for k := range s.raw(t, demo, img.ID) {
			if _, ok := schema.Properties[k]; !ok && k != "custom" {
				t.Errorf("view attribute %q is not in the schema", k)
			}
		}
		if enum, _ := schema.Properties["disk_format"]["enum"].([]any); len(enum) == 0 || enum[0] != nil || !slices.Contains(enum, any("qcow2")) {
			t.Fatalf("disk_format enum %v", schema.Properties["disk_format"]["enum"])
		}
		r = s.do(t, http.MethodGet, "/v2/schemas/images", demo, nil)
		var coll struct {
			Name       string `json:"name"`
			Properties struct {
				Images struct {
					Items struct {
						Name string `json:"name"`
					} `json:"items"`
				} `json:"images"`
			} `json:"properties"`
		}
		r.JSON(t, &coll)
		if coll.Name != "images" || coll.Properties.Images.Items.Name != "image" {
			t.Fatalf("images schema: %s", r.Body)
		}
	})
}
