package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/piauth/piauth/pkg/keystore"
)

// Watch wraps base, the transport under the rotation (rotate.Transport's
// Base, which sends each attempt with its credential), so that the proxy
// sees every upstream attempt: the anthropic-ratelimit-unified-* headers
// last seen per key (sent back with a 429 when every key is cooling), the
// upstream latency and the rotations of each request. Without it the proxy
// works the same, with fewer figures and no rate-limit headers on its own
// 429s.
func (p *Proxy) Watch(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &watchTransport{base: base, p: p}
}

type watchTransport struct {
	base http.RoundTripper
	p    *Proxy
}

func (t *watchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	t.p.metrics.upstream.Observe(time.Since(start).Seconds())
	_, fp := upstreamKey(req)
	if tr, ok := req.Context().Value(trailKey{}).(*trail); ok && fp != "" {
		tr.add(fp)
	}
	if err == nil && fp != "" {
		t.p.limits.remember(fp, resp.Header)
	}
	return resp, err
}

// trail is the keys one client request was sent with, in order.
type trail struct {
	mu  sync.Mutex
	fps []string
}

type trailKey struct{}

func withTrail(ctx context.Context, tr *trail) context.Context {
	return context.WithValue(ctx, trailKey{}, tr)
}

func (t *trail) add(fp string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.fps {
		if f == fp {
			return
		}
	}
	t.fps = append(t.fps, fp)
}

// rotations is how often the request moved to another key.
func (t *trail) rotations() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(len(t.fps)-1, 0)
}

// limitMemory keeps the anthropic-ratelimit-unified-* headers last seen
// per key fingerprint (a handful of keys: never more than the pool).
type limitMemory struct {
	mu   sync.Mutex
	byFP map[string]http.Header
	last string // fingerprint seen last
}

// maxRemembered bounds limitMemory (keys removed from the pool linger).
const maxRemembered = 256

const unifiedPrefix = "Anthropic-Ratelimit-Unified-"

func (m *limitMemory) remember(fp string, h http.Header) {
	var got http.Header
	for name, vs := range h {
		if strings.HasPrefix(name, unifiedPrefix) {
			if got == nil {
				got = http.Header{}
			}
			got[name] = append([]string(nil), vs...)
		}
	}
	if got == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byFP == nil {
		m.byFP = map[string]http.Header{}
	}
	if _, ok := m.byFP[fp]; !ok && len(m.byFP) >= maxRemembered {
		clear(m.byFP)
	}
	m.byFP[fp], m.last = got, fp
}

// forFreeAt is the headers of the cooling key whose cooldown ends at
// freeAt (the one a client waits for), else of the key seen last; nil
// when none were seen.
func (m *limitMemory) forFreeAt(pool func() (*keystore.Pool, error), freeAt time.Time) http.Header {
	fp := ""
	if pool != nil {
		if p, err := pool(); err == nil {
			for _, tok := range p.Keys {
				if st := p.States[keystore.Fingerprint(tok)]; st != nil && st.CooldownUntil.Equal(freeAt) {
					fp = keystore.Fingerprint(tok)
					break
				}
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.byFP[fp]; ok {
		return h
	}
	return m.byFP[m.last]
}
