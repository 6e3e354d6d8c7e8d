// Package testenv is what piauth's tests share about their environment: the
// real Secret Service they run against and the recorded Messages streams
// beside the checkout. Only tests import it.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gokeyring "github.com/zalando/go-keyring"
)

// KeyringService returns a fresh service name on the real Secret Service,
// prefixed "piauth-test-", so parallel tests and packages never share items.
// It fails the test when no Secret Service answers (run the tests with
// scripts/test.sh, which starts one) and deletes the service's items when the
// test ends.
func KeyringService(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	svc := "piauth-test-" + hex.EncodeToString(b)
	errc := make(chan error, 1)
	go func() { _, err := gokeyring.Get(svc, "probe"); errc <- err }()
	select {
	case err := <-errc:
		if !errors.Is(err, gokeyring.ErrNotFound) {
			t.Fatalf("a Secret Service must answer (run the tests with scripts/test.sh): %v", err)
		}
	case <-time.After(10 * time.Second): // a hang bound, not a speed claim
		t.Fatal("the Secret Service did not answer in 10 s (run the tests with scripts/test.sh)")
	}
	t.Cleanup(func() { _ = gokeyring.DeleteAll(svc) })
	return svc
}

// SecretToolUsers lists the "username" attribute of every item of service svc
// as libsecret's secret-tool (not piauth's code) sees them.
func SecretToolUsers(t testing.TB, svc string) []string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("secret-tool", "search", "--all", "service", svc)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("secret-tool search: %v: %s", err, stderr.String())
	}
	var users []string
	for line := range strings.Lines(string(out) + stderr.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "attribute.username = "); ok {
			users = append(users, v)
		}
	}
	return users
}

// TranscriptsDir is the folder of recorded Messages streams (*.sse with their
// *.expected.json): $PIAUTH_TRANSCRIPTS, else shared/transcripts beside the
// checkout (tests run in a package folder two levels down). It fails the test
// when neither holds any recording.
func TranscriptsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("PIAUTH_TRANSCRIPTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "transcripts")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.sse"))
	if len(files) == 0 {
		t.Fatalf("no recorded transcripts in %s: set PIAUTH_TRANSCRIPTS", dir)
	}
	return dir
}

// Buffer is a bytes.Buffer safe for concurrent use: a log or status writer
// that a test reads while the code under test may still write to it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// SilentServer listens on a loopback port, accepts every connection and never
// answers, like a server that hangs; it returns "host:port". Everything is
// closed when the test ends.
func SilentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("silent server: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // accepted, never answered
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}

// StreamGate is an emulator Sleep (emulator.Options.Sleep) that lets each
// request's first delayed event pass and holds the later ones until Open:
// a test can act while streams are in the middle.
type StreamGate struct {
	mu   sync.Mutex
	seen map[<-chan struct{}]bool // by request context
	open chan struct{}
	once sync.Once
}

// NewStreamGate returns a closed gate.
func NewStreamGate() *StreamGate {
	return &StreamGate{seen: map[<-chan struct{}]bool{}, open: make(chan struct{})}
}

// Sleep passes a request's first call and blocks the later ones until Open
// or until ctx is done.
func (g *StreamGate) Sleep(ctx context.Context, _ time.Duration) error {
	g.mu.Lock()
	first := !g.seen[ctx.Done()]
	g.seen[ctx.Done()] = true
	g.mu.Unlock()
	if first {
		return nil
	}
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Open lets every held and later event pass.
func (g *StreamGate) Open() { g.once.Do(func() { close(g.open) }) }
