package compute

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// createServer is POST /servers: read and check the request, plan the
// instances and their build message, record them with the quota checked,
// and answer with the first server (or the reservation id).
func (h *serversHandler) createServer(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, err := readCreate(w, r)
	if err == nil {
		asked := req.az
		if err = h.createZone(r, req); err == nil {
			err = h.createDestination(r, req, asked)
		}
		if err == nil && len(req.bdms) > 0 {
			err = h.authorize(ctx, ruleCreateAttachVolume, policy.Target{"availability_zone": asked})
		}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	flavor, err := checkCreateRefs(ctx, h.cfg.DB, h.zones, req, h.cfg.DefaultAvailabilityZone)
	if err == nil {
		req.securityGroupIDs, err = h.resolveSecurityGroups(ctx, req.securityGroups)
	}
	if err == nil {
		err = h.resolveDestination(r, req)
	}
	if err == nil {
		err = h.resolveBootVolumes(ctx, req, flavor)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p, err := h.planBuild(r, req, flavor)
	if err == nil {
		err = h.reserveFixedIPs(ctx, req.nics)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c := httpkit.CallerFrom(ctx)
	if err := h.quota.checkMetadataItems(ctx, h.cfg.DB, c.ProjectID, c.UserID, len(req.metadata)); err != nil {
		h.fail(w, r, err)
		return
	}
	err = h.recordBuild(ctx, req, p)
	if errors.Is(err, netdb.ErrNoDefaultGroup) {
		// The project's first server: its default group is made now (as
		// Neutron makes it on a project's first use), and the build is
		// recorded again.
		if _, err = netdb.EnsureDefaultSecurityGroup(ctx, h.cfg.DB, c.ProjectID, p.now); err == nil {
			err = h.recordBuild(ctx, req, p)
		}
	}
	if err != nil {
		h.releaseFixedIPs(ctx, req.nics)
		h.fail(w, r, createSecurityGroupError(err))
		return
	}
	h.log.Info("build requested", "request_id", p.rid, "instances", len(p.insts), "asked", req.count, "flavor", flavor.Name, "reservation_id", p.resID)
	if req.returnReservation {
		httpkit.WriteJSON(w, http.StatusAccepted, map[string]any{"reservation_id": p.resID})
		return
	}
	first := p.insts[0]
	pass := req.adminPass
	if pass == "" {
		pass = randomString(12)
	}
	httpkit.WriteJSON(w, http.StatusAccepted, map[string]any{"server": map[string]any{
		"id":                first.UUID,
		"links":             links(httpkit.Origin(r), c.ProjectID, "servers", first.UUID),
		"OS-DCF:diskConfig": diskConfigView(req.autoDiskConfig),
		"security_groups":   createdSecurityGroups(req),
		"adminPass":         pass,
	}})
}

// createdSecurityGroups is security_groups as the create answers it, as
// Nova: the request's list as given, or the default group when none was.
func createdSecurityGroups(req *createRequest) any {
	if req.securityGroupsBody == nil {
		return []map[string]string{{"name": netdb.DefaultSecurityGroupName}}
	}
	return req.securityGroupsBody
}

// resolveSecurityGroups finds the groups a create names, by id or name
// among the caller's project's (Nova's neutron path); "default" is the
// project's default group, made if the project has none yet. None named
// is nil: the create binds the project's default group without looking
// it up first.
func (h *serversHandler) resolveSecurityGroups(ctx context.Context, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	c := httpkit.CallerFrom(ctx)
	ids := make([]string, 0, len(names))
	for _, name := range names {
		var id string
		var err error
		if name == netdb.DefaultSecurityGroupName {
			id, err = netdb.EnsureDefaultSecurityGroup(ctx, h.cfg.DB, c.ProjectID, h.cfg.Now())
		} else {
			id, _, err = netdb.ResolveSecurityGroup(ctx, h.cfg.DB, c.ProjectID, name)
		}
		if err != nil {
			return nil, createSecurityGroupError(err)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// createSecurityGroupError is a security group a create names as Nova
// answers it: one not found is a 400, a name several groups have a 409.
func createSecurityGroupError(err error) error {
	var ne *netdb.Error
	if !errors.As(err, &ne) {
		return err
	}
	switch {
	case errors.Is(err, netdb.ErrNotFound):
		return bad("%s", ne.Message)
	case errors.Is(err, netdb.ErrConflict):
		return conflict("%s", ne.Message)
	}
	return err
}

// checkCreateRefs checks what a create request names against what
// exists and the caller may use: the flavor (returned), the key pair, the
// networks, the zone (defaultZone is always available) and the image
// (whose properties it keeps in req).
func checkCreateRefs(ctx context.Context, d *db.DB, zones *zoneCache, req *createRequest, defaultZone string) (wire.Flavor, error) {
	c := httpkit.CallerFrom(ctx)
	// The flavor and the image are read together (one round trip on
	// PostgreSQL), and checked in Nova's order.
	reads := []db.Query{apidb.FlavorDetailQuery(req.flavorRef, apidb.FlavorViewer{ProjectID: c.ProjectID, Admin: c.Admin})}
	if req.imageRef != "" {
		reads = append(reads, imagedb.WithPropertiesQuery(req.imageRef))
	}
	read := d.QueryAll(ctx, reads)
	// A private flavor is bootable only by admins and the projects given it.
	fd, err := apidb.FlavorDetailFrom(read[0], req.flavorRef)
	if errors.Is(err, apidb.ErrNotFound) || (err == nil && fd.Disabled) {
		return wire.Flavor{}, bad("Flavor %s could not be found.", req.flavorRef)
	}
	if err != nil {
		return wire.Flavor{}, err
	}
	if req.keyName != "" {
		if _, err := apidb.GetKeyPair(ctx, d, c.UserID, req.keyName); errors.Is(err, apidb.ErrNotFound) {
			return wire.Flavor{}, bad("Invalid key_name provided.")
		} else if err != nil {
			return wire.Flavor{}, err
		}
	}
	if req.nics, err = checkNetworks(ctx, d, req.networks); err != nil {
		return wire.Flavor{}, err
	}
	if err := checkZone(ctx, d, zones, req, defaultZone); err != nil {
		return wire.Flavor{}, err
	}
	if req.imageRef == "" {
		// Volume-backed: the boot volume's image (resolveBootVolumes).
		return fd.Flavor, nil
	}
	img, err := imagedb.WithPropertiesFrom(read[1], req.imageRef)
	img, err = checkImageFound(ctx, img, err, req.imageRef, fd.Flavor)
	if err != nil {
		return wire.Flavor{}, err
	}
	// The image's own mappings (a volume-backed server's snapshot): with
	// a volume to boot from, the flavor's disk is not the root disk, and
	// the image's min_disk is checked against the volume's size
	// (resolveBootVolumes), as Nova's _validate_flavor_image_nostatus.
	if err := mergeImageBDMs(req, img); err != nil {
		return wire.Flavor{}, err
	}
	if !req.volumeBacked {
		if err := checkFlavorDisk(img, fd.Flavor); err != nil {
			return wire.Flavor{}, err
		}
	}
	req.imageMinDisk = int64(img.MinDisk)
	if req.autoDiskConfig, err = autoDiskConfig(req.diskConfig, img.ID, img.AutoDiskConfig); err != nil {
		return wire.Flavor{}, err
	}
	req.imageProps = img.Properties
	return fd.Flavor, nil
}

// plannedBuild is a create request made into the API cell's records of
// its instances and the one build message for the cells service.
type plannedBuild struct {
	insts      []apidb.Instance
	build      wire.BuildInstances
	rid, resID string
	now        time.Time
}

// planBuild makes the records and the build message of a create request:
// req.count instances named name-1, name-2, ... when more than one.
func (h *serversHandler) planBuild(r *http.Request, req *createRequest, flavor wire.Flavor) (*plannedBuild, error) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	p := &plannedBuild{
		insts: make([]apidb.Instance, req.count),
		build: wire.BuildInstances{Flavor: flavor, Hints: req.hints, Scheduler: h.cfg.Cell, Attempts: 1, NoNetwork: req.noNetwork,
			ImageProperties: req.imageProps, ForcedHost: req.forcedHost, ForcedNode: req.forcedNode,
			RequestedHost: req.requestedHost, RequestedNode: req.requestedNode},
		rid: httpkit.RequestID(ctx), resID: "r-" + randomString(8), now: h.cfg.Now().UTC(),
	}
	if err := h.cellHints(r, &p.build); err != nil {
		return nil, err
	}
	if req.forcedCell != "" {
		// A forced host's build goes to its cell (over a target_cell hint).
		p.build.TargetCell = req.forcedCell
	}
	if req.requestedCell != "" {
		// So does a requested destination's (the two are exclusive).
		p.build.TargetCell = req.requestedCell
	}
	// A build with existing volumes goes to their cell only.
	if err := req.vols.pinToVolumes(&p.build); err != nil {
		return nil, err
	}
	for i := range p.insts {
		name := req.name
		if req.count > 1 {
			name = fmt.Sprintf("%s-%d", req.name, i+1)
		}
		spec := wire.InstanceSpec{
			UUID: uuid.NewString(), Name: name, ProjectID: c.ProjectID, UserID: c.UserID, ImageRef: req.imageRef,
			KeyName: req.keyName, UserData: req.userData, Metadata: req.metadata, AvailabilityZone: req.az,
			ReservationID: p.resID, LaunchIndex: i, CreatedAt: p.now,
		}
		// Nova's hostname: the one given (one server only), else the
		// name's, numbered as the name is.
		host := req.hostname
		if host == "" {
			index := 0
			if req.count > 1 {
				index = i + 1
			}
			host = apidb.DefaultHostname(req.name, spec.UUID, index)
		}
		p.insts[i] = apidb.Instance{InstanceSpec: spec, FlavorID: flavor.ID, Flavor: flavor, VMState: "building", TaskState: "scheduling", RequestID: p.rid,
			AccessIPv4: req.accessIPv4, AccessIPv6: req.accessIPv6, AutoDiskConfig: req.autoDiskConfig, Hostname: host,
			PinnedZone: req.az}
		p.build.Instances = append(p.build.Instances, spec)
	}
	return p, nil
}

// recordBuild writes the planned instances that fit the quota (p.insts
// and p.build are cut to them), their group membership, tags and
// description, and the build message, in one transaction.
func (h *serversHandler) recordBuild(ctx context.Context, req *createRequest, p *plannedBuild) error {
	c := httpkit.CallerFrom(ctx)
	all, allSpecs := p.insts, p.build.Instances
	return h.cfg.DB.Group(ctx, func(tx *db.Tx) error {
		// Quota: as many as fit, counted here with the records written
		// below in the same transaction (the retry of a transaction starts
		// from the full request again).
		var also []string
		if groupOf(&p.build) != "" {
			also = append(also, quota.ServerGroupMembers)
		}
		n, err := h.quota.fitInstances(ctx, tx, c.ProjectID, c.UserID, p.build.Flavor, req.minCount, req.count, also...)
		if err != nil {
			return err
		}
		p.insts, p.build.Instances = all[:n], allSpecs[:n]
		// The volumes: reserved, or their copies made, under the volume
		// quota; each instance's block devices.
		if err := h.recordBootVolumes(ctx, tx, req, p.build.Instances, p.now); err != nil {
			return err
		}
		// A create with ports or fixed IPs is of one instance.
		for i := range p.insts {
			if err := recordNICs(ctx, tx, req.nics, &p.insts[i], &p.build.Instances[i], p.now); err != nil {
				return err
			}
		}
		if g := groupOf(&p.build); g != "" {
			if err := h.quota.checkGroupMembers(ctx, tx, g, c.ProjectID, c.UserID, n); err != nil {
				return err
			}
		}
		if err := h.groups.addGroupMembers(ctx, tx, groupOf(&p.build), instanceUUIDs(p.insts)); err != nil {
			return err
		}
		// The instances, and every one bound to its security groups by
		// one statement (on PostgreSQL, the same).
		groups, err := netdb.CreateBound(ctx, tx, p.insts, p.resID, c.ProjectID, req.securityGroupIDs)
		if err != nil {
			return err
		}
		if err := serverGroupsOnNICs(ctx, tx, req.nics, p.build.Instances, groups); err != nil {
			return err
		}
		if err := createTags(ctx, tx, instanceUUIDs(p.insts), req.tags); err != nil {
			return err
		}
		if req.description != nil {
			for _, in := range p.insts {
				if err := apidb.UpdateServer(ctx, tx, in.UUID, apidb.ServerUpdate{SetDescription: true, Description: req.description}, p.now); err != nil {
					return err
				}
			}
		}
		// One message for the whole request: the cells service of this
		// cell schedules it across the cells below.
		return h.cfg.Sender.Send(ctx, tx, h.cfg.Cell, wire.MethodBuildInstances, p.rid, &p.build)
	})
}

// checkImage refuses an image the caller cannot boot, as Nova does: one
// that does not exist (or is not visible), is not active, or needs more
// RAM than the flavor has (checkFlavorDisk checks its disk). The image is returned with its
// properties (a build's placement constraints).
func checkImage(ctx context.Context, d *db.DB, id string, f wire.Flavor) (*imagedb.Image, error) {
	img, err := (&imagedb.Store{}).GetWithProperties(ctx, d, id)
	return checkImageFound(ctx, img, err, id, f)
}

// checkImageFound is checkImage of the image as read (img, or err).
func checkImageFound(ctx context.Context, img *imagedb.Image, err error, id string, f wire.Flavor) (*imagedb.Image, error) {
	c := httpkit.CallerFrom(ctx)
	if errors.Is(err, imagedb.ErrNotFound) || (err == nil && !img.VisibleTo(c.ProjectID, c.Admin)) {
		return nil, bad("Image %s could not be found.", id)
	}
	if err != nil {
		return nil, err
	}
	if img.Status != imagedb.StatusActive {
		return nil, bad("Image %s is not active.", id)
	}
	if int64(img.MinRAM) > f.RAMMB {
		return nil, bad("Flavor's memory is too small for requested image.")
	}
	return img, nil
}

// checkFlavorDisk is the rest of Nova's flavor and image check for a
// server whose root disk is local (the flavor's): the image's min_disk
// must fit it.
func checkFlavorDisk(img *imagedb.Image, f wire.Flavor) error {
	if f.RootGB > 0 && int64(img.MinDisk) > f.RootGB {
		return bad("Flavor's disk is too small for requested image.")
	}
	return nil
}

// autoDiskConfig is Nova's auto_disk_config of a server booted (or
// rebuilt) from an image with the image property prop: the one asked for
// ("AUTO" or "MANUAL"), or, when none was, the property read as a boolean.
// AUTO on an image whose property is "disabled" is a 400.
func autoDiskConfig(asked, imageID, prop string) (bool, error) {
	disabled := strings.EqualFold(strings.TrimSpace(prop), "disabled")
	switch asked {
	case "AUTO":
		if disabled {
			return false, bad("Requested image %s has automatic disk resize disabled.", imageID)
		}
		return true, nil
	case "MANUAL":
		return false, nil
	}
	return pyBool(prop), nil
}

// pyBool is oslo's strutils.bool_from_string (not strict): true for its
// true strings (trimmed, any case), false otherwise.
func pyBool(s string) bool {
	return slices.Contains(trueStrings, strings.ToLower(strings.TrimSpace(s)))
}

// cellHints turns the cell scheduler's hints into placement constraints:
// target_cell (a cell path, admins only, as in Nova's cells v1; others'
// are ignored), same_cell / different_cell (instance UUIDs, resolved to
// the cells that hold them), and group (a server group, for the host
// scheduler and, for affinity, its members' cell).
func (h *serversHandler) cellHints(r *http.Request, b *wire.BuildInstances) error {
	ctx := r.Context()
	if t := b.Hints["target_cell"]; len(t) > 0 && httpkit.CallerFrom(ctx).Admin {
		if len(t) != 1 || cellpath.Validate(t[0]) != nil || !cellpath.Contains(h.cfg.Cell, t[0]) {
			return bad("Invalid input for field/attribute os:scheduler_hints. target_cell %q is not a cell path below %q", strings.Join(t, ","), h.cfg.Cell)
		}
		b.TargetCell = t[0]
	}
	resolve := func(hint string) ([]string, error) {
		var out []string
		for _, id := range b.Hints[hint] {
			in, err := apidb.Get(ctx, h.cfg.DB, id)
			if errors.Is(err, apidb.ErrNotFound) || (err == nil && (in.Deleted || (!httpkit.CallerFrom(ctx).Admin && in.ProjectID != httpkit.CallerFrom(ctx).ProjectID))) {
				return nil, bad("Invalid input for field/attribute os:scheduler_hints. %s: instance %s could not be found", hint, id)
			}
			if err != nil {
				return nil, err
			}
			if in.Cell == "" {
				return nil, conflict("Instance %s named in %s has no cell yet; try again when it is built", id, hint)
			}
			out = append(out, in.Cell)
		}
		return out, nil
	}
	var err error
	if b.SameCell, err = resolve("same_cell"); err != nil {
		return err
	}
	if b.DifferentCell, err = resolve("different_cell"); err != nil {
		return err
	}
	// group: a server group's policy (see server_groups.go).
	return h.groups.groupPlacement(ctx, b)
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// bootNIC is one interface a create asks for, checked against the
// Networking API's data.
type bootNIC struct {
	nic wire.NIC
	// bindPort: nic.PortID is a port of the caller's, bound to the server
	// when the build is recorded.
	bindPort bool
	// fixedIP is an address asked for on the network: a port with it is
	// made for the server (portID, reserved first in the cell that holds
	// its block, if one does) when the build is recorded.
	fixedIP  string
	portID   string
	reserved map[string]string
	// tag is the interface's device tag ("": none).
	tag string
}

// checkNetworks checks the requested networks as Nova's validate_networks
// does and makes them the server's interfaces: a port must be the
// caller's (or the caller an admin), unbound and have an address; a
// network must be visible to the caller and have a subnet; a fixed IP
// must not be taken on it.
func checkNetworks(ctx context.Context, d *db.DB, nets []requestedNetwork) ([]bootNIC, error) {
	c := httpkit.CallerFrom(ctx)
	var out []bootNIC
	for _, rn := range nets {
		if rn.Port != "" {
			p, err := netdb.GetPort(ctx, d, rn.Port)
			if errors.Is(err, netdb.ErrNotFound) || (err == nil && !c.Admin && p.ProjectID != c.ProjectID) {
				return nil, bad("Port id %s could not be found.", rn.Port)
			}
			if err != nil {
				return nil, err
			}
			if p.DeviceID != "" {
				return nil, conflict("Port %s is still in use.", rn.Port)
			}
			if len(p.FixedIPs) == 0 {
				return nil, bad("Port %s requires a FixedIP in order to be used.", rn.Port)
			}
			nic := wire.NIC{NetworkID: p.NetworkID, NetworkName: p.NetworkName, PortID: p.ID, MAC: p.MACAddress}
			for _, ip := range p.FixedIPs {
				nic.FixedIPs = append(nic.FixedIPs, wire.FixedIP{SubnetID: ip.SubnetID, Addr: ip.IPAddress})
			}
			out = append(out, bootNIC{nic: nic, bindPort: true, tag: rn.Tag})
			continue
		}
		n, err := netdb.GetNetwork(ctx, d, rn.UUID)
		if errors.Is(err, netdb.ErrNotFound) || (err == nil && (n.ID != rn.UUID || !n.VisibleTo(c.ProjectID, c.Admin))) {
			return nil, bad("Network %s could not be found.", rn.UUID)
		}
		if err != nil {
			return nil, err
		}
		if len(n.Subnets) == 0 {
			return nil, bad("Network %s requires a subnet in order to boot instances on.", n.ID)
		}
		b := bootNIC{nic: wire.NIC{NetworkID: n.ID, NetworkName: n.Name}, tag: rn.Tag}
		if rn.FixedIP != "" {
			a, _ := netip.ParseAddr(rn.FixedIP)
			b.fixedIP = a.String()
			port, device, err := netdb.AddressUser(ctx, d, n.ID, b.fixedIP)
			if err != nil {
				return nil, err
			}
			if port != "" {
				return nil, bad("Fixed IP address %s is already in use on instance %s.", b.fixedIP, device)
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// reserveFixedIPs reserves, in the cells that hold their blocks, the fixed
// IPs a create asks for, for the ports to be made with them.
func (h *serversHandler) reserveFixedIPs(ctx context.Context, nics []bootNIC) error {
	for i := range nics {
		b := &nics[i]
		if b.fixedIP == "" {
			continue
		}
		b.portID = uuid.NewString()
		var err error
		b.reserved, err = netdb.ReserveAddresses(ctx, h.cfg.DB, h.cfg.Reserver, h.cfg.Sender, httpkit.RequestID(ctx), b.nic.NetworkID, b.portID,
			[]netdb.FixedIPRequest{{IPAddress: b.fixedIP}}, h.cfg.Now())
		if err != nil {
			h.releaseFixedIPs(ctx, nics)
			return bootPortError(err, b)
		}
	}
	return nil
}

// releaseFixedIPs releases the reservations of a create not recorded.
func (h *serversHandler) releaseFixedIPs(ctx context.Context, nics []bootNIC) {
	for _, b := range nics {
		if err := netdb.ReleaseReserved(ctx, h.cfg.DB, h.cfg.Sender, httpkit.RequestID(ctx), b.portID, b.reserved); err != nil {
			h.log.Warn("releasing the addresses reserved for a boot not recorded", "request_id", httpkit.RequestID(ctx), "port", b.portID, "err", err)
		}
	}
}

// bootPortError is a port refused on a boot as Nova answers it.
func bootPortError(err error, b *bootNIC) error {
	var ne *netdb.Error
	if !errors.As(err, &ne) {
		return err
	}
	switch ne.Code {
	case "IpAddressAlreadyAllocated", "IpAddressInUse":
		return bad("Fixed IP %s is already in use.", b.fixedIP)
	case "InvalidIpForNetwork", "InvalidIpForSubnet":
		return bad("Invalid input received: Fixed IP %s is not a valid ip address for network %s.", b.fixedIP, b.nic.NetworkID)
	case "PortInUse":
		return conflict("Port %s is still in use.", b.nic.PortID)
	}
	if errors.Is(err, netdb.ErrUnavailable) {
		return httpkit.Errorf(http.StatusServiceUnavailable, "%s", ne.Message)
	}
	return err
}

// recordNICs binds the ports passed in to the instance and makes the ports
// of the fixed IPs asked for, in tx, records the interfaces' device tags
// (netdb's devicetags.go) and gives the instance its NICs.
func recordNICs(ctx context.Context, tx *db.Tx, nics []bootNIC, in *apidb.Instance, spec *wire.InstanceSpec, now time.Time) error {
	if len(nics) == 0 {
		return nil
	}
	out := make([]wire.NIC, 0, len(nics))
	for i := range nics {
		b := &nics[i]
		nic := b.nic
		switch {
		case b.bindPort:
			if err := netdb.BindPort(ctx, tx, nic.PortID, spec.UUID, spec.AvailabilityZone, now); err != nil {
				return bootPortError(err, b)
			}
			// The port's own groups, port security and address pairs,
			// at its revision once bound.
			p, err := netdb.GetPort(ctx, tx, nic.PortID)
			if err != nil {
				return err
			}
			sgsync.NICFields(&nic, p)
		case b.fixedIP != "":
			p, err := netdb.CreatePort(ctx, tx, &netdb.NewPort{
				Port: netdb.Port{ID: b.portID, NetworkID: nic.NetworkID, ProjectID: spec.ProjectID, AdminStateUp: true, PortSecurity: true,
					DeviceID: spec.UUID, DeviceOwner: netdb.DeviceOwner(spec.AvailabilityZone), MadeBy: netdb.MadeByBoot, ServerGroups: true},
				FixedIPs: []netdb.FixedIPRequest{{IPAddress: b.fixedIP}}, Reserved: b.reserved}, now)
			if err != nil {
				return bootPortError(err, b)
			}
			nic.PortID, nic.MAC = p.ID, p.MACAddress
			// Its groups are the server's (serverGroupsOnNICs).
			sgsync.NICFields(&nic, p)
			for _, ip := range p.FixedIPs {
				nic.FixedIPs = append(nic.FixedIPs, wire.FixedIP{SubnetID: ip.SubnetID, Addr: ip.IPAddress})
			}
		case b.tag != "":
			// A tagged interface whose port its cell makes: its MAC is
			// chosen here, for its port to find its tag by.
			mac, err := netdb.NICMAC(ctx, tx, nic.NetworkID)
			if err != nil {
				return err
			}
			nic.MAC = mac
			if err := netdb.TagNIC(ctx, tx, spec.UUID, mac, b.tag); err != nil {
				return err
			}
		}
		if b.tag != "" && nic.PortID != "" {
			if err := netdb.SetDeviceTag(ctx, tx, nic.PortID, b.tag); err != nil {
				return err
			}
		}
		out = append(out, nic)
	}
	spec.NICs, in.NICs = out, out
	return nil
}

// serverGroupsOnNICs gives the NICs whose ports are the boot's (made by
// the cell, or for a fixed IP) the server's security groups, and each
// spec the groups of the interface its cell makes when it has no NICs;
// the addresses of the ports made for fixed IPs, recorded before the
// groups were bound, join the groups' members now.
func serverGroupsOnNICs(ctx context.Context, tx *db.Tx, nics []bootNIC, specs []wire.InstanceSpec, groups []string) error {
	var made []string
	for i := range specs {
		specs[i].SecurityGroups = groups
		for j := range specs[i].NICs {
			if j >= len(nics) || nics[j].bindPort {
				continue
			}
			nic := &specs[i].NICs[j]
			nic.SecurityGroups, nic.NoPortSecurity, nic.PortRevision = groups, false, max(nic.PortRevision, 1)
			if nics[j].fixedIP != "" && nic.PortID != "" {
				made = append(made, nic.PortID)
			}
		}
	}
	if len(made) == 0 {
		return nil
	}
	return netdb.LogPortMembers(ctx, tx, made)
}

func randomString(n int) string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// groupOf is the server group a build joins, "" for none.
func groupOf(b *wire.BuildInstances) string {
	if b.Group == nil {
		return ""
	}
	return b.Group.UUID
}

// instanceUUIDs are the uuids of insts.
func instanceUUIDs(insts []apidb.Instance) []string {
	out := make([]string, len(insts))
	for i, in := range insts {
		out[i] = in.UUID
	}
	return out
}
