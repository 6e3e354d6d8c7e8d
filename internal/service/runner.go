package service

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs one command (argv[0] found in $PATH) and returns its stdout;
// a failure carries the command and what it said on stderr.
type Runner func(ctx context.Context, argv []string) ([]byte, error)

// ExecRunner runs commands as processes with environment env (nil: this
// process's).
func ExecRunner(env []string) Runner {
	return func(ctx context.Context, argv []string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = env
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			if msg := strings.TrimSpace(errOut.String()); msg != "" {
				return out.Bytes(), fmt.Errorf("%s: %w: %s", CommandLine(argv), err, msg)
			}
			return out.Bytes(), fmt.Errorf("%s: %w", CommandLine(argv), err)
		}
		return out.Bytes(), nil
	}
}
