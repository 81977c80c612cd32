//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package eventlog

import "os"

// lockDir is a no-op where flock is unavailable: the caller must not open
// one directory twice.
func lockDir(dir string) (*os.File, error) { return nil, nil }

func unlockDir(f *os.File) {}

// syncDir is best effort where directories cannot be synced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync()
	return nil
}
