package image

import (
	"net/http"
	"slices"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// The formats Glance accepts by default ([image_format] container_formats
// and disk_formats).
var (
	containerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
	diskFormats      = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
	visibilities     = []string{"community", "public", "private", "shared"}
	statuses         = []string{"queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"}
)

func nullableEnum(vals []string) []any {
	out := []any{nil}
	for _, v := range vals {
		out = append(out, v)
	}
	return out
}

// imageProperties is the "properties" of Glance's image schema: the base
// image attributes. Custom properties are the schema's
// additionalProperties (strings).
func imageProperties() map[string]any {
	str := func(desc string, extra ...any) map[string]any {
		m := map[string]any{"type": "string", "description": desc}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	return map[string]any{
		"id": str("An identifier for the image",
			"pattern", "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"),
		"name":         map[string]any{"type": []string{"null", "string"}, "description": "Descriptive name for the image", "maxLength": 255},
		"status":       str("Status of the image", "readOnly", true, "enum", slices.Clone(statuses)),
		"visibility":   str("Scope of image accessibility", "enum", slices.Clone(visibilities)),
		"protected":    map[string]any{"type": "boolean", "description": "If true, image will not be deletable."},
		"os_hidden":    map[string]any{"type": "boolean", "description": "If true, image will not appear in default image list response."},
		"checksum":     map[string]any{"type": []string{"null", "string"}, "readOnly": true, "description": "md5 hash of image contents.", "maxLength": 32},
		"os_hash_algo": map[string]any{"type": []string{"null", "string"}, "readOnly": true, "description": "Algorithm to calculate the os_hash_value", "maxLength": 64},
		"os_hash_value": map[string]any{"type": []string{"null", "string"}, "readOnly": true,
			"description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", "maxLength": 128},
		"owner":        map[string]any{"type": []string{"null", "string"}, "description": "Owner of the image", "maxLength": 255},
		"size":         map[string]any{"type": []string{"null", "integer"}, "readOnly": true, "description": "Size of image file in bytes"},
		"virtual_size": map[string]any{"type": []string{"null", "integer"}, "readOnly": true, "description": "Virtual size of image in bytes"},
		"container_format": map[string]any{"type": []string{"null", "string"}, "description": "Format of the container",
			"enum": nullableEnum(containerFormats)},
		"disk_format": map[string]any{"type": []string{"null", "string"}, "description": "Format of the disk",
			"enum": nullableEnum(diskFormats)},
		"created_at": str("Date and time of image registration", "readOnly", true),
		"updated_at": str("Date and time of the last image modification", "readOnly", true),
		"tags": map[string]any{"type": "array", "description": "List of strings related to the image",
			"items": map[string]any{"type": "string", "maxLength": 255}},
		"direct_url": str("URL to access the image file kept in external store", "readOnly", true),
		"min_ram":    map[string]any{"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
		"min_disk":   map[string]any{"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
		"self":       str("An image self url", "readOnly", true),
		"file":       str("An image file url", "readOnly", true),
		"stores": str("Store in which image data resides.  Only present when the operator has enabled multiple stores.  "+
			"May be a comma-separated list of store identifiers.", "readOnly", true),
		"schema": str("An image schema url", "readOnly", true),
		"locations": map[string]any{
			"type": "array",
			"items": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"url":      map[string]any{"type": "string", "maxLength": 255},
					"metadata": map[string]any{"type": "object"},
					"validation_data": map[string]any{
						"description": "Values to be used to populate the corresponding image properties. If the image status is not " +
							"'queued', values must exactly match those already contained in the image properties.",
						"type": "object", "writeOnly": true, "additionalProperties": false,
						"properties": map[string]any{
							"checksum":      map[string]any{"type": "string", "minLength": 32, "maxLength": 32},
							"os_hash_algo":  map[string]any{"type": "string", "maxLength": 64},
							"os_hash_value": map[string]any{"type": "string", "maxLength": 128},
						},
						"required": []string{"os_hash_algo", "os_hash_value"},
					},
				},
				"required": []string{"url", "metadata"},
			},
			"description": "A set of URLs to access the image file kept in external store",
		},
	}
}

// imageSchemaDoc is Glance's image schema (a permissive schema: custom
// properties are strings).
func imageSchemaDoc() map[string]any {
	return map[string]any{
		"name":                 "image",
		"properties":           imageProperties(),
		"additionalProperties": map[string]any{"type": "string"},
		"links": []map[string]string{
			{"rel": "self", "href": "{self}"},
			{"rel": "enclosure", "href": "{file}"},
			{"rel": "describedby", "href": "{schema}"},
		},
	}
}

// schemasHandler is /v2/schemas: the JSON schemas of an image and of a
// list of images, which clients validate with.
type schemasHandler struct{ *base }

func (h *schemasHandler) register(rt *router) {
	rt.handle("GET /v2/schemas/image", h.imageSchema)
	rt.handle("GET /v2/schemas/images", h.imagesSchema)
}

func (h *schemasHandler) imageSchema(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteMarshal(w, http.StatusOK, imageSchemaDoc())
}

func (h *schemasHandler) imagesSchema(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteMarshal(w, http.StatusOK, map[string]any{
		"name": "images",
		"properties": map[string]any{
			"images": map[string]any{"type": "array", "items": imageSchemaDoc()},
			"first":  map[string]any{"type": "string"},
			"next":   map[string]any{"type": "string"},
			"schema": map[string]any{"type": "string"},
		},
		"links": []map[string]string{
			{"rel": "first", "href": "{first}"},
			{"rel": "next", "href": "{next}"},
			{"rel": "describedby", "href": "{schema}"},
		},
	})
}
