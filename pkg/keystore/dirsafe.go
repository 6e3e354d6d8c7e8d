package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrUnsafeDir means a directory piauth keeps secrets in can be changed by
// someone else (group/world-writable, or owned by another user), so nothing in
// it can be trusted. errors.Is(err, ErrUnsafeDir) is true for *UnsafeDirError.
var ErrUnsafeDir = errors.New("unsafe directory")

// UnsafeDirError describes a refused directory and the command that fixes it.
type UnsafeDirError struct {
	Path   string
	Mode   fs.FileMode // permission bits
	Owner  int         // owning uid (-1 when unknown)
	Reason string      // "writable by group and others", "owned by uid 1001, not you (uid 1000)"
	Fix    string      // e.g. "chmod go-w '/home/me/.pi/agent'"
}

func (e *UnsafeDirError) Error() string {
	return fmt.Sprintf("agent dir %s is %s (mode %04o): refusing to trust it, as ssh does; fix with: %s",
		e.Path, e.Reason, e.Mode.Perm(), e.Fix)
}

// Is makes errors.Is(err, ErrUnsafeDir) true.
func (e *UnsafeDirError) Is(target error) bool { return target == ErrUnsafeDir }

// CheckDir refuses a directory that others can write to: group- or
// world-writable, or owned by neither the current user nor root (0755 and 0700
// directories of one's own are fine). A missing directory is fine: piauth
// creates it 0700. On Windows only the existence is checked.
func CheckDir(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check agent dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("agent dir %s is not a directory", path)
	}
	owner, me, known := dirOwner(fi)
	perm := fi.Mode().Perm()
	q := shellQuote(path)
	switch {
	case known && owner != me && owner != 0:
		return &UnsafeDirError{Path: path, Mode: perm, Owner: owner,
			Reason: fmt.Sprintf("owned by uid %d, not you (uid %d)", owner, me),
			Fix:    fmt.Sprintf("chown %d %s && chmod go-w %s (or point piauth at your own dir with --dir)", me, q, q)}
	case known && perm&0o022 != 0:
		who := "group"
		switch perm & 0o022 {
		case 0o002:
			who = "others"
		case 0o022:
			who = "group and others"
		}
		return &UnsafeDirError{Path: path, Mode: perm, Owner: owner,
			Reason: "writable by " + who, Fix: "chmod go-w " + q}
	}
	return nil
}

// checkDir is CheckDir for the Store's agent dir.
func (s *Store) checkDir() error { return CheckDir(s.dir) }
