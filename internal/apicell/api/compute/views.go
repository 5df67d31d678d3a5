package compute

import (
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
)

// versionedView adds to a server view what later microversions show.
func versionedView(r *http.Request, in *apidb.Instance, v map[string]any) {
	ctx := r.Context()
	ver := apiVersion(ctx)
	admin := httpkit.CallerFrom(ctx).Admin
	if admin && ver.AtLeast(Version{2, 3}) {
		// 2.3: more extended server attributes, for admins.
		var userData any
		if in.UserData != "" {
			userData = in.UserData
		}
		v["OS-EXT-SRV-ATTR:reservation_id"] = in.ReservationID
		v["OS-EXT-SRV-ATTR:launch_index"] = in.LaunchIndex
		v["OS-EXT-SRV-ATTR:hostname"] = hostname(in.Name)
		v["OS-EXT-SRV-ATTR:kernel_id"] = ""
		v["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
		v["OS-EXT-SRV-ATTR:root_device_name"] = nil
		v["OS-EXT-SRV-ATTR:user_data"] = userData
	}
	if admin && ver.AtLeast(Version{2, 16}) {
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

// hostname is Nova's sanitized hostname of a display name.
func hostname(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case r == ' ', r == '_', r == '.':
			b.WriteRune('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = h[:63]
	}
	if h == "" {
		h = "server"
	}
	return h
}
