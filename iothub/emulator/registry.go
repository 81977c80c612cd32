package emulator

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/sas"
)

// Status is an identity's status: StatusEnabled or StatusDisabled. A
// disabled identity cannot connect, and a live connection is closed when its
// identity is disabled.
type Status string

// Identity statuses.
const (
	StatusEnabled  Status = "enabled"
	StatusDisabled Status = "disabled"
)

// AuthType is how an identity authenticates.
type AuthType string

// Authentication types, as IoT Hub's registry names them.
const (
	AuthSAS                  AuthType = "sas"                  // symmetric keys (SAS tokens)
	AuthSelfSigned           AuthType = "selfSigned"           // X.509, by registered thumbprint
	AuthCertificateAuthority AuthType = "certificateAuthority" // X.509 chaining to a registered CA, CN = id
	AuthNone                 AuthType = "none"                 // cannot connect by itself
)

// Connection states reported in Device.ConnectionState.
const (
	Connected    = "Connected"
	Disconnected = "Disconnected"
)

// SymmetricKey holds an identity's two base64 SAS keys.
type SymmetricKey struct {
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
}

// X509Thumbprint holds an identity's registered certificate thumbprints
// (SHA-1 or SHA-256, hex).
type X509Thumbprint struct {
	PrimaryThumbprint   string `json:"primaryThumbprint"`
	SecondaryThumbprint string `json:"secondaryThumbprint"`
}

// Authentication is an identity's credentials.
type Authentication struct {
	SymmetricKey   SymmetricKey   `json:"symmetricKey"`
	X509Thumbprint X509Thumbprint `json:"x509Thumbprint"`
	Type           AuthType       `json:"type"`
}

// Capabilities are a device's capabilities.
type Capabilities struct {
	IotEdge bool `json:"iotEdge"`
}

// Device is a device identity as the registry reports it (the shape of IoT
// Hub's REST device object). ConnectionState, ConnectionStateUpdatedTime,
// LastActivityTime and CloudToDeviceMessageCount are live values filled in
// by the hub; the others are stored.
type Device struct {
	DeviceID                   string         `json:"deviceId"`
	GenerationID               string         `json:"generationId"`
	ETag                       string         `json:"etag"`
	ConnectionState            string         `json:"connectionState"`
	Status                     Status         `json:"status"`
	StatusReason               string         `json:"statusReason"`
	ConnectionStateUpdatedTime time.Time      `json:"connectionStateUpdatedTime"`
	StatusUpdatedTime          time.Time      `json:"statusUpdatedTime"`
	LastActivityTime           time.Time      `json:"lastActivityTime"`
	CloudToDeviceMessageCount  int            `json:"cloudToDeviceMessageCount"`
	Authentication             Authentication `json:"authentication"`
	Capabilities               Capabilities   `json:"capabilities"`
	DeviceScope                string         `json:"deviceScope,omitempty"`
	ParentScopes               []string       `json:"parentScopes,omitempty"`
}

// Module is a module identity of a device.
type Module struct {
	ModuleID                   string         `json:"moduleId"`
	DeviceID                   string         `json:"deviceId"`
	ManagedBy                  string         `json:"managedBy"`
	GenerationID               string         `json:"generationId"`
	ETag                       string         `json:"etag"`
	ConnectionState            string         `json:"connectionState"`
	ConnectionStateUpdatedTime time.Time      `json:"connectionStateUpdatedTime"`
	LastActivityTime           time.Time      `json:"lastActivityTime"`
	CloudToDeviceMessageCount  int            `json:"cloudToDeviceMessageCount"`
	Authentication             Authentication `json:"authentication"`
}

// deviceRecord is what is stored of a device; etag is a counter.
type deviceRecord struct {
	Device
	ETagCount uint64 `json:"etagCount"`
}

type moduleRecord struct {
	Module
	ETagCount uint64 `json:"etagCount"`
}

// registry holds the identities, policies and CA certificates. Its mutex
// also guards the sessions' identity lookups.
type registry struct {
	mu       sync.RWMutex
	devices  map[string]*deviceRecord
	modules  map[string]map[string]*moduleRecord // deviceId → moduleId → module
	policies map[string]*Policy
	cas      map[string]*CACertificate
	caPool   *x509.CertPool // of cas, rebuilt on change
	genSeq   atomic.Uint64
}

func newRegistry() *registry {
	return &registry{
		devices:  map[string]*deviceRecord{},
		modules:  map[string]map[string]*moduleRecord{},
		policies: map[string]*Policy{},
		cas:      map[string]*CACertificate{},
		caPool:   x509.NewCertPool(),
	}
}

// newKey returns a random 32-byte key in base64, as IoT Hub generates.
func newKey() string {
	var b [32]byte
	rand.Read(b[:]) // crypto/rand does not fail
	return base64.StdEncoding.EncodeToString(b[:])
}

// etagOf formats an identity etag: base64 of the decimal counter ("MA==").
func etagOf(n uint64) string {
	return base64.StdEncoding.EncodeToString(strconv.AppendUint(nil, n, 10))
}

// matchETag reports whether an If-Match value allows a write to an entity
// whose etag is cur: empty and "*" (quoted or not) always do, otherwise the
// value, quotes removed, must equal cur.
func matchETag(ifMatch, cur string) bool {
	v := strings.TrimSpace(ifMatch)
	if strings.HasPrefix(v, "W/") {
		v = v[2:]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v == "" || v == "*" || v == cur
}

func (r *registry) newGenerationID() string {
	// IoT Hub's generation ids are 18-digit decimal numbers that change on
	// every re-creation.
	n := uint64(time.Now().UnixNano()/100) + r.genSeq.Add(1)
	return strconv.FormatUint(n%1e18, 10)
}

// prepareAuth checks a and fills in generated keys.
func prepareAuth(a *Authentication) error {
	if a.Type == "" {
		a.Type = AuthSAS
	}
	switch a.Type {
	case AuthSAS:
		if a.SymmetricKey.PrimaryKey == "" {
			a.SymmetricKey.PrimaryKey = newKey()
		}
		if a.SymmetricKey.SecondaryKey == "" {
			a.SymmetricKey.SecondaryKey = newKey()
		}
		for _, k := range []string{a.SymmetricKey.PrimaryKey, a.SymmetricKey.SecondaryKey} {
			b, err := sas.DecodeKey(k)
			if err != nil || len(b) < 16 || len(b) > 64 {
				return invalid("symmetric keys must be base64 of 16 to 64 bytes")
			}
		}
	case AuthSelfSigned:
		if !validThumbprint(a.X509Thumbprint.PrimaryThumbprint) ||
			(a.X509Thumbprint.SecondaryThumbprint != "" && !validThumbprint(a.X509Thumbprint.SecondaryThumbprint)) {
			return invalid("selfSigned authentication needs SHA-1 or SHA-256 hex thumbprints")
		}
	case AuthCertificateAuthority, AuthNone:
	default:
		return invalid("unknown authentication type " + strconv.Quote(string(a.Type)))
	}
	return nil
}

func validThumbprint(t string) bool {
	t = strings.ReplaceAll(t, ":", "")
	if len(t) != 40 && len(t) != 64 {
		return false
	}
	for _, c := range t {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func validID(id string) error {
	if !iothub.ValidID(id) {
		return invalid("id " + strconv.Quote(id) + ": at most 128 of A-Z a-z 0-9 - : . + % _ # * ? ! ( ) , = @ ; $ '")
	}
	return nil
}

// CreateDevice registers a new device. d.DeviceID is required; an empty
// Authentication.Type means sas, and empty SAS keys are generated; an
// empty Status means enabled. Read-only fields are ignored. It returns the
// stored device, or ErrDeviceAlreadyExists, or ErrInvalidArgument.
func (h *Hub) CreateDevice(ctx context.Context, d Device) (Device, error) {
	if err := validID(d.DeviceID); err != nil {
		return Device{}, err
	}
	if err := prepareAuth(&d.Authentication); err != nil {
		return Device{}, err
	}
	if d.Status == "" {
		d.Status = StatusEnabled
	}
	if d.Status != StatusEnabled && d.Status != StatusDisabled {
		return Device{}, invalid("status must be enabled or disabled")
	}
	r := h.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.devices[d.DeviceID]; ok {
		return Device{}, ErrDeviceAlreadyExists
	}
	now := h.now().UTC()
	rec := &deviceRecord{Device: Device{
		DeviceID:          d.DeviceID,
		GenerationID:      r.newGenerationID(),
		ETag:              etagOf(0),
		Status:            d.Status,
		StatusReason:      d.StatusReason,
		StatusUpdatedTime: now,
		Authentication:    d.Authentication,
		Capabilities:      d.Capabilities,
		DeviceScope:       d.DeviceScope,
		ParentScopes:      d.ParentScopes,
	}}
	tw := newTwinState(now)
	if err := h.store.write(put(bucketDevices, []byte(d.DeviceID), rec), put(bucketTwins, []byte(d.DeviceID), tw.record())); err != nil {
		return Device{}, err
	}
	r.devices[d.DeviceID] = rec
	h.twins.set(d.DeviceID, tw)
	return h.liveDevice(rec), nil
}

// liveDevice returns a copy of rec with the live fields filled in.
func (h *Hub) liveDevice(rec *deviceRecord) Device {
	d := rec.Device
	d.ParentScopes = slices.Clone(d.ParentScopes)
	d.ConnectionState, d.ConnectionStateUpdatedTime, d.LastActivityTime = h.connState(d.DeviceID)
	d.CloudToDeviceMessageCount = h.c2d.count(d.DeviceID)
	return d
}

func (h *Hub) liveModule(rec *moduleRecord) Module {
	m := rec.Module
	m.ConnectionState, m.ConnectionStateUpdatedTime, m.LastActivityTime = h.connState(m.DeviceID + "/" + m.ModuleID)
	return m
}

// GetDevice returns the device, or ErrDeviceNotFound.
func (h *Hub) GetDevice(id string) (Device, error) {
	h.reg.mu.RLock()
	rec, ok := h.reg.devices[id]
	h.reg.mu.RUnlock()
	if !ok {
		return Device{}, ErrDeviceNotFound
	}
	return h.liveDevice(rec), nil
}

// ListDevices returns every device, ordered by id.
func (h *Hub) ListDevices() []Device {
	h.reg.mu.RLock()
	recs := make([]*deviceRecord, 0, len(h.reg.devices))
	for _, rec := range h.reg.devices {
		recs = append(recs, rec)
	}
	h.reg.mu.RUnlock()
	slices.SortFunc(recs, func(a, b *deviceRecord) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	out := make([]Device, len(recs))
	for i, rec := range recs {
		out[i] = h.liveDevice(rec)
	}
	return out
}

// UpdateDevice replaces the writable fields of an existing device (status,
// statusReason, authentication, capabilities, scopes) when ifMatch matches
// its etag ("" or "*" always match), and bumps the etag. Empty SAS keys are
// generated. Disabling the device closes its connections. Errors:
// ErrDeviceNotFound, ErrPreconditionFailed, ErrInvalidArgument.
func (h *Hub) UpdateDevice(ctx context.Context, d Device, ifMatch string) (Device, error) {
	if err := prepareAuth(&d.Authentication); err != nil {
		return Device{}, err
	}
	if d.Status == "" {
		d.Status = StatusEnabled
	}
	if d.Status != StatusEnabled && d.Status != StatusDisabled {
		return Device{}, invalid("status must be enabled or disabled")
	}
	r := h.reg
	r.mu.Lock()
	old, ok := r.devices[d.DeviceID]
	if !ok {
		r.mu.Unlock()
		return Device{}, ErrDeviceNotFound
	}
	if !matchETag(ifMatch, old.ETag) {
		r.mu.Unlock()
		return Device{}, ErrPreconditionFailed
	}
	rec := *old
	rec.ETagCount++
	rec.ETag = etagOf(rec.ETagCount)
	if rec.Status != d.Status {
		rec.StatusUpdatedTime = h.now().UTC()
	}
	rec.Status, rec.StatusReason = d.Status, d.StatusReason
	rec.Authentication, rec.Capabilities = d.Authentication, d.Capabilities
	rec.DeviceScope, rec.ParentScopes = d.DeviceScope, slices.Clone(d.ParentScopes)
	if err := h.store.write(put(bucketDevices, []byte(d.DeviceID), &rec)); err != nil {
		r.mu.Unlock()
		return Device{}, err
	}
	r.devices[d.DeviceID] = &rec
	r.mu.Unlock()
	if rec.Status == StatusDisabled {
		h.closeIdentity(d.DeviceID, "", "device disabled")
		for _, m := range h.ListModules(d.DeviceID) {
			h.closeIdentity(d.DeviceID, m.ModuleID, "device disabled")
		}
	}
	return h.liveDevice(&rec), nil
}

// DeleteDevice removes a device with its modules, twins, C2D queue and
// session when ifMatch matches its etag, and closes its connections.
// Errors: ErrDeviceNotFound, ErrPreconditionFailed.
func (h *Hub) DeleteDevice(ctx context.Context, id, ifMatch string) error {
	r := h.reg
	r.mu.Lock()
	rec, ok := r.devices[id]
	if !ok {
		r.mu.Unlock()
		return ErrDeviceNotFound
	}
	if !matchETag(ifMatch, rec.ETag) {
		r.mu.Unlock()
		return ErrPreconditionFailed
	}
	mods := r.modules[id]
	ops := []op{del(bucketDevices, []byte(id)), del(bucketTwins, []byte(id)), del(bucketSessions, []byte(id))}
	for mid := range mods {
		k := []byte(id + "/" + mid)
		ops = append(ops, del(bucketModules, k), del(bucketTwins, k), del(bucketSessions, k))
	}
	if err := h.store.deletePrefix(bucketC2D, c2dPrefix(id), ops...); err != nil {
		r.mu.Unlock()
		return err
	}
	delete(r.devices, id)
	delete(r.modules, id)
	r.mu.Unlock()
	h.twins.remove(id)
	h.c2d.drop(id)
	h.dropSession(id)
	h.closeIdentity(id, "", "device deleted")
	for mid := range mods {
		h.twins.remove(id + "/" + mid)
		h.dropSession(id + "/" + mid)
		h.closeIdentity(id, mid, "device deleted")
	}
	return nil
}

// CreateModule registers module m.ModuleID on device m.DeviceID, with
// keys generated as for devices. Errors: ErrDeviceNotFound,
// ErrModuleAlreadyExists, ErrInvalidArgument.
func (h *Hub) CreateModule(ctx context.Context, m Module) (Module, error) {
	if err := validID(m.ModuleID); err != nil {
		return Module{}, err
	}
	if err := prepareAuth(&m.Authentication); err != nil {
		return Module{}, err
	}
	r := h.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.devices[m.DeviceID]; !ok {
		return Module{}, ErrDeviceNotFound
	}
	if _, ok := r.modules[m.DeviceID][m.ModuleID]; ok {
		return Module{}, ErrModuleAlreadyExists
	}
	rec := &moduleRecord{Module: Module{
		ModuleID:       m.ModuleID,
		DeviceID:       m.DeviceID,
		ManagedBy:      m.ManagedBy,
		GenerationID:   r.newGenerationID(),
		ETag:           etagOf(0),
		Authentication: m.Authentication,
	}}
	key := m.DeviceID + "/" + m.ModuleID
	tw := newTwinState(h.now().UTC())
	if err := h.store.write(put(bucketModules, []byte(key), rec), put(bucketTwins, []byte(key), tw.record())); err != nil {
		return Module{}, err
	}
	if r.modules[m.DeviceID] == nil {
		r.modules[m.DeviceID] = map[string]*moduleRecord{}
	}
	r.modules[m.DeviceID][m.ModuleID] = rec
	h.twins.set(key, tw)
	return h.liveModule(rec), nil
}

// GetModule returns a module, or ErrDeviceNotFound / ErrModuleNotFound.
func (h *Hub) GetModule(deviceID, moduleID string) (Module, error) {
	h.reg.mu.RLock()
	_, dok := h.reg.devices[deviceID]
	rec, ok := h.reg.modules[deviceID][moduleID]
	h.reg.mu.RUnlock()
	switch {
	case !dok:
		return Module{}, ErrDeviceNotFound
	case !ok:
		return Module{}, ErrModuleNotFound
	}
	return h.liveModule(rec), nil
}

// ListModules returns the modules of a device ordered by id (none for an
// unknown device).
func (h *Hub) ListModules(deviceID string) []Module {
	h.reg.mu.RLock()
	recs := make([]*moduleRecord, 0, len(h.reg.modules[deviceID]))
	for _, rec := range h.reg.modules[deviceID] {
		recs = append(recs, rec)
	}
	h.reg.mu.RUnlock()
	slices.SortFunc(recs, func(a, b *moduleRecord) int { return strings.Compare(a.ModuleID, b.ModuleID) })
	out := make([]Module, len(recs))
	for i, rec := range recs {
		out[i] = h.liveModule(rec)
	}
	return out
}

// UpdateModule replaces a module's authentication and managedBy when
// ifMatch matches its etag. Errors: ErrDeviceNotFound, ErrModuleNotFound,
// ErrPreconditionFailed, ErrInvalidArgument.
func (h *Hub) UpdateModule(ctx context.Context, m Module, ifMatch string) (Module, error) {
	if err := prepareAuth(&m.Authentication); err != nil {
		return Module{}, err
	}
	r := h.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.devices[m.DeviceID]; !ok {
		return Module{}, ErrDeviceNotFound
	}
	old, ok := r.modules[m.DeviceID][m.ModuleID]
	if !ok {
		return Module{}, ErrModuleNotFound
	}
	if !matchETag(ifMatch, old.ETag) {
		return Module{}, ErrPreconditionFailed
	}
	rec := *old
	rec.ETagCount++
	rec.ETag = etagOf(rec.ETagCount)
	rec.Authentication, rec.ManagedBy = m.Authentication, m.ManagedBy
	if err := h.store.write(put(bucketModules, []byte(m.DeviceID+"/"+m.ModuleID), &rec)); err != nil {
		return Module{}, err
	}
	r.modules[m.DeviceID][m.ModuleID] = &rec
	return h.liveModule(&rec), nil
}

// DeleteModule removes a module and its twin and closes its connection.
// Errors: ErrDeviceNotFound, ErrModuleNotFound, ErrPreconditionFailed.
func (h *Hub) DeleteModule(ctx context.Context, deviceID, moduleID, ifMatch string) error {
	r := h.reg
	r.mu.Lock()
	if _, ok := r.devices[deviceID]; !ok {
		r.mu.Unlock()
		return ErrDeviceNotFound
	}
	rec, ok := r.modules[deviceID][moduleID]
	if !ok {
		r.mu.Unlock()
		return ErrModuleNotFound
	}
	if !matchETag(ifMatch, rec.ETag) {
		r.mu.Unlock()
		return ErrPreconditionFailed
	}
	key := deviceID + "/" + moduleID
	if err := h.store.write(del(bucketModules, []byte(key)), del(bucketTwins, []byte(key)), del(bucketSessions, []byte(key))); err != nil {
		r.mu.Unlock()
		return err
	}
	delete(r.modules[deviceID], moduleID)
	r.mu.Unlock()
	h.twins.remove(key)
	h.dropSession(key)
	h.closeIdentity(deviceID, moduleID, "module deleted")
	return nil
}

// DeviceConnectionString returns the connection string of a device with
// its primary key: HostName={host};DeviceId={id};SharedAccessKey={key}.
// Errors: ErrDeviceNotFound, ErrInvalidArgument for a device without SAS
// keys.
func (h *Hub) DeviceConnectionString(id string) (string, error) {
	d, err := h.GetDevice(id)
	if err != nil {
		return "", err
	}
	if d.Authentication.Type != AuthSAS {
		return "HostName=" + h.cfg.HostName + ";DeviceId=" + id + ";x509=true", nil
	}
	return "HostName=" + h.cfg.HostName + ";DeviceId=" + id + ";SharedAccessKey=" + d.Authentication.SymmetricKey.PrimaryKey, nil
}

// ModuleConnectionString returns the connection string of a module with
// its primary key. Errors: ErrDeviceNotFound, ErrModuleNotFound.
func (h *Hub) ModuleConnectionString(deviceID, moduleID string) (string, error) {
	m, err := h.GetModule(deviceID, moduleID)
	if err != nil {
		return "", err
	}
	base := "HostName=" + h.cfg.HostName + ";DeviceId=" + deviceID + ";ModuleId=" + moduleID
	if m.Authentication.Type != AuthSAS {
		return base + ";x509=true", nil
	}
	return base + ";SharedAccessKey=" + m.Authentication.SymmetricKey.PrimaryKey, nil
}

// lookupIdentity returns the credentials and generation id of a device or
// module, and whether it is enabled.
func (r *registry) lookupIdentity(deviceID, moduleID string) (auth Authentication, gen string, enabled, found bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.devices[deviceID]
	if !ok {
		return Authentication{}, "", false, false
	}
	if moduleID == "" {
		return d.Authentication, d.GenerationID, d.Status == StatusEnabled, true
	}
	m, ok := r.modules[deviceID][moduleID]
	if !ok {
		return Authentication{}, "", false, false
	}
	return m.Authentication, m.GenerationID, d.Status == StatusEnabled, true
}

// load fills the registry from the store.
func (r *registry) load(s *store) error {
	if err := loadJSON(s, bucketDevices, func(k []byte, v *deviceRecord) error {
		r.devices[v.DeviceID] = v
		return nil
	}); err != nil {
		return err
	}
	if err := loadJSON(s, bucketModules, func(k []byte, v *moduleRecord) error {
		if r.modules[v.DeviceID] == nil {
			r.modules[v.DeviceID] = map[string]*moduleRecord{}
		}
		r.modules[v.DeviceID][v.ModuleID] = v
		return nil
	}); err != nil {
		return err
	}
	if err := loadJSON(s, bucketPolicies, func(k []byte, v *Policy) error {
		r.policies[v.KeyName] = v
		return nil
	}); err != nil {
		return err
	}
	return loadJSON(s, bucketCAs, func(k []byte, v *CACertificate) error {
		certs, err := parseCertsPEM([]byte(v.PEM))
		if err != nil {
			return err
		}
		v.cert = certs[0]
		r.cas[v.Name] = v
		r.caPool.AddCert(v.cert)
		return nil
	})
}
