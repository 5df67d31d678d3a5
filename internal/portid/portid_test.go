package portid_test

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/portid"
)

// The derivation is stable: ports shown before the move keep their ids.
func TestDeriveIsStable(t *testing.T) {
	a := portid.Derive("0d7c7a7e-0000-4000-8000-000000000001", "private", "10.0.0.2")
	if a != portid.Derive("0d7c7a7e-0000-4000-8000-000000000001", "private", "10.0.0.2") {
		t.Fatal("two derivations differ")
	}
	if a == portid.Derive("0d7c7a7e-0000-4000-8000-000000000001", "private", "10.0.0.3") {
		t.Fatal("another address gives the same id")
	}
	if len(a) != 36 || a[14] != '5' {
		t.Fatalf("id %q is not a UUID v5", a)
	}
}
