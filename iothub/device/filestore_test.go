package device

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubwire/hubwire/packet"
)

func storeContents(t *testing.T, s *FileStore) []string {
	t.Helper()
	var out []string
	if err := s.Range(func(id packet.ID, pkt []byte) bool {
		out = append(out, fmt.Sprintf("%d=%s", id, pkt))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFileStoreReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	s, err := OpenFileStore(path, FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []packet.ID{7, 3, 9, 1} {
		if err := s.Put(id, []byte(fmt.Sprint("p", id))); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Delete(9)
	_ = s.Put(3, []byte("p3-replaced")) // keeps its place
	_ = s.Delete(42)                    // absent: no-op
	want := []string{"7=p7", "3=p3-replaced", "1=p1"}
	if d := cmp.Diff(want, storeContents(t, s)); d != "" {
		t.Fatalf("contents (-want +got):\n%s", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenFileStore(path, FileStoreOptions{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if d := cmp.Diff(want, storeContents(t, s2)); d != "" {
		t.Fatalf("after reopen (-want +got):\n%s", d)
	}
	_ = s2.Put(9, []byte("p9-again")) // a re-used id goes last
	if got := storeContents(t, s2); got[len(got)-1] != "9=p9-again" || s2.Len() != 4 {
		t.Fatalf("contents %v", got)
	}
}

// TestFileStoreTornTail: a record cut short by a crash is dropped, the
// ones before it kept, and appending continues after them.
func TestFileStoreTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	s, _ := OpenFileStore(path, FileStoreOptions{})
	_ = s.Put(1, []byte("one"))
	_ = s.Put(2, []byte("two"))
	s.Close()
	st, _ := os.Stat(path)
	if err := os.Truncate(path, st.Size()-2); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFileStore(path, FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"1=one"}, storeContents(t, s)); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	_ = s.Put(3, []byte("three"))
	s.Close()
	s, _ = OpenFileStore(path, FileStoreOptions{})
	defer s.Close()
	if d := cmp.Diff([]string{"1=one", "3=three"}, storeContents(t, s)); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func TestFileStoreCorruptHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	if err := os.WriteFile(path, []byte("this is not a store file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(path, FileStoreOptions{}); err != ErrStoreCorrupt {
		t.Fatalf("err = %v, want ErrStoreCorrupt", err)
	}
}

// TestFileStoreCompaction: a long run of puts and deletes keeps the file
// bounded and the contents right.
func TestFileStoreCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	s, _ := OpenFileStore(path, FileStoreOptions{})
	payload := make([]byte, 512)
	for i := range 20000 {
		id := packet.ID(i + 1)
		if err := s.Put(id, payload); err != nil {
			t.Fatal(err)
		}
		if i%1000 != 999 || i == 19999 {
			if err := s.Delete(id); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, _ := os.Stat(path)
	if st.Size() > 4*compactMin {
		t.Fatalf("file is %d bytes after compaction", st.Size())
	}
	live := s.Len()
	s.Close()
	s, _ = OpenFileStore(path, FileStoreOptions{})
	defer s.Close()
	if s.Len() != live || live != 19 {
		t.Fatalf("%d entries after reopen, %d before, want 19", s.Len(), live)
	}
	if err := s.Reset(); err != nil || s.Len() != 0 {
		t.Fatalf("Reset: %v, %d left", err, s.Len())
	}
}
