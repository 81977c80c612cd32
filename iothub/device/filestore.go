package device

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// FileStore is an mqtt.Store kept in a file, so that telemetry accepted by
// Send but not yet acknowledged survives a process restart: a new Client
// given the same file (and the same identity) resends it, in the original
// order, after it connects.
//
// The file is an append-only log of records (put, delete), each with a
// CRC-32, compacted when it grows to several times its live contents. A
// record torn by a crash is ignored when the file is opened. Without
// FileStoreOptions.Sync, a record reaches the operating system (which
// survives a process crash) but not necessarily the disk (power loss).
//
// One FileStore must be used by one Client at a time; it is safe for
// concurrent use by that client's goroutines.
type FileStore struct {
	path string
	sync bool

	mu      sync.Mutex
	f       *os.File
	entries map[packet.ID]*fileEntry
	seq     uint64
	size    int64 // bytes in the file
	live    int64 // bytes of the records of live entries
	buf     []byte
	err     error // sticky write failure
}

type fileEntry struct {
	seq uint64
	pkt []byte
}

// FileStoreOptions configures OpenFileStore. The zero value is usable.
type FileStoreOptions struct {
	// Sync makes every change wait for the disk (fsync): it then survives
	// power loss too, at the cost of a disk flush per message.
	Sync bool
}

// File layout.
const (
	fileMagic      = "hubwire-store 1\n"
	recHeader      = 1 + 2 + 4 + 4 // op, id, length, crc
	opPut     byte = 'P'
	opDelete  byte = 'D'
	// compactMin is the file size under which the store never compacts.
	compactMin = 1 << 20
	// maxRecord bounds a stored packet (a PUBLISH of IoT Hub's largest
	// message plus its topic, with room to spare); longer length fields
	// mark a corrupt record.
	maxRecord = 1 << 20
)

// ErrStoreCorrupt is returned by OpenFileStore for a file that is not a
// store (a wrong header); torn or corrupt records at the end are dropped
// instead.
var ErrStoreCorrupt = errors.New("device: file store corrupt")

// OpenFileStore opens (creating it if needed) the store at path and reads
// back its packets.
func OpenFileStore(path string, opts FileStoreOptions) (*FileStore, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	s := &FileStore{path: path, sync: opts.Sync, f: f, entries: make(map[packet.ID]*fileEntry)}
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// load replays the log, truncating a torn tail.
func (s *FileStore) load() error {
	st, err := s.f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		if _, err := s.f.Write([]byte(fileMagic)); err != nil {
			return err
		}
		s.size = int64(len(fileMagic))
		return s.syncFile()
	}
	r := bufio.NewReader(s.f)
	magic := make([]byte, len(fileMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != fileMagic {
		return ErrStoreCorrupt
	}
	off := int64(len(fileMagic))
	var hdr [recHeader]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break
		}
		op, id, n, sum := hdr[0], packet.ID(binary.BigEndian.Uint16(hdr[1:3])), binary.BigEndian.Uint32(hdr[3:7]), binary.BigEndian.Uint32(hdr[7:11])
		if (op != opPut && op != opDelete) || n > maxRecord {
			break
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			break
		}
		h := crc32.NewIEEE()
		h.Write(hdr[:7])
		h.Write(data)
		if h.Sum32() != sum {
			break
		}
		off += recHeader + int64(n)
		s.apply(op, id, data)
	}
	// Drop a torn or corrupt tail, then append after the last good record.
	if err := s.f.Truncate(off); err != nil {
		return err
	}
	if _, err := s.f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	s.size = off
	return nil
}

// apply changes the in-memory state for one record.
func (s *FileStore) apply(op byte, id packet.ID, data []byte) {
	switch op {
	case opPut:
		e := s.entries[id]
		if e == nil {
			s.seq++
			e = &fileEntry{seq: s.seq}
			s.entries[id] = e
		} else {
			s.live -= recHeader + int64(len(e.pkt))
		}
		e.pkt = append(e.pkt[:0], data...)
		s.live += recHeader + int64(len(data))
	case opDelete:
		if e := s.entries[id]; e != nil {
			s.live -= recHeader + int64(len(e.pkt))
			delete(s.entries, id)
		}
	}
}

// appendRecord writes one record.
func (s *FileStore) appendRecord(op byte, id packet.ID, data []byte) error {
	if s.err != nil {
		return s.err
	}
	if s.f == nil {
		return os.ErrClosed
	}
	b := append(s.buf[:0], op, byte(id>>8), byte(id), 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[3:7], uint32(len(data)))
	sum := crc32.Update(crc32.Update(0, crc32.IEEETable, b[:7]), crc32.IEEETable, data)
	binary.BigEndian.PutUint32(b[7:11], sum)
	b = append(b, data...)
	s.buf = b
	if _, err := s.f.Write(b); err != nil {
		s.err = err
		return err
	}
	s.size += int64(len(b))
	return s.syncFile()
}

func (s *FileStore) syncFile() error {
	if !s.sync {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		s.err = err
		return err
	}
	return nil
}

// Put implements mqtt.Store.
func (s *FileStore) Put(id packet.ID, pkt []byte) error {
	if len(pkt) > maxRecord {
		return ErrInvalidMessage
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.appendRecord(opPut, id, pkt); err != nil {
		return err
	}
	s.apply(opPut, id, pkt)
	return nil
}

// Delete implements mqtt.Store.
func (s *FileStore) Delete(id packet.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries[id] == nil {
		return nil
	}
	if err := s.appendRecord(opDelete, id, nil); err != nil {
		return err
	}
	s.apply(opDelete, id, nil)
	if s.size > compactMin && s.size > 4*s.live {
		return s.compactLocked()
	}
	return nil
}

// sorted returns the live entries' ids in the order they were first put.
func (s *FileStore) sortedLocked() []packet.ID {
	ids := make([]packet.ID, 0, len(s.entries))
	for id := range s.entries {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b packet.ID) int {
		sa, sb := s.entries[a].seq, s.entries[b].seq
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return 0
	})
	return ids
}

// Range implements mqtt.Store. Allocates (a snapshot).
func (s *FileStore) Range(f func(id packet.ID, pkt []byte) bool) error {
	s.mu.Lock()
	ids := s.sortedLocked()
	pkts := make([][]byte, len(ids))
	for i, id := range ids {
		pkts[i] = slices.Clone(s.entries[id].pkt)
	}
	s.mu.Unlock()
	for i, id := range ids {
		if !f(id, pkts[i]) {
			break
		}
	}
	return nil
}

// Reset implements mqtt.Store: it empties the file.
func (s *FileStore) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.entries)
	s.live = 0
	return s.compactLocked()
}

// Len returns the number of stored packets.
func (s *FileStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// compactLocked rewrites the file with the live entries only, in order,
// and replaces the old file atomically (rename).
func (s *FileStore) compactLocked() error {
	if s.f == nil {
		return os.ErrClosed
	}
	tmp := s.path + ".tmp"
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	old, oldSize := s.f, s.size
	s.f, s.size = nf, 0
	fail := func(err error) error {
		nf.Close()
		os.Remove(tmp)
		s.f, s.size = old, oldSize
		s.err = nil
		return err
	}
	if _, err := nf.Write([]byte(fileMagic)); err != nil {
		return fail(err)
	}
	s.size = int64(len(fileMagic))
	for _, id := range s.sortedLocked() {
		if err := s.appendRecord(opPut, id, s.entries[id].pkt); err != nil {
			return fail(err)
		}
	}
	if err := nf.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fail(err)
	}
	old.Close()
	return nil
}

// Close closes the file. The store keeps its contents for the next
// OpenFileStore.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return os.ErrClosed
	}
	err := s.f.Close()
	s.f = nil
	return err
}

var _ mqtt.Store = (*FileStore)(nil)
