package pkce_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
)

// A refresh answered 2xx with only a new refresh token (and a failing second
// try) must leave the NEW refresh token in auth.json and the pool: the server
// has revoked the old one.
func TestRefresherKeepsRotatedTokenOfIncompleteAnswer(t *testing.T) {
	oldRef, newRef := fakeToken("ort", "old"), fakeToken("ort", "new")
	access := fakeToken("oat", "acc")
	tests := []struct {
		name   string
		pooled bool
	}{
		{name: "auth.json", pooled: false},
		{name: "pooled key", pooled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var body struct {
					RefreshToken string `json:"refresh_token"`
				}
				_ = decodeJSON(r, &body)
				mu.Lock()
				seen = append(seen, body.RefreshToken)
				n := len(seen)
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				if n == 1 {
					fmt.Fprintf(w, `{"refresh_token":%q,"expires_in":"soon"}`, newRef)
					return
				}
				w.Header().Set("x-should-retry", "false")
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			t.Cleanup(srv.Close)
			dir := t.TempDir()
			store, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOff})
			require.NoError(t, err)
			r := &pkce.Refresher{Store: store, OAuth: &pkce.Config{TokenEndpoint: srv.URL}}
			e := &env{dir: dir, store: store}
			if tt.pooled {
				e.seedPool(t, []string{access}, []keystore.KeyState{{Refresh: oldRef, Expires: past()}})
				_, err = r.PoolToken(context.Background(), keystore.Fingerprint(access), false)
				require.ErrorIs(t, err, pkce.ErrIncompleteToken)
				assert.Equal(t, newRef, e.pool(t).State(0).Refresh)
			} else {
				e.writeAuth(t, oauthEntry(access, oldRef, past()))
				_, err = r.AuthToken(context.Background(), false)
				require.ErrorIs(t, err, pkce.ErrIncompleteToken)
				assert.Equal(t, newRef, e.auth(t).Refresh)
				assert.Equal(t, access, e.auth(t).Access, "the old access token stays")
			}
			assert.Equal(t, []string{oldRef, newRef}, seen)
			assert.NotContains(t, err.Error(), newRef)
		})
	}
}

func decodeJSON(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }
