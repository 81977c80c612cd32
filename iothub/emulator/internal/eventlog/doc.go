// Package eventlog is the emulator's telemetry log: an append-only,
// segmented log of opaque records with group commit, the local counterpart
// of IoT Hub's built-in Event Hubs-compatible endpoint. The emulator
// encodes each message; this package stores bytes, numbers them and keeps
// them for a bounded time and size.
//
// # Guarantees
//
//   - Sequence numbers start at 0, increase by one per record and are never
//     reused, across restarts too. Every record carries the enqueued time
//     the log gave it (Options.Now, never earlier than the previous
//     record's).
//   - Append returns only when its records are durable: written and
//     fsync'd (fdatasync on Linux) into a segment whose creation was synced
//     with its directory. Concurrent appenders share one write and one sync
//     (group commit: a committer goroutine takes everything pending at
//     once). AppendAsync is the same without waiting; its callbacks run in
//     sequence order. A record whose Append returned nil survives SIGKILL
//     and power loss (as far as the disk honours fsync); one whose Append
//     failed, or whose callback has not run yet, may or may not be there
//     after reopening.
//   - Readers see only durable records, in sequence order: Read for what is
//     there now, a Cursor to follow the log live, Wait to block until a
//     sequence number exists. Positions: First() (earliest), Next()
//     (latest: only records appended from now on), any sequence number,
//     SeqAt(t) for an enqueued time. A reader positioned before First()
//     starts at First().
//   - Retention removes whole segments, oldest first: those whose every
//     record is older than Options.MaxAge (default one day) and those that
//     take the total over Options.MaxBytes. The active segment is sealed
//     and removed too once all of it has expired, so an idle log empties.
//   - Memory (Open("", …)) has the same API and semantics except that
//     nothing survives the process.
//
// # Bounds
//
// A record is at most Options.MaxRecordBytes (default 1 MiB, ErrTooLarge
// beyond). Appenders wait while 4 MiB are pending for the committer. A
// length read from disk is checked against MaxRecordBytes (and the bytes
// the segment holds) before any buffer grows for it, so a corrupt file
// cannot make the log allocate more than one maximal record.
//
// # Format
//
// A directory holds segment files named by the sequence number of their
// first record, 20 decimal digits and ".seg" (00000000000000000000.seg),
// and a LOCK file (flock, so one Log at a time per directory). A segment
// starts with a 32-byte header, then frames back to back, all little
// endian:
//
//	header  0 "hwevlog\x00"  8 version uint32 (1)  12 zero uint32
//	        16 base sequence number uint64  24 zero uint32
//	        28 CRC-32C of bytes 0..27
//	frame   0 payload length n uint32  4 CRC-32C of bytes 0..3 and 8..24+n
//	        8 sequence number uint64  16 enqueued time, Unix ns int64
//	        24 payload, n bytes
//
// The active segment file is kept written with zeros up to 4 MiB ahead of
// its data, so that each commit overwrites existing blocks and its
// fdatasync flushes data alone (no new size or allocation to journal);
// zeros never verify as a frame. Sealing a segment, and Close, cut the
// zeros, so sealed segments end exactly at their last record.
//
// On Open the newest segment is read frame by frame and cut at the first
// frame that is torn (shorter than its length), too long, fails its CRC or
// is out of sequence (preallocated zeros included): that can only be the
// tail of a write that was never acknowledged, because every acknowledged write was synced before the
// next began. A newest segment shorter than its header (a crash while
// creating it) is removed. Older segments are verified when first read;
// damage there is reported as ErrCorrupt, never cut. In memory a segment
// is a byte slice in the same format.
//
// A sparse index (one entry per 32 KiB) locates a sequence number or a
// time within a segment; it is built as records are committed, and for
// segments found at Open when they are first read.
//
// # Concurrency
//
// A Log is safe for concurrent use by multiple goroutines. A Cursor
// belongs to one goroutine; any number of cursors may read one Log while
// it is appended to.
package eventlog
