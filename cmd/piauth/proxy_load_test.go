package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/stream"
)

// heldStreams is how many streams BenchmarkProxyHeldStreams holds open.
const heldStreams = 200

// BenchmarkProxyHeldStreams measures what an open stream costs a real
// `piauth proxy` process: its resident memory (VmRSS) with heldStreams
// streams held in the middle (the emulator's StreamGate holds every event
// after message_start) minus its resident memory idle (after a warm-up),
// per stream, reported as KB/stream (scripts/bench.sh: proxy_kb_per_stream).
func BenchmarkProxyHeldStreams(b *testing.B) {
	gate := testenv.NewStreamGate()
	emu := emulator.New(emulator.Options{Scenario: &emulator.Scenario{Reply: emulator.Reply{EventDelayMS: 1, Deltas: 5}}, Sleep: gate.Sleep})
	up := httptest.NewServer(emu)
	b.Cleanup(up.Close)
	b.Cleanup(gate.Open)
	dir := b.TempDir()
	writeLogin(b, dir, proxyTok("held"))

	cmd := exec.Command(piauthBinary(b), "--dir", dir, "--keyring", "off", "proxy", "--no-auth", "--addr", "127.0.0.1:0")
	state := b.TempDir()
	cmd.Env = relEnv(map[string]string{"PIAUTH_BASE_URL": up.URL, "PIAUTH_STATE_DIR": state, "XDG_CONFIG_HOME": state, "PIAUTH_LEDGER": "off"})
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	br := bufio.NewReader(stdout)
	first, err := br.ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	go io.Copy(io.Discard, br) //nolint:errcheck // drain
	base := strings.TrimSpace(strings.TrimPrefix(first, "listening on "))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: heldStreams}}
	send := func(streamed bool) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodPost, base+"/v1/messages", bytes.NewReader(chatBody(streamed)))
		if err != nil {
			return nil, err
		}
		req.Header.Set("content-type", "application/json")
		req.Header.Set("anthropic-version", "2023-06-01")
		return client.Do(req)
	}
	for range 5 { // warm-up: what every request needs is loaded
		resp, err := send(false)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	idle := rssKB(b, cmd.Process.Pid)

	perStream := 0.0
	for b.Loop() {
		var wg sync.WaitGroup
		held := make(chan *http.Response, heldStreams)
		errs := make(chan error, heldStreams)
		for range heldStreams {
			wg.Go(func() {
				resp, err := send(true)
				if err != nil {
					errs <- err
					return
				}
				if err := stream.CheckResponse(resp); err != nil {
					errs <- err
					return
				}
				dec := stream.NewDecoder(resp.Body)
				if !dec.Next() || dec.Event().Name != "message_start" {
					errs <- dec.Err()
					return
				}
				held <- resp
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatalf("open stream: %v", err)
		}
		if perStream == 0 {
			perStream = float64(rssKB(b, cmd.Process.Pid)-idle) / heldStreams
		}
		close(held)
		for resp := range held {
			resp.Body.Close()
		}
	}
	b.ReportMetric(perStream, "KB/stream")
	b.ReportMetric(float64(idle), "idle-KB")
}

// rssKB is VmRSS of process pid in KB.
func rssKB(b *testing.B, pid int) int {
	b.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// writeLogin writes an agent dir's auth.json with a valid OAuth login.
func writeLogin(b *testing.B, dir, tok string) {
	b.Helper()
	doc := `{"anthropic":{"type":"oauth","access":"` + tok + `","refresh":"","expires":4102444800000}}`
	if err := os.WriteFile(filepath.Join(dir, "auth.json"), []byte(doc), 0o600); err != nil {
		b.Fatal(err)
	}
}
