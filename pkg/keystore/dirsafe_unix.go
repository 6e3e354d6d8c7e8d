//go:build unix

package keystore

import (
	"io/fs"
	"os"
	"syscall"
)

// dirOwner returns the owner of fi and the current uid.
func dirOwner(fi fs.FileInfo) (owner, me int, known bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, os.Getuid(), false
	}
	return int(st.Uid), os.Getuid(), true
}
