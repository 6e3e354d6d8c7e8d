package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Helpers of the reliability suite (issue 7). Every reliability test logs its
// figure as "result NAME VALUE"; scripts/reliability.sh runs them with -v and
// PIAUTH_RELIABILITY_FULL=1 (full sizes) and parses those lines.

// relFull reports whether the full (non -short) sizes were asked for.
func relFull() bool { return os.Getenv("PIAUTH_RELIABILITY_FULL") != "" }

// relSize is full when PIAUTH_RELIABILITY_FULL is set, else short.
func relSize(short, full int) int {
	if relFull() {
		return full
	}
	return short
}

// relResult logs a figure in the form the script parses.
func relResult(t *testing.T, name string, value any) {
	t.Helper()
	t.Logf("result %s %v", name, value)
}

// relProc is the outcome of one piauth process.
type relProc struct {
	code     int
	out, err string
}

// panicked reports whether the process died of a Go panic.
func (p relProc) panicked() bool {
	return strings.Contains(p.err, "panic:") || strings.Contains(p.err, "goroutine ")
}

// relRun runs the piauth binary with env (added to the environment) and stdin,
// bounded by a minute.
func relRun(t *testing.T, env map[string]string, stdin string, args ...string) relProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, piauthBinary(t), args...)
	cmd.Env = relEnv(env)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	p := relProc{out: stdout.String(), err: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		p.code = ee.ExitCode()
	} else if err != nil {
		p.code = -1
		p.err += "\n[run error: " + err.Error() + "]"
	}
	return p
}

// relEnv is the process environment plus env, with NO_COLOR set.
func relEnv(env map[string]string) []string {
	out := append(os.Environ(), "NO_COLOR=1")
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// snapshotDir returns every file of dir (recursively, symlinks as their
// target text) with its bytes and mode.
type fileSnap struct {
	data []byte
	mode fs.FileMode
}

func snapshotDir(t *testing.T, dir string) map[string]fileSnap {
	t.Helper()
	snap := map[string]fileSnap{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		var data []byte
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			data = []byte("symlink:" + target)
		} else if data, err = os.ReadFile(path); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		snap[rel] = fileSnap{data: data, mode: fi.Mode()}
		return nil
	})
	require.NoError(t, err)
	return snap
}

// changedFiles lists the files that differ between two snapshots (content,
// existence, or mode unless ignoreMode).
func changedFiles(before, after map[string]fileSnap, ignoreMode bool) []string {
	var out []string
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok:
			out = append(out, name+" (removed)")
		case !bytes.Equal(a.data, b.data):
			out = append(out, name+" (content)")
		case !ignoreMode && a.mode != b.mode:
			out = append(out, name+" (mode)")
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			out = append(out, name+" (created)")
		}
	}
	return out
}
