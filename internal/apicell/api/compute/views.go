package compute

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
)

// versionedView adds to a server view what later microversions show.
func versionedView(r *http.Request, in *apidb.Instance, v map[string]any, rights viewRights) {
	ctx := r.Context()
	ver := apiVersion(ctx)
	admin := httpkit.CallerFrom(ctx).Admin
	if rights.extended && ver.AtLeast(Version{2, 3}) {
		// 2.3: the rest of Nova's extended server attributes, under the
		// same rule.
		var userData any
		if in.UserData != "" {
			userData = in.UserData
		}
		v["OS-EXT-SRV-ATTR:reservation_id"] = in.ReservationID
		v["OS-EXT-SRV-ATTR:launch_index"] = in.LaunchIndex
		v["OS-EXT-SRV-ATTR:hostname"] = in.HostnameOf()
		// The images carry no kernel or ramdisk (Nova's '' when the image
		// names none).
		v["OS-EXT-SRV-ATTR:kernel_id"] = ""
		v["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
		v["OS-EXT-SRV-ATTR:root_device_name"] = rootDeviceName(in)
		v["OS-EXT-SRV-ATTR:user_data"] = userData
	}
	if ver.AtLeast(Version{2, 90}) {
		// 2.90: the hostname is shown to every user (in every server
		// view: show, the detailed list, update and rebuild).
		v["OS-EXT-SRV-ATTR:hostname"] = in.HostnameOf()
	}
	if rights.hostStatus && ver.AtLeast(Version{2, 16}) {
		// 2.16: host_status. The API cell knows no hosts; a host it has
		// heard of through an instance update is reported UP, as the
		// owning cell placed the instance on it; none is "".
		status := ""
		if in.Host != "" {
			status = "UP"
		}
		v["host_status"] = status
	}
	if ver.AtLeast(Version{2, 63}) {
		// 2.63: no image certificates are ever stored (they are refused).
		v["trusted_image_certificates"] = nil
	}
	if ver.AtLeast(Version{2, 47}) {
		// 2.47: the flavor is embedded instead of linked.
		f := map[string]any{
			"vcpus": in.Flavor.VCPUs, "ram": in.Flavor.RAMMB, "disk": in.Flavor.RootGB,
			"ephemeral": in.Flavor.EphemeralGB, "swap": in.Flavor.SwapMB, "original_name": in.Flavor.Name,
		}
		if admin {
			specs := in.Flavor.ExtraSpecs
			if specs == nil {
				specs = map[string]string{}
			}
			f["extra_specs"] = specs
		}
		v["flavor"] = f
	}
}

// rootDeviceName is the device the root disk is attached as: none
// (null) until a compute host has taken the instance, as in Nova, whose
// compute manager names it when it builds the instance; then the first
// virtio disk, /dev/vda, as Nova's libvirt driver names it (and the boot
// volume's device, which Nova defaults to vda too). It stays once set.
func rootDeviceName(in *apidb.Instance) any {
	if in.Host == "" && in.LaunchedAt.IsZero() {
		return nil
	}
	return "/dev/vda"
}

// hostname is the hostname Nova gives a server named name it is not
// given one for (apidb.DefaultHostname).
func hostname(name, uuid string) string { return apidb.DefaultHostname(name, uuid, 0) }
