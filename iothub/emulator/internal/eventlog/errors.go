package eventlog

import "errors"

// Sentinel errors. Every error this package returns for a condition below
// wraps the matching sentinel, so callers branch with errors.Is.
var (
	// ErrClosed is returned by every call on a Log after Close, and by
	// waiting readers when the Log is closed under them.
	ErrClosed = errors.New("eventlog: log closed")

	// ErrTooLarge means a record is longer than Options.MaxRecordBytes.
	// Nothing of the Append call that carried it was stored.
	ErrTooLarge = errors.New("eventlog: record too large")

	// ErrCorrupt means stored data failed its checks where a torn tail
	// cannot explain it: a bad segment header, a checksum mismatch or a
	// sequence gap inside a sealed segment, or segment files that do not
	// follow each other.
	ErrCorrupt = errors.New("eventlog: corrupt log")

	// ErrLocked means another Log (in this process or another) has the
	// directory open.
	ErrLocked = errors.New("eventlog: directory in use by another log")

	// ErrFailed wraps the cause of a failed write or sync. Once it is
	// returned the Log accepts no more records (the state of the file after
	// a failed fsync is unknown); Close it and Open the directory again,
	// which keeps every acknowledged record and cuts whatever is torn.
	ErrFailed = errors.New("eventlog: write failed")

	// ErrInvalidOptions means Options holds a value out of range.
	ErrInvalidOptions = errors.New("eventlog: invalid options")
)
