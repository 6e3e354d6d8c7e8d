package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
)

// `key remove` asks only when stdin and stderr are terminals.
func TestKeyRemoveConfirmation(t *testing.T) {
	k1, k2, k3 := testKey("oat01", 1), testKey("api03", 2), testKey("oat01", 3)
	keys := []string{k1, k2, k3}
	prompt := "Remove key 2/3 (" + keystore.Mask(k2) + ") from the pool, its state and the keyring? [y/N] "
	tests := []struct {
		name         string
		inTTY, errTT bool
		stdin        string
		args         []string
		code         int
		wantPrompt   bool
		wantErr      string
		wantKeys     []string
	}{
		{name: "yes", inTTY: true, errTT: true, stdin: "y\n", args: []string{"2"}, wantPrompt: true, wantKeys: []string{k1, k3}},
		{name: "YES", inTTY: true, errTT: true, stdin: " YES \n", args: []string{"2"}, wantPrompt: true, wantKeys: []string{k1, k3}},
		{name: "no", inTTY: true, errTT: true, stdin: "n\n", args: []string{"2"}, code: 1, wantPrompt: true,
			wantErr: "key remove canceled; nothing removed", wantKeys: keys},
		{name: "empty answer is no", inTTY: true, errTT: true, stdin: "\n", args: []string{"2"}, code: 1, wantPrompt: true, wantKeys: keys},
		{name: "end of input is no", inTTY: true, errTT: true, stdin: "", args: []string{"2"}, code: 1, wantPrompt: true, wantKeys: keys},
		{name: "other answer is no", inTTY: true, errTT: true, stdin: "sure\n", args: []string{"2"}, code: 1, wantPrompt: true, wantKeys: keys},
		{name: "--yes skips", inTTY: true, errTT: true, args: []string{"--yes", "2"}, wantKeys: []string{k1, k3}},
		{name: "-y after the argument", inTTY: true, errTT: true, args: []string{"2", "-y"}, wantKeys: []string{k1, k3}},
		{name: "no terminal: proceeds without asking", stdin: "n\n", args: []string{"2"}, wantKeys: []string{k1, k3}},
		{name: "stdin not a terminal", errTT: true, stdin: "n\n", args: []string{"2"}, wantKeys: []string{k1, k3}},
		{name: "stderr not a terminal", inTTY: true, stdin: "n\n", args: []string{"2"}, wantKeys: []string{k1, k3}},
		{name: "bad reference: no question", inTTY: true, errTT: true, stdin: "y\n", args: []string{"9"}, code: 2,
			wantErr: "no key 9", wantKeys: keys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writePoolFile(t, dir, keys, nil)
			f, bufs := newTestFactory(tt.stdin, nil)
			f.IO.InTTY, f.IO.ErrTTY = tt.inTTY, tt.errTT
			argv := append([]string{"piauth", "--dir", dir, "--keyring", "off", "key", "remove"}, tt.args...)
			code := run(context.Background(), f, argv)
			assert.Equal(t, tt.code, code, "stderr: %s", bufs.Err)
			if tt.wantPrompt {
				assert.True(t, strings.HasPrefix(bufs.Err.String(), prompt), "stderr: %q", bufs.Err)
			} else {
				assert.NotContains(t, bufs.Err.String(), "[y/N]")
			}
			assert.Contains(t, bufs.Err.String(), tt.wantErr)
			assert.Equal(t, tt.wantKeys, readPool(t, dir).Keys)
			if tt.code == 0 {
				assert.Contains(t, bufs.Out.String(), "removed key 2/3")
			}
			assertNoSecret(t, keys, bufs.Out.String(), bufs.Err.String())
		})
	}
}

// The key named in the question is the one removed, even when the pool
// changed while the user was answering.
func TestKeyRemoveConfirmedKeyMoved(t *testing.T) {
	k1, k2, k3 := testKey("oat01", 1), testKey("api03", 2), testKey("oat01", 3)
	dir := t.TempDir()
	writePoolFile(t, dir, []string{k1, k2, k3}, nil)
	in := &onRead{Reader: strings.NewReader("y\n"), fn: func() { writePoolFile(t, dir, []string{k2, k3}, nil) }}
	f, bufs := newTestFactory("", nil)
	f.IO.In, f.IO.InTTY, f.IO.ErrTTY = in, true, true
	code := run(context.Background(), f, []string{"piauth", "--dir", dir, "--keyring", "off", "key", "remove", "2"})
	require.Equal(t, 0, code, bufs.Err.String())
	assert.Equal(t, []string{k3}, readPool(t, dir).Keys, "k2 (now key 1) removed, not the new key 2")
}

// onRead calls fn before its first read.
type onRead struct {
	io.Reader
	once sync.Once
	fn   func()
}

func (r *onRead) Read(p []byte) (int, error) {
	r.once.Do(r.fn)
	return r.Reader.Read(p)
}

// ptyProc is piauth running on a pseudo-terminal (stdin, stdout, stderr).
type ptyProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func startPTY(t *testing.T, args ...string) *ptyProc {
	t.Helper()
	return startPTYEnv(t, nil, args...)
}

// startPTYEnv is startPTY with env added to the process's environment.
func startPTYEnv(t *testing.T, env []string, args ...string) *ptyProc {
	t.Helper()
	cmd := exec.Command(piauthBinary(t), args...)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), env...)
	tty, err := pty.Start(cmd)
	require.NoError(t, err)
	return newPTYProc(t, cmd, tty)
}

// newPTYProc watches cmd, started on tty: everything the terminal shows is
// collected (until EIO once the process has exited), and the process is
// killed and the pty closed when the test ends.
func newPTYProc(t *testing.T, cmd *exec.Cmd, tty *os.File) *ptyProc {
	p := &ptyProc{t: t, cmd: cmd, tty: tty, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil { // EIO once the process has exited
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = tty.Close()
	})
	return p
}

func (p *ptyProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the terminal has shown s.
func (p *ptyProc) waitFor(s string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.output(), s) {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %q; terminal shows %q", s, p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *ptyProc) write(s string) {
	p.t.Helper()
	_, err := p.tty.Write([]byte(s))
	require.NoError(p.t, err)
}

// wait returns the exit code and everything the terminal showed.
func (p *ptyProc) wait() (int, string) {
	p.t.Helper()
	timer := time.AfterFunc(20*time.Second, func() { _ = p.cmd.Process.Kill() })
	err := p.cmd.Wait()
	if !timer.Stop() {
		p.t.Fatalf("piauth did not exit; terminal shows %q", p.output())
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatal("terminal output did not end")
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), p.output()
	}
	require.NoError(p.t, err)
	return 0, p.output()
}

func TestKeyRemovePTY(t *testing.T) {
	k1, k2 := testKey("oat01", 1), testKey("api03", 2)
	for _, tt := range []struct {
		answer string
		code   int
		want   string
		keys   []string
	}{
		{"n\r", 1, "key remove canceled; nothing removed", []string{k1, k2}},
		{"y\r", 0, "removed key 2/2", []string{k1}},
	} {
		t.Run(strings.TrimSpace(tt.answer), func(t *testing.T) {
			dir := t.TempDir()
			writePoolFile(t, dir, []string{k1, k2}, nil)
			p := startPTY(t, "--dir", dir, "--keyring", "off", "key", "remove", "2")
			p.waitFor("Remove key 2/2 (" + keystore.Mask(k2) + ") from the pool, its state and the keyring? [y/N] ")
			p.write(tt.answer)
			code, out := p.wait()
			assert.Equal(t, tt.code, code, out)
			assert.Contains(t, out, tt.want)
			assert.Equal(t, tt.keys, readPool(t, dir).Keys)
		})
	}
}

// What is pasted into `key add --stdin` on a terminal is not echoed.
func TestKeyAddStdinPTY(t *testing.T) {
	k1, k2 := testKey("oat01", 1), testKey("api03", 2)
	dir := t.TempDir()
	p := startPTY(t, "--dir", dir, "--keyring", "off", "key", "add", "--stdin", "--label", "pasted")
	p.waitFor("Paste keys, one a line (not shown); end with Ctrl-D.")
	p.write(k1 + "\r\n  " + k2 + "x\x7f\r") // a paste, a typed line with a backspace
	p.write("\x04")                         // Ctrl-D
	code, out := p.wait()
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "added key 1/2 ("+keystore.Mask(k1)+")")
	assert.Contains(t, out, "added key 2/2 ("+keystore.Mask(k2)+")")
	assertNoSecret(t, []string{k1, k2}, out)
	assert.NotContains(t, out, "fake0001xfake0001x", "no part of a key echoed")
	pool := readPool(t, dir)
	assert.Equal(t, []string{k1, k2}, pool.Keys)
	assert.Equal(t, "pasted", pool.State(0).Label)

	// Ctrl-C ends it without adding anything (exit 130).
	dir = t.TempDir()
	p = startPTY(t, "--dir", dir, "--keyring", "off", "key", "add", "--stdin")
	p.waitFor("end with Ctrl-D.")
	p.write(k1 + "\r\x03")
	code, out = p.wait()
	assert.Equal(t, 130, code, out)
	assertNoSecret(t, []string{k1}, out)
	assert.NoFileExists(t, dir+"/"+keystore.PoolFileName)
}
