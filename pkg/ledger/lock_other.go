//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package ledger

import (
	"context"
	"os"
)

func lockFile(*os.File) error { return ErrSpoolUnsupported }

func lockPath(context.Context, string) (func(), error) { return nil, ErrSpoolUnsupported }
