package compute

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// maxUserData is Nova's limit on base64 user_data (65535 bytes).
const maxUserData = 65535

// maxCount bounds a multi-create.
const maxCount = 1000

// createFields are the "server" fields the 2.1 create schema allows.
var createFields = []string{
	"name", "imageRef", "flavorRef", "adminPass", "metadata", "networks", "personality", "key_name", "user_data",
	"availability_zone", "min_count", "max_count", "return_reservation_id", "security_groups", "config_drive",
	"description", "tags",
	"accessIPv4", "accessIPv6", "OS-DCF:diskConfig", "block_device_mapping", "block_device_mapping_v2",
	"trusted_image_certificates",
}

type createBody struct {
	Name              *string           `json:"name"`
	ImageRef          *string           `json:"imageRef"`
	FlavorRef         json.RawMessage   `json:"flavorRef"`
	AdminPass         *string           `json:"adminPass"`
	Metadata          map[string]any    `json:"metadata"`
	Networks          json.RawMessage   `json:"networks"`
	KeyName           *string           `json:"key_name"`
	UserData          *string           `json:"user_data"`
	AvailabilityZone  *string           `json:"availability_zone"`
	MinCount          json.RawMessage   `json:"min_count"`
	MaxCount          json.RawMessage   `json:"max_count"`
	ReturnReservation json.RawMessage   `json:"return_reservation_id"`
	Description       json.RawMessage   `json:"description"`
	Tags              json.RawMessage   `json:"tags"`
	SecurityGroups    []json.RawMessage `json:"security_groups"`
}

// createServer is POST /servers: read and check the request, plan the
// instances and their build message, record them with the quota checked,
// and answer with the first server (or the reservation id).
func (h *serversHandler) createServer(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, err := readCreate(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	flavor, err := h.checkCreateRefs(ctx, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p, err := h.planBuild(r, req, flavor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c := httpkit.CallerFrom(ctx)
	if err := h.quota.checkMetadataItems(ctx, h.cfg.DB, c.ProjectID, c.UserID, len(req.metadata)); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.recordBuild(ctx, req, p); err != nil {
		h.fail(w, r, err)
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
		"links":             links(baseURL(r), c.ProjectID, "servers", first.UUID),
		"OS-DCF:diskConfig": "MANUAL",
		"security_groups":   []map[string]string{{"name": "default"}},
		"adminPass":         pass,
	}})
}

// readCreate reads a create request's body and checks it against Nova's
// schema (validateCreate).
func readCreate(w http.ResponseWriter, r *http.Request) (*createRequest, error) {
	top, raw, err := decodeBody(w, r, "server")
	if err != nil {
		return nil, err
	}
	for k := range top {
		if k != "server" && k != "os:scheduler_hints" && k != "OS-SCH-HNT:scheduler_hints" {
			return nil, bad("Invalid input for field/attribute. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, bad("Invalid input for field/attribute server. Value: %s. %s is not of type 'object'", raw, raw)
	}
	for k := range fields {
		// 2.57 removed personality (file injection).
		if !slices.Contains(createFields, k) || (k == "personality" && atLeast(r, 57)) ||
			(k == "trusted_image_certificates" && !atLeast(r, 63)) {
			return nil, bad("Invalid input for field/attribute server. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	if err := checkTrustedCerts(fields["trusted_image_certificates"]); err != nil {
		return nil, err
	}
	var body createBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, bad("Invalid input for field/attribute server: %v", jsonFieldError(err))
	}
	return validateCreate(apiVersion(r.Context()), &body, top)
}

// checkCreateRefs checks what a create request names against what
// exists and the caller may use: the flavor (returned), the key pair, the
// networks, the zone and the image.
func (h *serversHandler) checkCreateRefs(ctx context.Context, req *createRequest) (wire.Flavor, error) {
	c := httpkit.CallerFrom(ctx)
	// A private flavor is bootable only by admins and the projects given it.
	fd, err := apidb.GetFlavorDetail(ctx, h.cfg.DB, req.flavorRef, apidb.FlavorViewer{ProjectID: c.ProjectID, Admin: c.Admin})
	if errors.Is(err, apidb.ErrNotFound) || (err == nil && fd.Disabled) {
		return wire.Flavor{}, bad("Flavor %s could not be found.", req.flavorRef)
	}
	if err != nil {
		return wire.Flavor{}, err
	}
	if req.keyName != "" {
		if _, err := apidb.GetKeyPair(ctx, h.cfg.DB, c.UserID, req.keyName); errors.Is(err, apidb.ErrNotFound) {
			return wire.Flavor{}, bad("Invalid key_name provided.")
		} else if err != nil {
			return wire.Flavor{}, err
		}
	}
	if err := h.checkNetworks(ctx, req.networks); err != nil {
		return wire.Flavor{}, err
	}
	if err := h.checkZone(ctx, req.az); err != nil {
		return wire.Flavor{}, err
	}
	if err := h.checkImage(ctx, req.imageRef, fd.Flavor); err != nil {
		return wire.Flavor{}, err
	}
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
		build: wire.BuildInstances{Flavor: flavor, Hints: req.hints, Scheduler: h.cfg.Cell, Attempts: 1, NoNetwork: req.noNetwork},
		rid:   httpkit.RequestID(ctx), resID: "r-" + randomString(8), now: h.cfg.Now().UTC(),
	}
	if err := h.cellHints(r, &p.build); err != nil {
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
		p.insts[i] = apidb.Instance{InstanceSpec: spec, FlavorID: flavor.ID, Flavor: flavor, VMState: "building", TaskState: "scheduling", RequestID: p.rid}
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
		n, err := h.quota.fitInstances(ctx, tx, c.ProjectID, c.UserID, p.build.Flavor, req.minCount, req.count)
		if err != nil {
			return err
		}
		p.insts, p.build.Instances = all[:n], allSpecs[:n]
		if g := groupOf(&p.build); g != "" {
			if err := h.quota.checkGroupMembers(ctx, tx, g, c.ProjectID, c.UserID, n); err != nil {
				return err
			}
		}
		if err := apidb.Create(ctx, tx, p.insts); err != nil {
			return err
		}
		if err := h.groups.addGroupMembers(ctx, tx, groupOf(&p.build), instanceUUIDs(p.insts)); err != nil {
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
// RAM or disk than the flavor has.
func (h *serversHandler) checkImage(ctx context.Context, id string, f wire.Flavor) error {
	c := httpkit.CallerFrom(ctx)
	img, err := (&imagedb.Store{}).GetWithoutDetails(ctx, h.cfg.DB, id)
	if errors.Is(err, imagedb.ErrNotFound) || (err == nil && !img.VisibleTo(c.ProjectID, c.Admin)) {
		return bad("Image %s could not be found.", id)
	}
	if err != nil {
		return err
	}
	if img.Status != imagedb.StatusActive {
		return bad("Image %s is not active.", id)
	}
	if int64(img.MinRAM) > f.RAMMB {
		return bad("Flavor's memory is too small for requested image.")
	}
	if f.RootGB > 0 && int64(img.MinDisk) > f.RootGB {
		return bad("Flavor's disk is too small for requested image.")
	}
	return nil
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

type createRequest struct {
	name, imageRef, flavorRef, keyName, userData, az, adminPass string
	metadata                                                    map[string]string
	count                                                       int
	// minCount is the fewest instances the request accepts (min_count).
	minCount          int
	returnReservation bool
	hints             map[string][]string
	networks          []requestedNetwork
	noNetwork         bool
	// description is the server's description (2.19; before, Nova stores
	// the name); tags are given from 2.52.
	description *string
	tags        []string
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// validateCreate checks a create request as Nova's 2.1 schema does, one
// group of fields after the other, in Nova's order (the first error is
// the answer).
func validateCreate(ver Version, b *createBody, top map[string]json.RawMessage) (*createRequest, error) {
	out := &createRequest{count: 1}
	for _, check := range []func(Version, *createBody, *createRequest) error{
		createName, createFlavorRef, createImageRef, createDescriptionAndTags,
		createNamedFields, createMetadata, createNetworks, createCounts,
	} {
		if err := check(ver, b, out); err != nil {
			return nil, err
		}
	}
	hints, err := parseHints(top)
	if err != nil {
		return nil, err
	}
	out.hints = hints
	return out, nil
}

// createName checks name: Nova's 2.1 schema (parameter_types.name), 1 to
// 255 characters, not starting or ending with whitespace.
func createName(_ Version, b *createBody, out *createRequest) error {
	if b.Name == nil {
		return bad("Invalid input for field/attribute server. Value: None. 'name' is a required property")
	}
	name := *b.Name
	if strings.TrimSpace(name) != name || name == "" || len(name) > 255 {
		return bad("Invalid input for field/attribute name. Value: %s. '%s' does not match the server name rules (1 to 255 printable characters, not starting or ending with whitespace)", name, name)
	}
	out.name = name
	return nil
}

// createFlavorRef checks flavorRef: an id (string or positive integer),
// or a URL that names the id last, as Nova accepts.
func createFlavorRef(_ Version, b *createBody, out *createRequest) error {
	if len(b.FlavorRef) == 0 {
		return bad("Invalid input for field/attribute server. Value: None. 'flavorRef' is a required property")
	}
	var fs string
	var fi int64
	switch {
	case json.Unmarshal(b.FlavorRef, &fs) == nil && strings.TrimSpace(fs) != "":
		out.flavorRef = fs
	case json.Unmarshal(b.FlavorRef, &fi) == nil && fi > 0:
		out.flavorRef = strconv.FormatInt(fi, 10)
	default:
		return bad("Invalid input for field/attribute flavorRef. Value: %s. %s is not valid under any of the given schemas", b.FlavorRef, b.FlavorRef)
	}
	if i := strings.LastIndex(out.flavorRef, "/"); i >= 0 {
		out.flavorRef = out.flavorRef[i+1:]
	}
	return nil
}

// createImageRef checks imageRef (a UUID, or a URL ending in one; booting
// from a volume is not supported), and takes adminPass.
func createImageRef(_ Version, b *createBody, out *createRequest) error {
	if b.ImageRef == nil || *b.ImageRef == "" {
		return bad("Invalid input for field/attribute server. 'imageRef' is required: booting from a volume is not supported")
	}
	img := *b.ImageRef
	if i := strings.LastIndex(img, "/"); i >= 0 {
		img = img[i+1:]
	}
	if !uuidRE.MatchString(img) {
		return bad("Invalid input for field/attribute imageRef. Value: %s. '%s' is not a 'uuid'", *b.ImageRef, *b.ImageRef)
	}
	out.imageRef = strings.ToLower(img)
	if b.AdminPass != nil {
		out.adminPass = *b.AdminPass
	}
	return nil
}

// createDescriptionAndTags checks description (2.19; before, Nova stores
// the name) and tags (2.52).
func createDescriptionAndTags(ver Version, b *createBody, out *createRequest) error {
	switch {
	case len(b.Description) > 0 && !ver.AtLeast(Version{2, 19}):
		return bad("Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)")
	case len(b.Description) > 0 && !isNull(b.Description):
		var d string
		if err := json.Unmarshal(b.Description, &d); err != nil || len(d) > 255 {
			return bad("Invalid input for field/attribute description. Value: %s. must be a string of at most 255 characters", b.Description)
		}
		out.description = &d
	case !ver.AtLeast(Version{2, 19}):
		out.description = &out.name
	}
	if len(b.Tags) > 0 {
		if !ver.AtLeast(Version{2, 52}) {
			return bad("Invalid input for field/attribute server. Additional properties are not allowed ('tags' was unexpected)")
		}
		tags, err := parseCreateTags(b.Tags)
		if err != nil {
			return err
		}
		out.tags = tags
	}
	return nil
}

// createNamedFields checks key_name, availability_zone and user_data.
func createNamedFields(_ Version, b *createBody, out *createRequest) error {
	if b.KeyName != nil {
		if *b.KeyName == "" || len(*b.KeyName) > 255 {
			return bad("Invalid input for field/attribute key_name. Value: %s. must be 1 to 255 characters", *b.KeyName)
		}
		out.keyName = *b.KeyName
	}
	if b.AvailabilityZone != nil {
		if *b.AvailabilityZone == "" || len(*b.AvailabilityZone) > 255 {
			return bad("Invalid input for field/attribute availability_zone. Value: %s. must be 1 to 255 characters", *b.AvailabilityZone)
		}
		out.az = *b.AvailabilityZone
	}
	if b.UserData != nil {
		if len(*b.UserData) > maxUserData {
			return bad("Invalid input for field/attribute user_data. Value: (%d bytes). is too long (at most %d)", len(*b.UserData), maxUserData)
		}
		if _, err := base64.StdEncoding.DecodeString(*b.UserData); err != nil {
			return bad("Invalid input for field/attribute user_data. Value: %s. is not a 'base64'", abbreviate(*b.UserData))
		}
		out.userData = *b.UserData
	}
	return nil
}

// createMetadata checks metadata: strings, keys of 1 to 255 characters
// and values of at most 255.
func createMetadata(_ Version, b *createBody, out *createRequest) error {
	if b.Metadata == nil {
		return nil
	}
	out.metadata = map[string]string{}
	for k, v := range b.Metadata {
		s, ok := v.(string)
		if !ok {
			return bad("Invalid input for field/attribute metadata. Value: %v. %v is not of type 'string'", v, v)
		}
		if k == "" || len(k) > 255 || len(s) > 255 {
			return bad("Invalid input for field/attribute metadata. Keys must be 1 to 255 characters and values at most 255 (key %q)", k)
		}
		out.metadata[k] = s
	}
	return nil
}

// createNetworks checks networks: from 2.37 it is required, and may be
// "auto" (the default network) or "none" (no network at all).
func createNetworks(ver Version, b *createBody, out *createRequest) error {
	var mode string
	if ver.AtLeast(Version{2, 37}) {
		if len(b.Networks) == 0 {
			return bad("Invalid input for field/attribute server. Value: %s. 'networks' is a required property", "{...}")
		}
		if json.Unmarshal(b.Networks, &mode) == nil && mode != "auto" && mode != "none" {
			return bad("Invalid input for field/attribute networks. Value: %s. '%s' is not one of ['none', 'auto']", mode, mode)
		}
	}
	switch {
	case mode == "none":
		out.noNetwork = true
	case mode == "auto":
	case len(b.Networks) > 0:
		nets, err := validateNetworks(b.Networks)
		if err != nil {
			return err
		}
		out.networks = nets
	}
	return nil
}

// createCounts checks min_count, max_count and return_reservation_id.
func createCounts(_ Version, b *createBody, out *createRequest) error {
	minC, err := countField("min_count", b.MinCount)
	if err != nil {
		return err
	}
	maxC, err := countField("max_count", b.MaxCount)
	if err != nil {
		return err
	}
	switch {
	case minC == 0 && maxC == 0:
		out.count, out.minCount = 1, 1
	case maxC == 0:
		out.count, out.minCount = minC, minC
	case minC == 0:
		out.count, out.minCount = maxC, 1
	default:
		if minC > maxC {
			return bad("min_count must be <= max_count")
		}
		out.count, out.minCount = maxC, minC
	}
	if out.count > maxCount {
		return bad("Invalid input for field/attribute max_count. Value: %d. %d is greater than the maximum of %d", out.count, out.count, maxCount)
	}
	if len(b.ReturnReservation) > 0 {
		v, ok := parseBool(b.ReturnReservation)
		if !ok {
			return bad("Invalid input for field/attribute return_reservation_id. Value: %s. is not a 'boolean'", b.ReturnReservation)
		}
		out.returnReservation = v
	}
	return nil
}

func countField(name string, raw json.RawMessage) (int, error) {
	if len(raw) == 0 {
		return 0, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if v, err := strconv.ParseInt(s, 10, 64); err == nil {
				n = v
			} else {
				return 0, bad("Invalid input for field/attribute %s. Value: %s. '%s' is not a 'integer'", name, s, s)
			}
		} else {
			return 0, bad("Invalid input for field/attribute %s. Value: %s. is not of type 'integer'", name, raw)
		}
	}
	if n < 1 {
		return 0, bad("Invalid input for field/attribute %s. Value: %d. %d is less than the minimum of 1", name, n, n)
	}
	if n > maxCount {
		return 0, bad("Invalid input for field/attribute %s. Value: %d. %d is greater than the maximum of %d", name, n, n, maxCount)
	}
	return int(n), nil
}

func parseBool(raw json.RawMessage) (bool, bool) {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch strings.ToLower(s) {
		case "true", "1", "yes", "on", "t", "y":
			return true, true
		case "false", "0", "no", "off", "f", "n":
			return false, true
		}
	}
	return false, false
}

// requestedNetwork is one entry of "networks" in a create.
type requestedNetwork struct {
	UUID    string `json:"uuid"`
	Port    string `json:"port"`
	FixedIP string `json:"fixed_ip"`
}

func validateNetworks(raw json.RawMessage) ([]requestedNetwork, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return nil, bad("Invalid input for field/attribute networks. Value: %s. '%s' is not of type 'array' (auto and none need microversion 2.37)", s, s)
	}
	var nets []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &nets); err != nil {
		return nil, bad("Invalid input for field/attribute networks. Value: %s. is not of type 'array'", raw)
	}
	out := make([]requestedNetwork, 0, len(nets))
	for _, n := range nets {
		for k := range n {
			if k != "uuid" && k != "port" && k != "fixed_ip" && k != "tag" {
				return nil, bad("Invalid input for field/attribute networks. Additional properties are not allowed ('%s' was unexpected)", k)
			}
		}
		b, _ := json.Marshal(n)
		var rn requestedNetwork
		if err := json.Unmarshal(b, &rn); err != nil {
			return nil, bad("Invalid input for field/attribute networks: %v", jsonFieldError(err))
		}
		if rn.UUID == "" && rn.Port == "" {
			return nil, bad("Invalid input for field/attribute networks. Each network needs a uuid or a port")
		}
		out = append(out, rn)
	}
	return out, nil
}

// checkZone refuses an availability zone that no cell reports, as Nova
// refuses one no host is in.
func (h *serversHandler) checkZone(ctx context.Context, zone string) error {
	if zone == "" {
		return nil
	}
	if strings.Contains(zone, ":") {
		return bad("Forcing a host with availability_zone %q (zone:host) is not supported; give the zone only", zone)
	}
	ns, err := cells.ListNeighbours(ctx, h.cfg.DB)
	if err != nil {
		return err
	}
	for _, n := range ns {
		if n.Relation == cells.Child && n.Report != nil && slices.Contains(n.Report.AvailabilityZones, zone) {
			return nil
		}
	}
	return bad("The requested availability zone is not available")
}

// servedNetwork is the network the compute cells allocate fixed IPs from.
const servedNetwork = "private"

// checkNetworks checks the requested networks: each must exist and be
// visible to the caller, and be the network the cells serve addresses
// from; ports cannot be passed in (they are made by the compute cells).
func (h *serversHandler) checkNetworks(ctx context.Context, nets []requestedNetwork) error {
	c := httpkit.CallerFrom(ctx)
	for _, rn := range nets {
		if rn.Port != "" {
			return bad("Port %s could not be found: ports are created by the compute service in this cloud; pass a network uuid instead", rn.Port)
		}
		n, err := netdb.GetNetwork(ctx, h.cfg.DB, rn.UUID)
		if errors.Is(err, netdb.ErrNotFound) || (err == nil && (n.ID != rn.UUID || !n.VisibleTo(c.ProjectID, c.Admin))) {
			return bad("Network %s could not be found.", rn.UUID)
		}
		if err != nil {
			return err
		}
		if n.Name != servedNetwork {
			return bad("Network %s (%s) has no addresses to give in any cell; boot on network %q", rn.UUID, n.Name, servedNetwork)
		}
	}
	return nil
}

func parseHints(top map[string]json.RawMessage) (map[string][]string, error) {
	raw, ok := top["os:scheduler_hints"]
	if !ok {
		raw, ok = top["OS-SCH-HNT:scheduler_hints"]
	}
	if !ok {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, bad("Invalid input for field/attribute os:scheduler_hints. Value: %s. is not of type 'object'", raw)
	}
	out := map[string][]string{}
	for k, v := range m {
		switch t := v.(type) {
		case string:
			out[k] = []string{t}
		case []any:
			for _, e := range t {
				s, ok := e.(string)
				if !ok {
					return nil, bad("Invalid input for field/attribute os:scheduler_hints. Hint %q holds a non-string", k)
				}
				out[k] = append(out[k], s)
			}
		default:
			out[k] = []string{fmt.Sprint(t)}
		}
	}
	return out, nil
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

// checkTrustedCerts checks trusted_image_certificates (2.63) as Nova's
// schema does. A list of certificates is then refused: no driver here
// can verify an image's signature, and a cloud must not accept
// certificates it will not check. null (or absent) is accepted.
func checkTrustedCerts(raw json.RawMessage) error {
	const f = "trusted_image_certificates"
	if isNull(raw) {
		return nil
	}
	var val any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&val); err != nil {
		return bad("Invalid input for field/attribute %s. Value: %s. is not valid JSON", f, raw)
	}
	items, ok := val.([]any)
	if !ok {
		return invalid(f, val, "%s is not of type 'array', 'null'", pyRepr(val))
	}
	switch {
	case len(items) == 0:
		return invalid(f, val, "[] should be non-empty")
	case len(items) > 50:
		return invalid(f, val, "%s is too long", pyRepr(val))
	}
	seen := map[string]bool{}
	for i, it := range items {
		s, ok := it.(string)
		if !ok {
			return invalid(strconv.Itoa(i), it, "%s is not of type 'string'", pyRepr(it))
		}
		if s == "" {
			return bad("Invalid input for field/attribute %d. Value: . '' should be non-empty", i)
		}
		if seen[s] {
			return invalid(f, val, "%s has non-unique elements", pyRepr(val))
		}
		seen[s] = true
	}
	return bad("Image certificate validation is not supported: this cloud's hypervisor drivers cannot verify image signatures.")
}

// createTags gives each new server the tags of a create request (2.52),
// inside the create's transaction; call it right after apidb.Create. The
// tags are checked as Nova's create schema does (checkServerTags): a bad
// one is a 400 and, since the transaction then rolls back, nothing is
// written.
func createTags(ctx context.Context, tx *db.Tx, uuids []string, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	list := make([]any, len(tags))
	for i, t := range tags {
		list[i] = t
	}
	if _, err := checkServerTags(list); err != nil {
		return err
	}
	return apidb.AddTags(ctx, tx, uuids, tags)
}
