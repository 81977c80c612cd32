package iothub

import (
	"sort"
	"sync"
	"time"
)

// DefaultTwinTimeout bounds a twin request when DeviceTwinConfig.Timeout is
// zero.
const DefaultTwinTimeout = 30 * time.Second

// DefaultMaxBufferedDesired is how many desired notifications a DeviceTwin
// holds while a GET is in flight when DeviceTwinConfig.MaxBuffered is zero.
const DefaultMaxBufferedDesired = 64

// DeviceTwinConfig configures a DeviceTwin. The zero value is usable.
type DeviceTwinConfig struct {
	// Clock drives request deadlines; nil means SystemClock.
	Clock Clock
	// Timeout bounds each GET and PATCH; 0 means DefaultTwinTimeout.
	Timeout time.Duration
	// MaxBuffered caps the desired notifications kept while a GET is in
	// flight; 0 means DefaultMaxBufferedDesired. Beyond it the oldest are
	// dropped (the next GET recovers them).
	MaxBuffered int
	// RequestIDPrefix is put in front of the request ids (see
	// NewCorrelator).
	RequestIDPrefix string
}

// DesiredUpdate is a change of the desired properties for the application.
type DesiredUpdate struct {
	// Version is the desired $version after the change.
	Version int64
	// Full is set on the first synchronisation: Patch is then the whole
	// desired section rather than a patch.
	Full bool
	// Resync is set when Patch was computed by comparing the state before
	// and after a full GET (after a reconnect or a version gap) rather than
	// received as a notification.
	Resync bool
	// Patch is a JSON merge patch: null (nil) members were deleted, objects
	// merge recursively. The DeviceTwin does not keep a reference to it.
	Patch map[string]any
}

// TwinReply is the outcome of a twin request.
type TwinReply struct {
	Status  int   // the status of $iothub/twin/res/{status}
	Version int64 // PATCH: the new reported $version (0 if the hub sent none)
	Twin    Twin  // GET: the twin (a copy the caller owns)
}

// TwinEffects is what one DeviceTwin step asks of its caller.
type TwinEffects struct {
	// Publish holds requests to publish, in order, at QoS 0.
	Publish []Action
	// Sync, when set, is the Waiter of a GET the DeviceTwin started on its
	// own (after a version gap). The caller treats it like the Waiter of
	// Get: if it fails (timeout, status), call Get again after a backoff.
	Sync *Waiter[TwinReply]
	// Updates are desired-property changes to hand to the application, in
	// order.
	Updates []DesiredUpdate
}

type twinOp struct {
	get   bool
	seq   uint64         // GET: DeviceTwin.changes when it was sent
	patch map[string]any // reported PATCH: the patch, merged locally on success
}

type bufferedDesired struct {
	version int64
	patch   map[string]any
}

// DeviceTwin is the device side of the twin protocol (contract §5): it
// tracks the last applied desired $version, applies a desired notification
// only when it is the next version, falls back to a full GET on a version
// gap or a (re)connect and reconciles by diffing, and correlates GET and
// reported-PATCH replies by $rid with deadlines.
//
// It does no I/O: methods return the Actions to publish, and Handle
// consumes the topics the device receives. The device client wires it to
// MQTT:
//
//  1. on every connect, after subscribing to TwinResponseFilter and
//     TwinDesiredFilter, call Get and publish its Action;
//  2. pass every RouteTwinResponse and RouteTwinDesired publish to Handle,
//     in arrival order, and carry out the returned TwinEffects;
//  3. on disconnect call Disconnected.
//
// Its methods are safe for concurrent use.
type DeviceTwin struct {
	timeout     time.Duration
	maxBuffered int
	reqs        *Correlator[TwinReply]

	mu           sync.Mutex
	haveBaseline bool
	syncing      bool // a GET is needed or in flight: buffer notifications
	desired      map[string]any
	version      int64
	reported     map[string]any
	reportedVer  int64
	buffered     []bufferedDesired
	lastGet      string // request id of the latest GET started
	// changes counts the local state changes (applied notifications,
	// successful PATCH replies, adopted GET snapshots). A GET reply with
	// no change since its request was sent is the hub's current state,
	// even when its $version is lower than ours: the twin started over.
	changes uint64
}

// NewDeviceTwin returns a DeviceTwin that has not synchronised yet.
func NewDeviceTwin(cfg DeviceTwinConfig) *DeviceTwin {
	t := &DeviceTwin{
		timeout:     cfg.Timeout,
		maxBuffered: cfg.MaxBuffered,
		reqs:        NewCorrelator[TwinReply]("twin", cfg.RequestIDPrefix, cfg.Clock),
		syncing:     true,
		desired:     map[string]any{},
		reported:    map[string]any{},
	}
	if t.timeout <= 0 {
		t.timeout = DefaultTwinTimeout
	}
	if t.maxBuffered <= 0 {
		t.maxBuffered = DefaultMaxBufferedDesired
	}
	return t
}

// Get starts a full twin GET: publish the Action, then wait on the Waiter
// (or just let Handle process the reply). Any GET reply also reconciles the
// desired state, so this is both the application's "read the twin" and the
// (re)connect synchronisation. Until a GET reply arrives, desired
// notifications are buffered.
func (t *DeviceTwin) Get() (Action, *Waiter[TwinReply]) {
	t.mu.Lock()
	t.syncing = true
	seq := t.changes
	t.mu.Unlock()
	w := t.reqs.Start(t.timeout, twinOp{get: true, seq: seq})
	t.mu.Lock()
	t.lastGet = w.RequestID()
	t.mu.Unlock()
	return Action{Topic: AppendTwinGetTopic(nil, w.RequestID())}, w
}

// ReportProperties starts a reported-properties PATCH with body, a JSON
// merge patch. The patch is validated first (keys, depth, sizes): an
// invalid one returns a *TwinError (errors.Is ErrBadRequest) and nothing to
// publish. The Waiter yields the new reported $version, or a *StatusError
// for a failure status (errors.Is ErrThrottled for 429, and so on), or an
// error wrapping ErrTimeout.
func (t *DeviceTwin) ReportProperties(body []byte) (Action, *Waiter[TwinReply], error) {
	patch, err := ParseTwinPatch(body)
	if err != nil {
		return Action{}, nil, err
	}
	w := t.reqs.Start(t.timeout, twinOp{patch: patch})
	return Action{
		Topic:   AppendTwinPatchReportedTopic(nil, w.RequestID()),
		Payload: append([]byte(nil), body...),
	}, w, nil
}

// Disconnected fails every request in flight with ErrConnectionLost (twin
// traffic is QoS 0: their replies can never come) and marks the twin as
// needing a GET on the next connect.
func (t *DeviceTwin) Disconnected() {
	t.mu.Lock()
	t.syncing = true
	t.buffered = nil
	t.mu.Unlock()
	t.reqs.FailAll(ErrConnectionLost)
}

// Desired returns the last applied desired $version and a copy of the
// desired properties. ok is false before the first GET reply.
func (t *DeviceTwin) Desired() (version int64, props map[string]any, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.version, cloneObject(t.desired), t.haveBaseline
}

// Reported returns the reported $version and properties as last read by a
// GET and updated by successful PATCHes since.
func (t *DeviceTwin) Reported() (version int64, props map[string]any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reportedVer, cloneObject(t.reported)
}

// Pending returns the number of twin requests awaiting a reply.
func (t *DeviceTwin) Pending() int { return t.reqs.Len() }

// Handle processes a twin topic the device received: a RouteTwinDesired
// notification or a RouteTwinResponse reply, with its payload. Call it in
// arrival order. A reply to no pending request returns ErrStaleResponse
// (log and ignore it); a route of another kind returns ErrUnknownTopic.
func (t *DeviceTwin) Handle(r *Route, payload []byte) (TwinEffects, error) {
	switch r.Kind {
	case RouteTwinDesired:
		return t.handleDesired(r, payload)
	case RouteTwinResponse:
		return t.handleResponse(r, payload)
	}
	return TwinEffects{}, &TopicError{Field: "not a twin route: " + r.Kind.String(), Err: ErrUnknownTopic}
}

func (t *DeviceTwin) handleDesired(r *Route, payload []byte) (TwinEffects, error) {
	patch, bodyVersion, hasBodyVersion, err := ParseDesiredPatch(payload)
	v := r.Version
	if !r.HasVersion && hasBodyVersion {
		v = bodyVersion
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var fx TwinEffects
	if err != nil {
		// A notification we cannot read leaves a hole: recover with a GET.
		t.startSyncLocked(&fx)
		return fx, err
	}
	if t.syncing || !t.haveBaseline {
		t.bufferLocked(v, patch)
		if t.reqs.Peek([]byte(t.lastGet)) == nil {
			// No GET is in flight (the last one failed or timed out and
			// was not retried): start one rather than buffer forever.
			t.startSyncLocked(&fx)
		}
		return fx, nil
	}
	switch {
	case v <= t.version:
		// Already contained in what we have (duplicate or stale).
	case v == t.version+1:
		t.applyLocked(v, patch, &fx)
	default:
		// Gap: at least one notification was missed.
		t.bufferLocked(v, patch)
		t.startSyncLocked(&fx)
	}
	return fx, nil
}

func (t *DeviceTwin) bufferLocked(v int64, patch map[string]any) {
	if len(t.buffered) >= t.maxBuffered {
		copy(t.buffered, t.buffered[1:])
		t.buffered = t.buffered[:len(t.buffered)-1]
	}
	t.buffered = append(t.buffered, bufferedDesired{version: v, patch: patch})
}

func (t *DeviceTwin) applyLocked(v int64, patch map[string]any, fx *TwinEffects) {
	t.desired = MergePatch(t.desired, patch)
	t.version = v
	t.changes++
	fx.Updates = append(fx.Updates, DesiredUpdate{Version: v, Patch: cloneObject(patch)})
}

// startSyncLocked starts an internal GET; its Action and Waiter go into fx.
func (t *DeviceTwin) startSyncLocked(fx *TwinEffects) {
	t.syncing = true
	w := t.reqs.Start(t.timeout, twinOp{get: true, seq: t.changes})
	t.lastGet = w.RequestID()
	fx.Publish = append(fx.Publish, Action{Topic: AppendTwinGetTopic(nil, w.RequestID())})
	fx.Sync = w
}

func (t *DeviceTwin) handleResponse(r *Route, payload []byte) (TwinEffects, error) {
	var fx TwinEffects
	w := t.reqs.Take(r.RequestID)
	if w == nil {
		return fx, &requestError{op: "twin reply", rid: string(r.RequestID), err: ErrStaleResponse}
	}
	op, _ := w.Meta().(twinOp)
	opName := "twin PATCH reported"
	if op.get {
		opName = "twin GET"
	}
	if err := statusErr(opName, r.Status, r.RequestID, payload); err != nil {
		w.Complete(TwinReply{Status: r.Status}, err)
		return fx, nil
	}
	if !op.get {
		reply := TwinReply{Status: r.Status}
		t.mu.Lock()
		t.reported = MergePatch(t.reported, op.patch)
		t.changes++
		if r.HasVersion {
			reply.Version = r.Version
			if r.Version > t.reportedVer {
				t.reportedVer = r.Version
			}
		}
		t.mu.Unlock()
		w.Complete(reply, nil)
		return fx, nil
	}
	twin, err := ParseTwin(payload)
	if err != nil {
		err = &requestError{op: opName + " reply body", rid: string(r.RequestID), err: err}
		w.Complete(TwinReply{Status: r.Status}, err)
		return fx, nil
	}
	t.mu.Lock()
	t.reconcileLocked(twin, op.seq == t.changes, &fx)
	t.mu.Unlock()
	w.Complete(TwinReply{Status: r.Status, Twin: twin.Clone()}, nil)
	return fx, nil
}

// reconcileLocked adopts a GET snapshot, emits the difference as an
// update, then replays the notifications buffered meanwhile. A snapshot
// older than what is already applied is ignored, unless fresh says nothing
// changed locally since its request was sent: then the twin started over
// at a lower $version (emulator restart, identity created again) and the
// snapshot is the truth.
func (t *DeviceTwin) reconcileLocked(snap Twin, fresh bool, fx *TwinEffects) {
	adopted := false
	if !t.haveBaseline || snap.Desired.Version >= t.version || fresh {
		if !t.haveBaseline {
			fx.Updates = append(fx.Updates, DesiredUpdate{
				Version: snap.Desired.Version, Full: true, Patch: cloneObject(snap.Desired.Props),
			})
		} else if d := DiffPatch(t.desired, snap.Desired.Props); len(d) > 0 || snap.Desired.Version != t.version {
			fx.Updates = append(fx.Updates, DesiredUpdate{
				Version: snap.Desired.Version, Resync: true, Patch: d,
			})
		}
		t.desired = cloneObject(snap.Desired.Props)
		t.version = snap.Desired.Version
		t.haveBaseline = true
		adopted = true
	}
	if snap.Reported.Version >= t.reportedVer || fresh {
		t.reported = cloneObject(snap.Reported.Props)
		t.reportedVer = snap.Reported.Version
		adopted = true
	}
	if adopted {
		t.changes++
	}
	// Replay buffered notifications: drop those the snapshot contains,
	// apply the contiguous run after it, and GET again if a gap remains.
	sort.SliceStable(t.buffered, func(i, j int) bool { return t.buffered[i].version < t.buffered[j].version })
	rest := t.buffered[:0]
	for _, b := range t.buffered {
		switch {
		case b.version <= t.version:
		case b.version == t.version+1:
			t.applyLocked(b.version, b.patch, fx)
		default:
			rest = append(rest, b)
		}
	}
	clear(t.buffered[len(rest):])
	t.buffered = rest
	if len(rest) > 0 {
		t.startSyncLocked(fx)
		return
	}
	t.syncing = false
}
