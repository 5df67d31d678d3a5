package compute

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apidb"
	"github.com/cellcloud/cellcloud/internal/cellpath"
	"github.com/cellcloud/cellcloud/internal/cells"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/imagedb"
	"github.com/cellcloud/cellcloud/internal/netdb"
	"github.com/cellcloud/cellcloud/internal/vmstate"
	"github.com/cellcloud/cellcloud/internal/wire"
)

// maxBody bounds a request body (Nova's osapi_max_request_body_size).
const maxBody = 112 << 10

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

type badRequest string

func (b badRequest) Error() string { return string(b) }

func bad(format string, a ...any) error { return badRequest(fmt.Sprintf(format, a...)) }

// decodeBody reads a JSON object body with one top-level key.
func decodeBody(w http.ResponseWriter, r *http.Request, key string) (map[string]json.RawMessage, json.RawMessage, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, nil, &httpError{http.StatusRequestEntityTooLarge, "Request is too large."}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil || top == nil {
		return nil, nil, bad("Malformed request body")
	}
	inner, ok := top[key]
	if !ok {
		return nil, nil, bad("Invalid input for field/attribute %s. Value: None. '%s' is a required property", key, key)
	}
	return top, inner, nil
}

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var br badRequest
	var he *httpError
	if qe, ok := quotaError(err); ok {
		he = qe
	}
	switch {
	case he != nil:
		writeFault(w, he.status, he.msg)
	case errors.As(err, &br):
		writeFault(w, http.StatusBadRequest, string(br))
	case errors.As(err, &he):
		writeFault(w, he.status, he.msg)
	default:
		a.log.Error("request failed", "request_id", requestID(r.Context()), "err", err)
		writeFault(w, http.StatusInternalServerError, "Unexpected API Error. Please report this at the cellcloud issue tracker.")
	}
}

func (a *API) createServer(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := caller(ctx)
	top, raw, err := decodeBody(w, r, "server")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	for k := range top {
		if k != "server" && k != "os:scheduler_hints" && k != "OS-SCH-HNT:scheduler_hints" {
			a.fail(w, r, bad("Invalid input for field/attribute. Additional properties are not allowed ('%s' was unexpected)", k))
			return
		}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		a.fail(w, r, bad("Invalid input for field/attribute server. Value: %s. %s is not of type 'object'", raw, raw))
		return
	}
	for k := range fields {
		// 2.57 removed personality (file injection).
		if !slices.Contains(createFields, k) || (k == "personality" && apiVersion(ctx).AtLeast(Version{2, 57})) ||
			(k == "trusted_image_certificates" && !atLeast(r, 63)) {
			a.fail(w, r, bad("Invalid input for field/attribute server. Additional properties are not allowed ('%s' was unexpected)", k))
			return
		}
	}
	if err := checkTrustedCerts(fields["trusted_image_certificates"]); err != nil {
		a.fail(w, r, err)
		return
	}
	var body createBody
	if err := json.Unmarshal(raw, &body); err != nil {
		a.fail(w, r, bad("Invalid input for field/attribute server: %v", jsonFieldError(err)))
		return
	}
	req, err := a.validateCreate(r, &body, top)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// A private flavor is bootable only by admins and the projects given it.
	fd, err := apidb.GetFlavorDetail(ctx, a.cfg.DB, req.flavorRef, apidb.FlavorViewer{ProjectID: c.ProjectID, Admin: c.Admin})
	if errors.Is(err, apidb.ErrNotFound) || (err == nil && fd.Disabled) {
		a.fail(w, r, bad("Flavor %s could not be found.", req.flavorRef))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	flavor := fd.Flavor
	if req.keyName != "" {
		if _, err := apidb.GetKeyPair(ctx, a.cfg.DB, c.UserID, req.keyName); errors.Is(err, apidb.ErrNotFound) {
			a.fail(w, r, bad("Invalid key_name provided."))
			return
		} else if err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if err := a.checkNetworks(ctx, req.networks); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.checkZone(ctx, req.az); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.checkImage(ctx, req.imageRef, flavor); err != nil {
		a.fail(w, r, err)
		return
	}
	now := a.cfg.Now().UTC()
	rid := requestID(ctx)
	resID := "r-" + randomString(8)
	insts := make([]apidb.Instance, req.count)
	build := wire.BuildInstances{Flavor: flavor, Hints: req.hints, Scheduler: a.cfg.Cell, Attempts: 1, NoNetwork: req.noNetwork}
	if err := a.cellHints(r, &build); err != nil {
		a.fail(w, r, err)
		return
	}
	for i := range insts {
		name := req.name
		if req.count > 1 {
			name = fmt.Sprintf("%s-%d", req.name, i+1)
		}
		spec := wire.InstanceSpec{
			UUID: uuid.NewString(), Name: name, ProjectID: c.ProjectID, UserID: c.UserID, ImageRef: req.imageRef,
			KeyName: req.keyName, UserData: req.userData, Metadata: req.metadata, AvailabilityZone: req.az,
			ReservationID: resID, LaunchIndex: i, CreatedAt: now,
		}
		insts[i] = apidb.Instance{InstanceSpec: spec, FlavorID: flavor.ID, Flavor: flavor, VMState: "building", TaskState: "scheduling", RequestID: rid}
		build.Instances = append(build.Instances, spec)
	}
	if err := a.checkMetadataItems(ctx, a.cfg.DB, c.ProjectID, c.UserID, len(req.metadata)); err != nil {
		a.fail(w, r, err)
		return
	}
	all, allSpecs := insts, build.Instances
	err = a.cfg.DB.Group(ctx, func(tx *db.Tx) error {
		// Quota: as many as fit, counted here with the records written
		// below in the same transaction (the retry of a transaction starts
		// from the full request again).
		n, err := a.fitInstances(ctx, tx, c.ProjectID, c.UserID, flavor, req.minCount, req.count)
		if err != nil {
			return err
		}
		insts, build.Instances = all[:n], allSpecs[:n]
		if g := groupOf(&build); g != "" {
			if err := a.checkGroupMembers(ctx, tx, g, c.ProjectID, c.UserID, n); err != nil {
				return err
			}
		}
		if err := apidb.Create(ctx, tx, insts); err != nil {
			return err
		}
		if err := a.addGroupMembers(ctx, tx, groupOf(&build), instanceUUIDs(insts)); err != nil {
			return err
		}
		if err := a.createTags(ctx, tx, instanceUUIDs(insts), req.tags); err != nil {
			return err
		}
		if req.description != nil {
			for _, in := range insts {
				if err := apidb.UpdateServer(ctx, tx, in.UUID, apidb.ServerUpdate{SetDescription: true, Description: req.description}, now); err != nil {
					return err
				}
			}
		}
		// One message for the whole request: the cells service of this
		// cell schedules it across the cells below.
		return a.cfg.Sender.Send(ctx, tx, a.cfg.Cell, wire.MethodBuildInstances, rid, &build)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("build requested", "request_id", rid, "instances", len(insts), "asked", req.count, "flavor", flavor.Name, "reservation_id", resID)
	if req.returnReservation {
		writeJSON(w, http.StatusAccepted, map[string]any{"reservation_id": resID})
		return
	}
	first := insts[0]
	pass := req.adminPass
	if pass == "" {
		pass = randomString(12)
	}
	base := baseURL(r)
	writeJSON(w, http.StatusAccepted, map[string]any{"server": map[string]any{
		"id":                first.UUID,
		"links":             links(base, c.ProjectID, "servers", first.UUID),
		"OS-DCF:diskConfig": "MANUAL",
		"security_groups":   []map[string]string{{"name": "default"}},
		"adminPass":         pass,
	}})
}

// checkImage refuses an image the caller cannot boot, as Nova does: one
// that does not exist (or is not visible), is not active, or needs more
// RAM or disk than the flavor has.
func (a *API) checkImage(ctx context.Context, id string, f wire.Flavor) error {
	c := caller(ctx)
	img, err := (&imagedb.Store{}).GetWithoutDetails(ctx, a.cfg.DB, id)
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
func (a *API) cellHints(r *http.Request, b *wire.BuildInstances) error {
	ctx := r.Context()
	if t := b.Hints["target_cell"]; len(t) > 0 && caller(ctx).Admin {
		if len(t) != 1 || cellpath.Validate(t[0]) != nil || !cellpath.Contains(a.cfg.Cell, t[0]) {
			return bad("Invalid input for field/attribute os:scheduler_hints. target_cell %q is not a cell path below %q", strings.Join(t, ","), a.cfg.Cell)
		}
		b.TargetCell = t[0]
	}
	resolve := func(hint string) ([]string, error) {
		var out []string
		for _, id := range b.Hints[hint] {
			in, err := apidb.Get(ctx, a.cfg.DB, id)
			if errors.Is(err, apidb.ErrNotFound) || (err == nil && (in.Deleted || (!caller(ctx).Admin && in.ProjectID != caller(ctx).ProjectID))) {
				return nil, bad("Invalid input for field/attribute os:scheduler_hints. %s: instance %s could not be found", hint, id)
			}
			if err != nil {
				return nil, err
			}
			if in.Cell == "" {
				return nil, &httpError{http.StatusConflict, fmt.Sprintf("Instance %s named in %s has no cell yet; try again when it is built", id, hint)}
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
	return a.groupPlacement(ctx, b)
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

// validateCreate checks a create request as Nova's 2.1 schema does.
func (a *API) validateCreate(r *http.Request, b *createBody, top map[string]json.RawMessage) (*createRequest, error) {
	out := &createRequest{count: 1}
	if b.Name == nil {
		return nil, bad("Invalid input for field/attribute server. Value: None. 'name' is a required property")
	}
	name := *b.Name
	// Nova's 2.1 schema (parameter_types.name): 1 to 255 characters, not
	// starting or ending with whitespace.
	if strings.TrimSpace(name) != name || name == "" || len(name) > 255 {
		return nil, bad("Invalid input for field/attribute name. Value: %s. '%s' does not match the server name rules (1 to 255 printable characters, not starting or ending with whitespace)", name, name)
	}
	out.name = name
	if len(b.FlavorRef) == 0 {
		return nil, bad("Invalid input for field/attribute server. Value: None. 'flavorRef' is a required property")
	}
	var fs string
	var fi int64
	switch {
	case json.Unmarshal(b.FlavorRef, &fs) == nil && strings.TrimSpace(fs) != "":
		out.flavorRef = fs
	case json.Unmarshal(b.FlavorRef, &fi) == nil && fi > 0:
		out.flavorRef = strconv.FormatInt(fi, 10)
	default:
		return nil, bad("Invalid input for field/attribute flavorRef. Value: %s. %s is not valid under any of the given schemas", b.FlavorRef, b.FlavorRef)
	}
	// A flavor given as a URL names its id last, as Nova accepts.
	if i := strings.LastIndex(out.flavorRef, "/"); i >= 0 {
		out.flavorRef = out.flavorRef[i+1:]
	}
	if b.ImageRef == nil || *b.ImageRef == "" {
		return nil, bad("Invalid input for field/attribute server. 'imageRef' is required: booting from a volume is not supported")
	}
	img := *b.ImageRef
	if i := strings.LastIndex(img, "/"); i >= 0 {
		img = img[i+1:]
	}
	if !uuidRE.MatchString(img) {
		return nil, bad("Invalid input for field/attribute imageRef. Value: %s. '%s' is not a 'uuid'", *b.ImageRef, *b.ImageRef)
	}
	out.imageRef = strings.ToLower(img)
	if b.AdminPass != nil {
		out.adminPass = *b.AdminPass
	}
	ver := apiVersion(r.Context())
	switch {
	case len(b.Description) > 0 && !ver.AtLeast(Version{2, 19}):
		return nil, bad("Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)")
	case len(b.Description) > 0 && !isNull(b.Description):
		var d string
		if err := json.Unmarshal(b.Description, &d); err != nil || len(d) > 255 {
			return nil, bad("Invalid input for field/attribute description. Value: %s. must be a string of at most 255 characters", b.Description)
		}
		out.description = &d
	case !ver.AtLeast(Version{2, 19}):
		out.description = &out.name
	}
	if len(b.Tags) > 0 {
		if !ver.AtLeast(Version{2, 52}) {
			return nil, bad("Invalid input for field/attribute server. Additional properties are not allowed ('tags' was unexpected)")
		}
		tags, err := parseCreateTags(b.Tags)
		if err != nil {
			return nil, err
		}
		out.tags = tags
	}
	if b.KeyName != nil {
		if *b.KeyName == "" || len(*b.KeyName) > 255 {
			return nil, bad("Invalid input for field/attribute key_name. Value: %s. must be 1 to 255 characters", *b.KeyName)
		}
		out.keyName = *b.KeyName
	}
	if b.AvailabilityZone != nil {
		if *b.AvailabilityZone == "" || len(*b.AvailabilityZone) > 255 {
			return nil, bad("Invalid input for field/attribute availability_zone. Value: %s. must be 1 to 255 characters", *b.AvailabilityZone)
		}
		out.az = *b.AvailabilityZone
	}
	if b.UserData != nil {
		if len(*b.UserData) > maxUserData {
			return nil, bad("Invalid input for field/attribute user_data. Value: (%d bytes). is too long (at most %d)", len(*b.UserData), maxUserData)
		}
		if _, err := base64.StdEncoding.DecodeString(*b.UserData); err != nil {
			return nil, bad("Invalid input for field/attribute user_data. Value: %s. is not a 'base64'", abbreviate(*b.UserData))
		}
		out.userData = *b.UserData
	}
	if b.Metadata != nil {
		out.metadata = map[string]string{}
		for k, v := range b.Metadata {
			s, ok := v.(string)
			if !ok {
				return nil, bad("Invalid input for field/attribute metadata. Value: %v. %v is not of type 'string'", v, v)
			}
			if k == "" || len(k) > 255 || len(s) > 255 {
				return nil, bad("Invalid input for field/attribute metadata. Keys must be 1 to 255 characters and values at most 255 (key %q)", k)
			}
			out.metadata[k] = s
		}
	}
	// From 2.37 networks is required, and may be "auto" (the default
	// network) or "none" (no network at all).
	var mode string
	if apiVersion(r.Context()).AtLeast(Version{2, 37}) {
		if len(b.Networks) == 0 {
			return nil, bad("Invalid input for field/attribute server. Value: %s. 'networks' is a required property", "{...}")
		}
		if json.Unmarshal(b.Networks, &mode) == nil && mode != "auto" && mode != "none" {
			return nil, bad("Invalid input for field/attribute networks. Value: %s. '%s' is not one of ['none', 'auto']", mode, mode)
		}
	}
	switch {
	case mode == "none":
		out.noNetwork = true
	case mode == "auto":
	case len(b.Networks) > 0:
		nets, err := validateNetworks(b.Networks)
		if err != nil {
			return nil, err
		}
		out.networks = nets
	}
	minC, err := countField("min_count", b.MinCount)
	if err != nil {
		return nil, err
	}
	maxC, err := countField("max_count", b.MaxCount)
	if err != nil {
		return nil, err
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
			return nil, bad("min_count must be <= max_count")
		}
		out.count, out.minCount = maxC, minC
	}
	if out.count > maxCount {
		return nil, bad("Invalid input for field/attribute max_count. Value: %d. %d is greater than the maximum of %d", out.count, out.count, maxCount)
	}
	if len(b.ReturnReservation) > 0 {
		v, ok := parseBool(b.ReturnReservation)
		if !ok {
			return nil, bad("Invalid input for field/attribute return_reservation_id. Value: %s. is not a 'boolean'", b.ReturnReservation)
		}
		out.returnReservation = v
	}
	hints, err := parseHints(top)
	if err != nil {
		return nil, err
	}
	out.hints = hints
	return out, nil
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
func (a *API) checkZone(ctx context.Context, zone string) error {
	if zone == "" {
		return nil
	}
	if strings.Contains(zone, ":") {
		return bad("Forcing a host with availability_zone %q (zone:host) is not supported; give the zone only", zone)
	}
	ns, err := cells.ListNeighbours(ctx, a.cfg.DB)
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
func (a *API) checkNetworks(ctx context.Context, nets []requestedNetwork) error {
	c := caller(ctx)
	for _, rn := range nets {
		if rn.Port != "" {
			return bad("Port %s could not be found: ports are created by the compute service in this cloud; pass a network uuid instead", rn.Port)
		}
		n, err := netdb.GetNetwork(ctx, a.cfg.DB, rn.UUID)
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

func jsonFieldError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s is not of type '%s'", te.Field, jsonType(te.Type.Kind().String()))
	}
	return err.Error()
}

func jsonType(k string) string {
	switch k {
	case "string":
		return "string"
	case "map", "struct":
		return "object"
	case "slice":
		return "array"
	}
	return k
}

func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
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

func (a *API) loadServer(r *http.Request) (*apidb.Instance, error) {
	return a.loadServerMaybeDeleted(r, false)
}

// loadServerMaybeDeleted is loadServer that can also return a deleted server.
func (a *API) loadServerMaybeDeleted(r *http.Request, deletedToo bool) (*apidb.Instance, error) {
	c := caller(r.Context())
	id := r.PathValue("id")
	in, err := apidb.Get(r.Context(), a.cfg.DB, id)
	if errors.Is(err, apidb.ErrNotFound) || (err == nil && ((in.Deleted && !deletedToo) || (!c.Admin && in.ProjectID != c.ProjectID))) {
		return nil, &httpError{http.StatusNotFound, fmt.Sprintf("Instance %s could not be found.", id)}
	}
	return in, err
}

func (a *API) showServer(w http.ResponseWriter, r *http.Request) {
	in, err := a.loadServer(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if a.showDown(w, r, in) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"server": a.serverView(r, in)})
}

func (a *API) deleteServer(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	in, err := a.loadServer(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	now := a.cfg.Now()
	err = a.cfg.DB.Group(ctx, func(tx *db.Tx) error {
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if cur.Deleted {
			return nil
		}
		if err := a.checkLocked(ctx, cur); err != nil {
			return err
		}
		if cur.Cell == "" && cur.VMState == "error" {
			// No cell ever took it: nothing to delete below.
			return apidb.MarkDeleted(ctx, tx, cur.UUID, now)
		}
		if err := apidb.MarkDeleting(ctx, tx, cur.UUID, now); err != nil {
			return err
		}
		if cur.Cell == "" {
			// Still being scheduled: the delete follows it to the cell
			// that reports it (see apicell).
			return nil
		}
		return a.cfg.Sender.Send(ctx, tx, cur.Cell, wire.MethodDeleteInstances, requestID(ctx), &wire.DeleteInstances{UUIDs: []string{cur.UUID}})
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listServers(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		lr, err := a.listOptions(r, detail)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		opts := lr.opts
		var insts []*apidb.Instance
		// limit=0, a status that matches nothing (before 2.38) and a flavor
		// the caller cannot see list nothing, as in Nova.
		if !lr.empty {
			if opts.Sort, err = lr.sortOptions(); err != nil {
				a.fail(w, r, err)
				return
			}
			insts, err = apidb.List(ctx, a.cfg.DB, opts)
		}
		if errors.Is(err, apidb.ErrNotFound) {
			a.fail(w, r, bad("marker [%s] not found", opts.Marker))
			return
		}
		if err == nil && detail && atLeast(r, 26) {
			err = apidb.LoadTags(ctx, a.cfg.DB, insts)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		base := baseURL(r)
		shown, unknown, err := a.splitDown(r, insts, detail)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out := make([]any, 0, len(insts))
		out = append(out, unknown...)
		for _, in := range shown {
			if detail {
				out = append(out, a.serverView(r, in))
			} else {
				out = append(out, map[string]any{"id": in.UUID, "name": in.Name, "links": links(base, in.ProjectID, "servers", in.UUID)})
			}
		}
		resp := map[string]any{"servers": out}
		if opts.Limit > 0 && len(insts) == opts.Limit {
			next := *r.URL
			nq := next.Query()
			nq.Set("marker", insts[len(insts)-1].UUID)
			nq.Set("limit", strconv.Itoa(opts.Limit))
			next.RawQuery = nq.Encode()
			resp["servers_links"] = []map[string]string{{"rel": "next", "href": base + next.RequestURI()}}
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

func links(base, project, kind, id string) []map[string]string {
	return []map[string]string{
		{"rel": "self", "href": base + "/v2.1/" + project + "/" + kind + "/" + id},
		{"rel": "bookmark", "href": base + "/" + project + "/" + kind + "/" + id},
	}
}

func isoTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func isoMicro(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

// serverView is the server as the Compute API shows it at 2.1.
func (a *API) serverView(r *http.Request, in *apidb.Instance) map[string]any {
	base := baseURL(r)
	c := caller(r.Context())
	addrs := map[string][]map[string]any{}
	for _, ad := range in.Addresses {
		addrs[ad.Network] = append(addrs[ad.Network], map[string]any{
			"version": ad.Version, "addr": ad.Addr, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": ad.MAC,
		})
	}
	meta := in.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	var keyName any
	if in.KeyName != "" {
		keyName = in.KeyName
	}
	var task any
	if in.TaskState != "" {
		task = in.TaskState
	}
	v := map[string]any{
		"id": in.UUID, "name": in.Name, "status": Status(in.VMState, in.TaskState), "tenant_id": in.ProjectID,
		"user_id": in.UserID, "metadata": meta, "hostId": hostID(in.ProjectID, in.Host),
		"image":   map[string]any{"id": in.ImageRef, "links": []map[string]string{{"rel": "bookmark", "href": base + "/" + in.ProjectID + "/images/" + in.ImageRef}}},
		"flavor":  map[string]any{"id": in.FlavorID, "links": []map[string]string{{"rel": "bookmark", "href": base + "/" + in.ProjectID + "/flavors/" + in.FlavorID}}},
		"created": isoTime(in.CreatedAt), "updated": isoTime(in.UpdatedAt), "addresses": addrs,
		"accessIPv4": "", "accessIPv6": "", "links": links(base, in.ProjectID, "servers", in.UUID),
		"OS-DCF:diskConfig": "MANUAL", "progress": 0, "OS-EXT-AZ:availability_zone": in.AvailabilityZone,
		"config_drive": "", "key_name": keyName, "OS-SRV-USG:launched_at": isoMicro(in.LaunchedAt),
		"OS-SRV-USG:terminated_at": isoMicro(in.DeletedAt), "OS-EXT-STS:task_state": task,
		"OS-EXT-STS:vm_state": in.VMState, "OS-EXT-STS:power_state": in.PowerState,
		"os-extended-volumes:volumes_attached": []any{},
		"security_groups":                      []map[string]string{{"name": "default"}},
	}
	if c.Admin {
		v["OS-EXT-SRV-ATTR:host"] = nullable(in.Host)
		v["OS-EXT-SRV-ATTR:hypervisor_hostname"] = nullable(in.Node)
		v["OS-EXT-SRV-ATTR:instance_name"] = "instance-" + in.UUID[:8]
	}
	if in.Fault != nil && (in.VMState == "error" || in.VMState == "deleted") {
		f := map[string]any{"code": in.Fault.Code, "message": in.Fault.Message, "created": isoTime(in.Fault.Created)}
		if c.Admin && in.Fault.Details != "" {
			f["details"] = in.Fault.Details
		}
		v["fault"] = f
	}
	versionedView(r, in, v)
	a.serverViewExtras(r, in, v)
	return v
}

// hostID is Nova's hostId: a host hashed with a project, so that a
// project can tell its servers' hosts apart without learning their names.
func hostID(project, host string) string {
	if host == "" {
		return ""
	}
	h := sha256.Sum224([]byte(project + host))
	return hex.EncodeToString(h[:])
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Status maps vm_state and task_state to the API's status, as Nova does.
func Status(vm, task string) string { return vmstate.Status(vm, task) }

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
