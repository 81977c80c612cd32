package emulator

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// On-disk layout: one bbolt file, hub.db, in the data directory, with one
// bucket per kind of state. Values are JSON documents; keys are ids (and, for
// ordered records, a big-endian sequence number). This file is the only
// place that knows the layout.
var (
	bucketDevices  = []byte("devices")  // deviceId → deviceRecord
	bucketModules  = []byte("modules")  // deviceId "/" moduleId → moduleRecord
	bucketPolicies = []byte("policies") // keyName → Policy
	bucketTwins    = []byte("twins")    // identity key → twinRecord
	bucketC2D      = []byte("c2d")      // deviceId 0x00 seq → c2dRecord
	bucketFeedback = []byte("feedback") // seq → FeedbackRecord
	bucketCAs      = []byte("cacerts")  // name → caRecord
	bucketSessions = []byte("sessions") // identity key → sessionRecord
	bucketMeta     = []byte("meta")     // counters
	allBuckets     = [][]byte{bucketDevices, bucketModules, bucketPolicies, bucketTwins, bucketC2D,
		bucketFeedback, bucketCAs, bucketSessions, bucketMeta}
)

// store persists the hub's state. A nil *store is the in-memory mode: every
// write succeeds without doing anything and loads find nothing.
type store struct {
	db *bolt.DB
}

// openStore opens (creating) dir/hub.db. It fails at once, naming the
// file, when another process holds it.
func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("emulator: data directory: %w", err)
	}
	path := filepath.Join(dir, "hub.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("emulator: %s is in use by another emulator process; stop it or choose another data directory", path)
		}
		return nil, fmt.Errorf("emulator: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("emulator: init %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error {
	if s == nil {
		return nil
	}
	return s.db.Close()
}

// op is one write in a transaction: a put of a JSON value, or a delete
// when v is nil.
type op struct {
	bucket []byte
	key    []byte
	v      any
}

func put(bucket []byte, key []byte, v any) op { return op{bucket: bucket, key: key, v: v} }
func del(bucket []byte, key []byte) op        { return op{bucket: bucket, key: key} }

// write applies ops in one durable transaction (fsync before returning).
func (s *store) write(ops ...op) error {
	if s == nil || len(ops) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error { return applyOps(tx, ops) })
}

// batch is write through bbolt's Batch: concurrent callers share one
// transaction and one fsync (group commit). It returns once the ops are
// durable.
func (s *store) batch(ops ...op) error {
	if s == nil || len(ops) == 0 {
		return nil
	}
	return s.db.Batch(func(tx *bolt.Tx) error { return applyOps(tx, ops) })
}

func applyOps(tx *bolt.Tx, ops []op) error {
	for _, o := range ops {
		b := tx.Bucket(o.bucket)
		if o.v == nil {
			if err := b.Delete(o.key); err != nil {
				return err
			}
			continue
		}
		var data []byte
		switch v := o.v.(type) {
		case []byte:
			data = v
		default:
			var err error
			if data, err = json.Marshal(v); err != nil {
				return err
			}
		}
		if err := b.Put(o.key, data); err != nil {
			return err
		}
	}
	return nil
}

// deletePrefix deletes every key of bucket starting with prefix, in one
// durable transaction together with ops.
func (s *store) deletePrefix(bucket, prefix []byte, ops ...op) error {
	if s == nil {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return applyOps(tx, ops)
	})
}

func hasPrefix(b, p []byte) bool { return len(b) >= len(p) && string(b[:len(p)]) == string(p) }

// each calls fn for every key of bucket in key order. The slices are valid
// only during the call.
func (s *store) each(bucket []byte, fn func(k, v []byte) error) error {
	if s == nil {
		return nil
	}
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(fn)
	})
}

// loadJSON decodes every value of bucket with fn.
func loadJSON[T any](s *store, bucket []byte, fn func(k []byte, v *T) error) error {
	return s.each(bucket, func(k, data []byte) error {
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("emulator: corrupt record %q in %s: %w", k, bucket, err)
		}
		return fn(k, &v)
	})
}

// seqKey appends the 8-byte big-endian form of n to prefix.
func seqKey(prefix []byte, n uint64) []byte {
	k := make([]byte, len(prefix), len(prefix)+8)
	copy(k, prefix)
	return binary.BigEndian.AppendUint64(k, n)
}
