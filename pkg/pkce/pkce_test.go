package pkce

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChallengeRFC7636Vector(t *testing.T) {
	// RFC 7636 appendix B.
	assert.Equal(t, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
}

func TestNewVerifierAndState(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		v, s := NewVerifier(), NewState()
		for _, x := range []string{v, s} {
			assert.Len(t, x, 43)
			assert.Regexp(t, `^[A-Za-z0-9_-]+$`, x)
			assert.False(t, seen[x], "random value repeated")
			seen[x] = true
		}
		assert.Len(t, Challenge(v), 43)
	}
}

func TestAuthorizeURL(t *testing.T) {
	tests := []struct {
		name     string
		cfg      *Config
		wantBase string
		wantID   string
	}{
		{name: "defaults", cfg: &Config{}, wantBase: DefaultAuthorizeURL, wantID: ClientID},
		{name: "nil config", cfg: nil, wantBase: DefaultAuthorizeURL, wantID: ClientID},
		{name: "custom", cfg: &Config{ClientID: "cid", AuthorizeEndpoint: "http://127.0.0.1:9/oauth/authorize"},
			wantBase: "http://127.0.0.1:9/oauth/authorize", wantID: "cid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.cfg.AuthorizeURL("http://localhost:53692/callback", "chal", "st")
			u, err := url.Parse(raw)
			require.NoError(t, err)
			assert.Equal(t, tt.wantBase, u.Scheme+"://"+u.Host+u.Path)
			assert.Equal(t, url.Values{
				"code":                  {"true"},
				"client_id":             {tt.wantID},
				"response_type":         {"code"},
				"redirect_uri":          {"http://localhost:53692/callback"},
				"scope":                 {Scopes},
				"code_challenge":        {"chal"},
				"code_challenge_method": {"S256"},
				"state":                 {"st"},
			}, u.Query())
		})
	}
}
