package iothub

import "bytes"

// DefaultAPIVersion is the api-version the current IoT Hub docs give for
// MQTT device connections (contract §1).
const DefaultAPIVersion = "2021-04-12"

// Username is the MQTT CONNECT username of a device or module identity:
// {host}/{deviceId}[/{moduleId}]/?api-version={v}[&DeviceClientType=…][&model-id=…].
type Username struct {
	Host     string
	DeviceID string
	ModuleID string // empty for a device identity

	APIVersion string // DefaultAPIVersion when empty on Append
	ClientType string // DeviceClientType: free-form product string, optional
	ModelID    string // Plug and Play DTMI, optional; needs api-version >= 2020-09-30

	// Legacy is set by ParseUsername for the old form without '?':
	// {host}/{id}/api-version=2016-11-14.
	Legacy bool
}

// Append appends the username: host and ids as they are, the query values
// percent-encoded. It always writes the current form (with '?'), and
// DefaultAPIVersion when APIVersion is empty. It does not allocate when
// cap(dst) suffices.
func (u *Username) Append(dst []byte) []byte {
	dst = append(dst, u.Host...)
	dst = append(dst, '/')
	dst = append(dst, u.DeviceID...)
	if u.ModuleID != "" {
		dst = append(dst, '/')
		dst = append(dst, u.ModuleID...)
	}
	dst = append(dst, "/?api-version="...)
	v := u.APIVersion
	if v == "" {
		v = DefaultAPIVersion
	}
	dst = AppendEscape(dst, v)
	if u.ClientType != "" {
		dst = append(dst, "&DeviceClientType="...)
		dst = AppendEscape(dst, u.ClientType)
	}
	if u.ModelID != "" {
		dst = append(dst, "&model-id="...)
		dst = AppendEscape(dst, u.ModelID)
	}
	return dst
}

// String returns the username as Append writes it. Allocates.
func (u *Username) String() string { return string(u.Append(nil)) }

// ClientID returns the MQTT ClientId that must go with this username:
// deviceId, or deviceId/moduleId for a module.
func (u *Username) ClientID() string {
	if u.ModuleID == "" {
		return u.DeviceID
	}
	return u.DeviceID + "/" + u.ModuleID
}

// MatchesClientID reports whether clientID names the same identity as the
// username (contract §1: "the id(s) must equal ClientId"; a mismatch gets
// CONNACK 0x05).
func (u *Username) MatchesClientID(clientID []byte) bool {
	if u.ModuleID == "" {
		return string(clientID) == u.DeviceID
	}
	d, m, ok := bytes.Cut(clientID, []byte("/"))
	return ok && string(d) == u.DeviceID && string(m) == u.ModuleID
}

// ParseUsername parses a CONNECT username the way edgeHub does (contract
// §1): split on '/'; if the last segment starts with '?', three segments
// are a device and four a module; otherwise the legacy form is accepted
// when the last segment contains "api-version=". Query values are
// percent-decoded; of duplicate parameters the first counts; unknown
// parameters (such as Edge's auth-chain) are ignored. A missing
// api-version is accepted (the hub tolerates it but twin operations may
// fail). Errors wrap ErrMalformedUsername. Allocates.
func ParseUsername(s []byte) (Username, error) {
	segs := bytes.Split(s, []byte("/"))
	if len(segs) != 3 && len(segs) != 4 {
		return Username{}, &TopicError{Field: "want 3 or 4 '/'-separated segments", Err: ErrMalformedUsername}
	}
	last := segs[len(segs)-1]
	var u Username
	var query []byte
	switch {
	case len(last) > 0 && last[0] == '?':
		query = last[1:]
	case bytes.Contains(last, []byte("api-version=")):
		query, u.Legacy = last, true
	default:
		return Username{}, &TopicError{Field: "no '?' query or legacy api-version", Err: ErrMalformedUsername}
	}
	if len(segs[0]) == 0 {
		return Username{}, &TopicError{Field: "host", Err: ErrMalformedUsername}
	}
	if !ValidID(segs[1]) {
		return Username{}, &TopicError{Field: "device id", Err: ErrMalformedUsername}
	}
	u.Host, u.DeviceID = string(segs[0]), string(segs[1])
	if len(segs) == 4 {
		if !ValidID(segs[2]) {
			return Username{}, &TopicError{Field: "module id", Err: ErrMalformedUsername}
		}
		u.ModuleID = string(segs[2])
	}
	// Like edgeHub, the first of duplicate parameters wins.
	var haveAPI, haveType, haveModel bool
	it := ScanBag(query)
	for p, ok := it.Next(); ok; p, ok = it.Next() {
		switch {
		case !haveAPI && keyIs(p.Key, "api-version"):
			u.APIVersion, haveAPI = Unescape(p.Value), true
		case !haveType && keyIs(p.Key, "DeviceClientType"):
			u.ClientType, haveType = Unescape(p.Value), true
		case !haveModel && keyIs(p.Key, "model-id"):
			u.ModelID, haveModel = Unescape(p.Value), true
		}
	}
	if err := it.Err(); err != nil {
		return Username{}, &TopicError{Field: "query", Err: ErrMalformedUsername}
	}
	return u, nil
}
