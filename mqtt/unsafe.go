package mqtt

import "unsafe"

// stringBytes returns the bytes of s without copying. The result must only
// be read (it is passed to encoders and matchers, never written or kept):
// this is what lets Publish encode a string topic without allocating.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
