package volume

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestNextDevice follows Nova's get_next_device_name: the first free
// letters after the root's, a name asked for under the root's prefix
// when its letters are free, and the limit of devices.
func TestNextDevice(t *testing.T) {
	many := []string{rootDevice}
	for i := 1; i < 26; i++ {
		many = append(many, "/dev/vd"+deviceLetter(i))
	}
	cases := []struct {
		name      string
		used      []string
		requested string
		max       int
		want      string
		reason    string
	}{
		{"first", []string{rootDevice}, "", 0, "/dev/vdb", ""},
		{"a gap", []string{rootDevice, "/dev/vdc"}, "", 0, "/dev/vdb", ""},
		{"after z", many, "", 0, "/dev/vdaa", ""},
		{"asked", []string{rootDevice}, "/dev/vdk", 0, "/dev/vdk", ""},
		{"asked of another kind", []string{rootDevice}, "/dev/xvdc", 0, "/dev/vdc", ""},
		{"asked with a partition", []string{rootDevice}, "/dev/sdd1", 0, "/dev/vdd", ""},
		{"asked and taken", []string{rootDevice, "/dev/vdb"}, "/dev/sdb", 0, "", wire.AttachReasonDeviceInUse},
		{"the root asked", []string{rootDevice}, "/dev/vda", 0, "", wire.AttachReasonDeviceInUse},
		{"at the limit", []string{rootDevice, "/dev/vdb"}, "", 2, "", wire.AttachReasonTooManyDevices},
		{"under the limit", []string{rootDevice, "/dev/vdb"}, "", 3, "/dev/vdc", ""},
	}
	for _, c := range cases {
		got, reason := nextDevice(c.used, c.requested, c.max)
		if got != c.want || reason != c.reason {
			t.Errorf("%s: %q, %q; want %q, %q", c.name, got, reason, c.want, c.reason)
		}
	}
	for i, want := range map[int]string{0: "a", 25: "z", 26: "aa", 27: "ab", 701: "zz", 702: "aaa"} {
		if got := deviceLetter(i); got != want {
			t.Errorf("deviceLetter(%d) = %q, want %q", i, got, want)
		}
	}
}
