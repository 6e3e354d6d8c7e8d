//go:build unix

package keystore

import "syscall"

// openFlags make opening one of our files neither follow a symlink nor block
// (a FIFO or device put in its place).
const openFlags = syscall.O_NONBLOCK | syscall.O_NOFOLLOW
