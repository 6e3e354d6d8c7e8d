package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuthorizeValidation(t *testing.T) {
	tests := []struct {
		name     string
		mod      func(url.Values)
		wantCode string
	}{
		{"wrong client_id", func(q url.Values) { q.Set("client_id", "nope") }, "invalid_client"},
		{"response_type token", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		{"plain challenge method", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"missing challenge", func(q url.Values) { q.Del("code_challenge") }, "invalid_request"},
		{"foreign redirect host", func(q url.Values) { q.Set("redirect_uri", "http://evil.example:53692/callback") }, "invalid_request"},
		{"https loopback redirect", func(q url.Values) { q.Set("redirect_uri", "https://localhost:53692/callback") }, "invalid_request"},
		{"wrong redirect path", func(q url.Values) { q.Set("redirect_uri", "http://localhost:53692/cb") }, "invalid_request"},
		{"redirect without port", func(q url.Values) { q.Set("redirect_uri", "http://localhost/callback") }, "invalid_request"},
		{"missing state", func(q url.Values) { q.Del("state") }, "invalid_request"},
		{"scope without inference", func(q url.Values) { q.Set("scope", "user:profile") }, "invalid_scope"},
	}
	_, srv := start(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := noRedirect().Get(srv.URL + "/oauth/authorize?" + authQuery(tt.mod).Encode())
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			var e map[string]string
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
			assert.Equal(t, tt.wantCode, e["error"])
			assert.NotEmpty(t, e["error_description"])
		})
	}
}

func TestAuthorizeRedirects(t *testing.T) {
	_, srv := start(t, Options{})
	for _, redirect := range []string{"http://localhost:53692/callback", "http://127.0.0.1:40123/callback"} {
		t.Run(redirect, func(t *testing.T) {
			q := authQuery(func(q url.Values) { q.Set("redirect_uri", redirect) })
			resp, err := noRedirect().Get(srv.URL + "/oauth/authorize?" + q.Encode())
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusFound, resp.StatusCode)
			loc, err := url.Parse(resp.Header.Get("Location"))
			require.NoError(t, err)
			assert.Equal(t, redirect, loc.Scheme+"://"+loc.Host+loc.Path)
			assert.Equal(t, "st4te", loc.Query().Get("state"))
			assert.NotEmpty(t, loc.Query().Get("code"))
		})
	}
	t.Run("manual paste page", func(t *testing.T) {
		q := authQuery(func(q url.Values) { q.Set("redirect_uri", ManualRedirectURI); q.Set("state", "a<b") })
		resp, err := noRedirect().Get(srv.URL + "/oauth/authorize?" + q.Encode())
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		page, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		m := regexp.MustCompile(`id="code">([^<]+)#a&lt;b<`).FindSubmatch(page)
		require.NotNil(t, m, "page: %s", page)
		assert.NotEmpty(t, m[1])
	})
}

func TestLoginRefreshFlow(t *testing.T) {
	e, srv := start(t, Options{ExpiresIn: 1234})
	first := login(t, srv)
	assert.True(t, strings.HasPrefix(first.AccessToken, "sk-ant-oat01-"))
	assert.True(t, strings.HasPrefix(first.RefreshToken, "sk-ant-ort01-"))
	assert.Equal(t, 1234, first.ExpiresIn)
	assert.Equal(t, "Bearer", first.TokenType)
	assert.Contains(t, first.Scope, "user:inference")
	assert.Equal(t, "user1@example.com", first.Account.Email)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$`, first.Account.UUID)

	second := login(t, srv)
	assert.Equal(t, "user2@example.com", second.Account.Email, "one emulated account per login")

	refresh := func(rt string) (int, tokenResp) {
		resp := post(t, srv, "/v1/oauth/token", http.Header{"Content-Type": {"application/json"}},
			mustJSON(map[string]string{"grant_type": "refresh_token", "client_id": DefaultClientID, "refresh_token": rt}))
		var tr tokenResp
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&tr))
		return resp.StatusCode, tr
	}
	status, rotated := refresh(first.RefreshToken)
	require.Equal(t, http.StatusOK, status)
	assert.NotEqual(t, first.RefreshToken, rotated.RefreshToken)
	assert.NotEqual(t, first.AccessToken, rotated.AccessToken)
	assert.Equal(t, first.Account, rotated.Account)

	status, reused := refresh(first.RefreshToken)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_grant", reused.Error)

	for _, tok := range []string{first.AccessToken, rotated.AccessToken} {
		resp := post(t, srv, "/v1/messages", oauthHeaders(tok), body(nil))
		assert.Equal(t, http.StatusOK, resp.StatusCode, "old access token stays valid until expiry")
	}

	st := e.Stats()
	assert.Equal(t, int64(2), st.Logins)
	assert.Equal(t, int64(1), st.Refreshes)
	assert.Equal(t, int64(1), st.RejectedRefreshes)
	assert.Equal(t, int64(2), st.Requests["/v1/messages"])
	assert.Equal(t, int64(1), st.Tokens[Fingerprint(rotated.AccessToken)])
}

func TestTokenErrors(t *testing.T) {
	verifier := "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	exchange := func(mod func(m map[string]string)) func(code string) (string, string) {
		return func(code string) (string, string) {
			m := map[string]string{"grant_type": "authorization_code", "client_id": DefaultClientID, "code": code,
				"state": "st4te", "redirect_uri": "http://localhost:53692/callback", "code_verifier": verifier}
			mod(m)
			return "application/json", mustJSON(m)
		}
	}
	tests := []struct {
		name       string
		req        func(code string) (contentType, body string)
		wantStatus int
		wantCode   string
	}{
		{"pkce mismatch", exchange(func(m map[string]string) { m["code_verifier"] = "wrong-verifier-wrong-verifier-wrong-verif" }), 400, "invalid_grant"},
		{"missing verifier", exchange(func(m map[string]string) { delete(m, "code_verifier") }), 400, "invalid_grant"},
		{"redirect mismatch", exchange(func(m map[string]string) { m["redirect_uri"] = "http://127.0.0.1:53692/callback" }), 400, "invalid_grant"},
		{"state mismatch", exchange(func(m map[string]string) { m["state"] = "other" }), 400, "invalid_grant"},
		{"client mismatch", exchange(func(m map[string]string) { m["client_id"] = "other" }), 400, "invalid_grant"},
		{"unknown code", exchange(func(m map[string]string) { m["code"] = "made-up" }), 400, "invalid_grant"},
		{"form encoded", func(code string) (string, string) {
			return "application/x-www-form-urlencoded", url.Values{"grant_type": {"authorization_code"}, "code": {code}}.Encode()
		}, 400, "invalid_request"},
		{"malformed json", func(string) (string, string) { return "application/json", "{" }, 400, "invalid_request"},
		{"unknown grant", func(string) (string, string) {
			return "application/json", `{"grant_type":"password","client_id":"` + DefaultClientID + `"}`
		}, 400, "unsupported_grant_type"},
		{"scope on refresh", func(string) (string, string) {
			return "application/json", mustJSON(map[string]string{"grant_type": "refresh_token", "client_id": DefaultClientID,
				"refresh_token": fakeTok("ort", "seed"), "scope": "user:inference"})
		}, 400, "invalid_scope"},
		{"invalid refresh marker", func(string) (string, string) {
			return "application/json", mustJSON(map[string]string{"grant_type": "refresh_token", "client_id": DefaultClientID,
				"refresh_token": fakeTok("ort", "invalid")})
		}, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := start(t, Options{})
			code := authorize(t, srv, authQuery(nil))
			ct, b := tt.req(code)
			resp := post(t, srv, "/v1/oauth/token", http.Header{"Content-Type": {ct}}, b)
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			var e map[string]string
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
			assert.Equal(t, tt.wantCode, e["error"])
		})
	}
}

func TestCodeSingleUse(t *testing.T) {
	_, srv := start(t, Options{})
	code := authorize(t, srv, authQuery(nil))
	b := mustJSON(map[string]string{"grant_type": "authorization_code", "client_id": DefaultClientID, "code": code,
		"state": "st4te", "redirect_uri": "http://localhost:53692/callback", "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"})
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	assert.Equal(t, http.StatusOK, post(t, srv, "/v1/oauth/token", h, b).StatusCode)
	resp := post(t, srv, "/v1/oauth/token", h, b)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	var e map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	assert.Equal(t, "invalid_grant", e["error"])
}

func TestForeignRefreshTokenRotates(t *testing.T) {
	e, srv := start(t, Options{})
	b := mustJSON(map[string]string{"grant_type": "refresh_token", "client_id": DefaultClientID, "refresh_token": fakeTok("ort", "seeded")})
	h := http.Header{"Content-Type": {"application/json"}}
	assert.Equal(t, http.StatusOK, post(t, srv, "/v1/oauth/token", h, b).StatusCode)
	assert.Equal(t, http.StatusBadRequest, post(t, srv, "/v1/oauth/token", h, b).StatusCode)
	st := e.Stats()
	assert.Equal(t, int64(1), st.Refreshes)
	assert.Equal(t, int64(1), st.RejectedRefreshes)
}

func TestMintedTokenExpiryAndRevocation(t *testing.T) {
	clock := newClock()
	e, srv := start(t, Options{Now: clock.Now, ExpiresIn: 60})
	tr := login(t, srv)
	assert.Equal(t, http.StatusOK, post(t, srv, "/v1/messages", oauthHeaders(tr.AccessToken), body(nil)).StatusCode)

	clock.Add(60 * time.Second)
	resp := post(t, srv, "/v1/messages", oauthHeaders(tr.AccessToken), body(nil))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "authentication_error", decodeAPIErr(t, resp).Error.Type)

	other := login(t, srv)
	require.True(t, e.RevokeAccess(other.AccessToken))
	resp = post(t, srv, "/v1/messages", oauthHeaders(other.AccessToken), body(nil))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	ae := decodeAPIErr(t, resp)
	assert.Equal(t, "authentication_error", ae.Error.Type)
	assert.Contains(t, ae.Error.Message, "revoked")
}
