//go:build !unix

package keystore

// openFlags: Windows has no FIFOs in the file namespace and no O_NOFOLLOW.
const openFlags = 0
