package eventlog

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults applied to zero fields of Options.
const (
	DefaultMaxAge         = 24 * time.Hour
	DefaultMaxBytes       = 1 << 30   // 1 GiB, on disk
	DefaultMemMaxBytes    = 128 << 20 // 128 MiB, in memory
	DefaultSegmentBytes   = 64 << 20  // 64 MiB, on disk
	DefaultMemSegment     = 4 << 20   // 4 MiB, in memory
	DefaultMaxRecordBytes = 1 << 20   // 1 MiB

	// MaxRecordLimit is the largest Options.MaxRecordBytes accepted.
	MaxRecordLimit = 64 << 20

	minSegmentBytes = 64 << 10
	maxBatchBytes   = 4 << 20 // pending bytes at which appenders wait for the committer
	indexEvery      = 32 << 10
	preallocBytes   = 4 << 20 // zeros written ahead of the active segment's data
)

// Options configures a Log. The zero value gives the documented defaults.
type Options struct {
	// MaxAge is how long records are kept, measured from their enqueued
	// time. Zero means DefaultMaxAge (one day, as IoT Hub's built-in
	// endpoint keeps by default); negative means no age limit.
	MaxAge time.Duration

	// MaxBytes caps the total size of the log's segments. Zero means
	// DefaultMaxBytes on disk and DefaultMemMaxBytes in memory; negative
	// means no size cap.
	MaxBytes int64

	// SegmentBytes is the size at which the log starts a new segment.
	// Retention removes whole segments, so this is its granularity. Zero
	// means DefaultSegmentBytes on disk and DefaultMemSegment in memory. It
	// is raised to 64 KiB at least and, when MaxBytes is set, lowered to
	// MaxBytes/4 at most.
	SegmentBytes int64

	// MaxRecordBytes is the largest record accepted (ErrTooLarge beyond).
	// Zero means DefaultMaxRecordBytes; at most MaxRecordLimit. A log must
	// be reopened with a MaxRecordBytes at least as large as the records it
	// holds, or they read as corrupt.
	MaxRecordBytes int

	// RetentionInterval is how often an idle log applies retention (it also
	// does after every commit). Zero means MaxAge/16 clamped to [1s, 1m].
	RetentionInterval time.Duration

	// Now is the clock that stamps enqueued times and judges their age.
	// Nil means time.Now.
	Now func() time.Time

	// Logger receives what Open repairs (a torn tail cut) and what
	// retention removes. Nil means silent.
	Logger *slog.Logger
}

func (o Options) withDefaults(memory bool) (Options, error) {
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
		if memory {
			o.MaxBytes = DefaultMemMaxBytes
		}
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
		if memory {
			o.SegmentBytes = DefaultMemSegment
		}
	}
	if o.MaxBytes > 0 && o.SegmentBytes > o.MaxBytes/4 {
		o.SegmentBytes = o.MaxBytes / 4
	}
	if o.SegmentBytes < minSegmentBytes {
		o.SegmentBytes = minSegmentBytes
	}
	if o.MaxRecordBytes == 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if o.MaxRecordBytes < 0 || o.MaxRecordBytes > MaxRecordLimit {
		return o, fmt.Errorf("%w: MaxRecordBytes %d outside [1, %d]", ErrInvalidOptions, o.MaxRecordBytes, MaxRecordLimit)
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = time.Minute
		if o.MaxAge > 0 {
			o.RetentionInterval = min(max(o.MaxAge/16, time.Second), time.Minute)
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
