// Package voltypes is the volume types, their access and the volume
// quotas (built by another branch; this file holds only the Type the
// Block Storage API's TypeStore returns, so that the API builds before
// the merge: take the other branch's types.go over this one).
package voltypes

import "time"

// Type is a volume type.
type Type struct {
	ID, Name string
	// Description is "" both for an empty description and for none;
	// NoDescription says it is none (Cinder shows null).
	Description   string
	NoDescription bool
	IsPublic      bool
	// ExtraSpecs are all the type's extra specs (never nil).
	ExtraSpecs map[string]string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}
