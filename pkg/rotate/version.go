package rotate

// The Claude Code version gate: the service refuses OAuth requests whose
// user-agent claims a Claude Code version below the model's floor, and says
// which version it wants. The Transport learns it, records it for every
// process (keystore.RaiseClaudeCodeVersion, never lowered) and retries the
// request once.

import (
	"context"
	"net/http"
	"os"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

// sendVersioned sends req with tok; when the answer says our Claude Code
// version is too old, it records the version the service asked for (never
// lowering it) and, once per request, sends again with it. The answer to
// the first attempt is returned when the version cannot be raised.
func (t *Transport) sendVersioned(ctx context.Context, req *http.Request, tok string, a *attempt) (*http.Response, error) {
	svc := t.service()
	resp, err := t.send(ctx, req, tok, svc)
	if err != nil || resp.StatusCode != http.StatusBadRequest || a.versionRetried {
		return resp, err
	}
	resp, apiErr := readError(resp)
	required, ok := stream.RequiredVersion(apiErr)
	if !ok || !stream.NewerVersion(required, svc.Version()) {
		return resp, nil
	}
	a.versionRetried = true
	t.learn(ctx, required)
	t.logf("piauth: the service requires Claude Code %s (we sent %s); using it from now on and retrying", required, svc.Version())
	return t.send(ctx, req, tok, t.service())
}

// service is the Service of the next request: t.Service (or the built-in
// one) claiming the newest of its own and the learnt Claude Code version.
func (t *Transport) service() *stream.Service {
	svc := t.Service
	if svc == nil {
		svc = stream.Builtin()
	}
	v := t.learntVersion()
	if v == "" || !stream.NewerVersion(v, svc.Version()) {
		return svc
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.versioned == nil || t.versioned.Version() != v {
		t.versioned = svc.WithVersion(v) // built once per learnt version, not per request
	}
	return t.versioned
}

// learntVersion is the newest Claude Code version learnt here or by any
// process (the Learned file, or the shared store: versionBackend). The file
// is re-read only when its size or modification time changed: a stat per
// request, not a parse.
func (t *Transport) learntVersion() string {
	if vb := t.versionBackend(); vb != nil {
		v, err := vb.ClaudeCodeVersion(context.Background())
		t.mu.Lock()
		defer t.mu.Unlock()
		if err == nil && stream.NewerVersion(v, t.version) {
			t.version = v
		}
		return t.version
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Learned != "" {
		if fi, err := os.Stat(t.Learned); err == nil && (fi.ModTime() != t.learnedMod || fi.Size() != t.learnedSize) {
			t.learnedMod, t.learnedSize = fi.ModTime(), fi.Size()
			if l, err := keystore.ReadLearned(t.Learned); err == nil && stream.NewerVersion(l.ClaudeCodeVersion, t.version) {
				t.version = l.ClaudeCodeVersion
			}
		}
	}
	return t.version
}

// learn records version v for this Transport and, with Learned, for every
// process; a failure to write is reported, the request still retried.
func (t *Transport) learn(ctx context.Context, v string) {
	t.mu.Lock()
	if stream.NewerVersion(v, t.version) {
		t.version = v
	}
	t.mu.Unlock()
	if vb := t.versionBackend(); vb != nil {
		if _, err := vb.RaiseClaudeCodeVersion(ctx, v, t.Source.now()); err != nil {
			t.logf("piauth: warning: could not record the Claude Code version %s: %v", v, err)
		}
		return
	}
	if t.Learned == "" {
		return
	}
	if _, err := keystore.RaiseClaudeCodeVersion(ctx, t.Learned, v, t.Source.now()); err != nil {
		t.logf("piauth: warning: could not record the Claude Code version %s: %v", v, err)
	}
}

// versionBackend is the shared store keeping the learnt version, when the
// pool lives in one that does (keystore.VersionBackend); nil otherwise.
func (t *Transport) versionBackend() keystore.VersionBackend {
	if t.Source == nil || t.Source.Store == nil {
		return nil
	}
	vb, _ := t.Source.Store.Backend().(keystore.VersionBackend)
	return vb
}
