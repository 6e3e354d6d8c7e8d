package rotate

import (
	"context"
	"sync"
	"time"

	"github.com/piauth/piauth/pkg/keystore"
)

// Pin keeps a conversation (a chat continued, a proxy session) on the key it
// started on, so that its prompt cache stays warm. Put one in a request's
// context with WithPin: the Transport starts on Key while that key is usable
// (before the active key, and before SwitchAt's choice, which only moves new
// conversations), an answer from the pinned key leaves the pool's active key
// where it is, and Used tells which key answered — the key to pin the next
// request of the same conversation to. A Pin is safe for concurrent use.
type Pin struct {
	// Key is the fingerprint (keystore.Fingerprint) to start on; "" starts
	// where any new request would.
	Key string

	mu   sync.Mutex
	used string
	i, n int
}

type pinKey struct{}

// WithPin returns ctx carrying pin for the Transport.
func WithPin(ctx context.Context, pin *Pin) context.Context {
	return context.WithValue(ctx, pinKey{}, pin)
}

func pinFrom(ctx context.Context) *Pin {
	p, _ := ctx.Value(pinKey{}).(*Pin)
	return p
}

// Used returns the fingerprint of the pooled key that gave the last
// successful answer and its 1-based index and the pool size; "" and 0 before
// any answer and for answers sent with the login.
func (p *Pin) Used() (fp string, i, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used, p.i, p.n
}

func (p *Pin) set(fp string, i, n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.used, p.i, p.n = fp, i, n
	p.mu.Unlock()
}

// pinned is the fingerprint a request should start on because of its Pin:
// the pinned key when it is in the pool and usable, else "".
func pinned(pin *Pin, p *keystore.Pool, now time.Time) string {
	if pin == nil || pin.Key == "" {
		return ""
	}
	if i := p.Find(pin.Key); i >= 0 && choose(p, nil, pin.Key, now) == i {
		return pin.Key
	}
	return ""
}
