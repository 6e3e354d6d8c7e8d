//go:build !unix

package keystore

import "io/fs"

// dirOwner: Windows has no uid/mode bits to judge (ACLs): nothing is checked.
func dirOwner(fs.FileInfo) (owner, me int, known bool) { return -1, -1, false }
