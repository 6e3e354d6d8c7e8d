package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
)

// benchMarkdownUnit is about 1 KB of an answer's markdown: a heading, a
// paragraph with inline styles, a list and a fenced code block. The
// benchmark answer repeats it.
const benchMarkdownUnit = "## Step\n\n" +
	"The request is **streamed**, so the text arrives in small pieces; each piece is *appended* to what came " +
	"before it, and a block is rendered once a blank line, a heading or a closing fence says that it is complete. " +
	"Inline `code`, [links](https://example.com) and emphasis are styled within the paragraph.\n\n" +
	"- the first item of a list\n- a second item, a little longer than the first one\n- a third\n\n" +
	"```go\nfunc render(w io.Writer, blocks []string) error {\n\tfor _, b := range blocks {\n" +
	"\t\tif _, err := io.WriteString(w, b); err != nil {\n\t\t\treturn err\n\t\t}\n\t}\n\treturn nil\n}\n```\n\n"

// benchChatEnv is an emulator answering with scenario and an agent dir
// logged in to it; it returns the environment for piauth.
func benchChatEnv(b *testing.B, scenario string) (dir string, env map[string]string) {
	b.Helper()
	sc, err := emulator.ParseScenario([]byte(scenario))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(emulator.New(emulator.Options{Scenario: sc}))
	b.Cleanup(srv.Close)
	dir = b.TempDir()
	store, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOff})
	if err != nil {
		b.Fatal(err)
	}
	err = store.UpdateAuth(context.Background(), func(*keystore.Credential) (*keystore.Credential, error) {
		return &keystore.Credential{Type: "oauth", Access: chatToken("bench"), Refresh: "sk-ant-ort01-bench",
			Expires: time.Now().Add(time.Hour).UnixMilli()}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return dir, map[string]string{"PIAUTH_BASE_URL": srv.URL, "PIAUTH_TOKEN_URL": srv.URL + "/v1/oauth/token",
		"PIAUTH_STATE_DIR": b.TempDir(), "PIAUTH_LEDGER": "off"}
}

// BenchmarkChatMarkdownStream is `piauth chat --stream` on a (colour)
// terminal, in-process, for an 80 KB markdown answer in 20,000 deltas:
// rendered as markdown, and --raw (the peer: every delta written as it
// comes). markdown_stream_ratio in scripts/bench.sh is their ratio.
func BenchmarkChatMarkdownStream(b *testing.B) {
	text := strings.Repeat(benchMarkdownUnit, 80)
	textJSON, _ := json.Marshal(text)
	dir, env := benchChatEnv(b, `{"reply": {"text": `+string(textJSON)+`, "deltas": 20000}}`)
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"raw", []string{"--stream", "--raw", "hi"}},
		{"markdown", []string{"--stream", "hi"}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			for b.Loop() {
				f, bufs := newTestFactory("", env)
				f.IO.Out, f.IO.OutTTY = io.Discard, true
				argv := append([]string{"piauth", "--dir", dir, "--keyring", "off", "chat"}, mode.args...)
				if code := run(context.Background(), f, argv); code != 0 {
					b.Fatalf("chat exited %d: %s", code, bufs.Err)
				}
			}
		})
	}
}

// ptyWatch is a process on a pty whose output is watched for a string as it
// arrives (no polling delay): mark sets what to wait for, seen is the time
// it was first read.
type ptyWatch struct {
	tty  *os.File
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	from int    // where to look from
	want string // what to look for
	at   int    // the end of the last match
	hit  chan time.Time
}

// startPTYWatch starts cmd on a pty, watching for want from the start.
func startPTYWatch(b *testing.B, cmd *exec.Cmd, want string) (*ptyWatch, <-chan time.Time) {
	b.Helper()
	hit := make(chan time.Time, 1)
	w := &ptyWatch{cmd: cmd, want: want, hit: hit}
	w.mu.Lock() // the reader starts once w.tty is set
	defer w.mu.Unlock()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 100})
	if err != nil {
		b.Fatal(err)
	}
	w.tty = tty
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			now := time.Now()
			w.mu.Lock()
			w.out.Write(buf[:n])
			if i := strings.Index(w.out.String()[w.from:], w.want); w.hit != nil && i >= 0 {
				w.at = w.from + i + len(w.want)
				w.hit <- now
				w.hit = nil
			}
			w.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = tty.Close()
	})
	return w, hit
}

// expect arms the watch for s after the last match.
func (w *ptyWatch) expect(s string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.from, w.want = w.at, s
	if i := strings.Index(w.out.String()[w.from:], s); i >= 0 {
		w.at = w.from + i + len(s)
		ch <- time.Now()
		return ch
	}
	w.hit = ch
	return ch
}

func (w *ptyWatch) await(b *testing.B, ch <-chan time.Time) time.Time {
	b.Helper()
	select {
	case t := <-ch:
		return t
	case <-time.After(20 * time.Second):
		w.mu.Lock()
		defer w.mu.Unlock()
		b.Fatalf("timed out waiting for %q; terminal shows %q", w.want, w.out.String()[w.from:])
		return time.Time{}
	}
}

// BenchmarkREPLTTFT is the time to the first rendered text of an answer on
// a real terminal: in the REPL (from the Enter that sends the prompt), and
// for the one-shot `piauth chat --stream` (from the process's start, the
// peer). It reports ns/ttft; repl_ttft_ratio in scripts/bench.sh is their
// ratio.
func BenchmarkREPLTTFT(b *testing.B) {
	bin := piauthBinary(b)
	dir, env := benchChatEnv(b, `{"reply": {"text": "First words of the answer.\n\nAnd the rest of it.", "deltas": 8}}`)
	environ := append(os.Environ(), "NO_COLOR=")
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	const first = "First words"
	b.Run("repl", func(b *testing.B) {
		cmd := exec.Command(bin, "--dir", dir, "--keyring", "off", "chat")
		cmd.Env = environ
		w, ready := startPTYWatch(b, cmd, "> ")
		w.await(b, ready)
		var total time.Duration
		for b.Loop() {
			seen := w.expect(first)
			start := time.Now()
			if _, err := w.tty.WriteString("hi\r"); err != nil {
				b.Fatal(err)
			}
			total += w.await(b, seen).Sub(start)
			w.await(b, w.expect("> "))
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/ttft")
	})
	b.Run("oneshot", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			cmd := exec.Command(bin, "--dir", dir, "--keyring", "off", "chat", "--stream", "hi")
			cmd.Env = environ
			start := time.Now()
			w, seen := startPTYWatch(b, cmd, first)
			total += w.await(b, seen).Sub(start)
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/ttft")
	})
}
