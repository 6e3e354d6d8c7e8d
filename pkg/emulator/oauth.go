package emulator

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// codeTTL is how long an authorization code can be exchanged.
const codeTTL = 10 * time.Minute

type account struct {
	UUID  string `json:"uuid"`
	Email string `json:"email_address"`
}

type authCode struct {
	clientID, challenge, redirectURI, state, scope string
	issued                                         time.Time
}

type accessToken struct {
	expires time.Time
	revoked bool
	account account
}

type refreshToken struct {
	revoked bool
	account account
	scope   string
}

// validRedirect accepts the loopback callbacks and the manual paste URI.
func validRedirect(raw string) bool {
	if raw == ManualRedirectURI {
		return true
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Path != "/callback" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return false
	}
	if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" {
		return false
	}
	port, err := strconv.Atoi(u.Port())
	return err == nil && port > 0 && port < 65536
}

func (e *Emulator) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(code, desc string) { oauthError(w, http.StatusBadRequest, code, desc) }
	switch {
	case q.Get("client_id") != e.opts.ClientID:
		fail("invalid_client", "unknown client_id")
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "response_type must be code")
	case q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
	case len(q.Get("code_challenge")) != 43:
		fail("invalid_request", "code_challenge must be a base64url S256 digest")
	case !validRedirect(q.Get("redirect_uri")):
		fail("invalid_request", "redirect_uri is not registered for this client")
	case q.Get("state") == "":
		fail("invalid_request", "state is required")
	case !slices.Contains(strings.Fields(q.Get("scope")), "user:inference"):
		fail("invalid_scope", "scope must include user:inference")
	default:
		code := e.randString(40)
		e.mu.Lock()
		e.codes[code] = &authCode{
			clientID: q.Get("client_id"), challenge: q.Get("code_challenge"),
			redirectURI: q.Get("redirect_uri"), state: q.Get("state"),
			scope: q.Get("scope"), issued: e.opts.Now(),
		}
		e.mu.Unlock()
		redirect := q.Get("redirect_uri")
		if redirect == ManualRedirectURI {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, "<!doctype html><title>Authorization code</title>"+
				"<p>Paste this code into your terminal:</p><pre id=\"code\">%s</pre>\n",
				html.EscapeString(code+"#"+q.Get("state")))
			return
		}
		v := url.Values{"code": {code}, "state": {q.Get("state")}}
		http.Redirect(w, r, redirect+"?"+v.Encode(), http.StatusFound)
	}
}

type tokenRequest struct {
	GrantType    string  `json:"grant_type"`
	ClientID     string  `json:"client_id"`
	Code         string  `json:"code"`
	State        string  `json:"state"`
	RedirectURI  string  `json:"redirect_uri"`
	CodeVerifier string  `json:"code_verifier"`
	RefreshToken string  `json:"refresh_token"`
	Scope        *string `json:"scope"`
}

func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "request body must be application/json")
		return
	}
	var req tokenRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed JSON body")
		return
	}
	switch req.GrantType {
	case "authorization_code":
		e.exchange(w, &req)
	case "refresh_token":
		e.refreshGrant(w, &req)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func eq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (e *Emulator) exchange(w http.ResponseWriter, req *tokenRequest) {
	e.mu.Lock()
	c, ok := e.codes[req.Code]
	delete(e.codes, req.Code) // single use, even when the exchange fails
	e.mu.Unlock()
	var problem string
	switch {
	case !ok:
		problem = "invalid or already used authorization code"
	case e.opts.Now().Sub(c.issued) > codeTTL:
		problem = "authorization code expired"
	case req.ClientID != c.clientID:
		problem = "client_id does not match the authorization request"
	case req.CodeVerifier == "" || !eq(challengeOf(req.CodeVerifier), c.challenge):
		problem = "code_verifier does not match the code_challenge"
	case req.RedirectURI != c.redirectURI:
		problem = "redirect_uri does not match the authorization request"
	case !eq(req.State, c.state):
		problem = "state does not match the authorization request"
	}
	if problem != "" {
		oauthError(w, http.StatusBadRequest, "invalid_grant", problem)
		return
	}
	e.mu.Lock()
	e.accounts++
	n := e.accounts
	e.stats.Logins++
	e.mu.Unlock()
	acct := account{UUID: e.uuid(), Email: fmt.Sprintf("user%d@example.com", n)}
	e.issue(w, acct, c.scope)
}

func (e *Emulator) refreshGrant(w http.ResponseWriter, req *tokenRequest) {
	reject := func(status int, code, desc string) {
		e.mu.Lock()
		e.stats.RejectedRefreshes++
		e.mu.Unlock()
		oauthError(w, status, code, desc)
	}
	if req.Scope != nil {
		reject(http.StatusBadRequest, "invalid_scope", "scope must not be sent when refreshing")
		return
	}
	if req.ClientID != e.opts.ClientID {
		reject(http.StatusBadRequest, "invalid_grant", "client_id does not match")
		return
	}
	tok := req.RefreshToken
	e.mu.Lock()
	rt, minted := e.refresh[tok]
	var acct account
	scope := "user:inference user:profile"
	ok := false
	switch {
	case minted && !rt.revoked:
		rt.revoked = true
		acct, scope, ok = rt.account, rt.scope, true
	case !minted && strings.HasPrefix(tok, "sk-ant-ort") && !strings.Contains(tok, "invalid") && !e.seen[tok]:
		// A refresh token we did not mint (seeded by a test): accepted once, then revoked.
		e.seen[tok] = true
		e.accounts++
		acct.Email = fmt.Sprintf("user%d@example.com", e.accounts)
		ok = true
	}
	if ok {
		e.stats.Refreshes++
	}
	e.mu.Unlock()
	if !ok {
		reject(http.StatusBadRequest, "invalid_grant", "refresh token is invalid, expired or revoked")
		return
	}
	if acct.UUID == "" {
		acct.UUID = e.uuid()
	}
	e.issue(w, acct, scope)
}

// issue mints an access and a refresh token for acct and writes the token response.
func (e *Emulator) issue(w http.ResponseWriter, acct account, scope string) {
	access := "sk-ant-oat01-" + e.randString(48)
	refresh := "sk-ant-ort01-" + e.randString(48)
	e.mu.Lock()
	e.access[access] = &accessToken{expires: e.opts.Now().Add(time.Duration(e.opts.ExpiresIn) * time.Second), account: acct}
	e.refresh[refresh] = &refreshToken{account: acct, scope: scope}
	e.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":    "Bearer",
		"access_token":  access,
		"refresh_token": refresh,
		"expires_in":    e.opts.ExpiresIn,
		"scope":         scope,
		"account":       acct,
		"organization":  map[string]string{"uuid": "00000000-0000-4000-8000-000000000001", "name": "Emulated organisation"},
	})
}

func (e *Emulator) uuid() string {
	const hexd = "0123456789abcdef"
	s := []byte(e.randString(32))
	for i := range s {
		s[i] = hexd[int(s[i])%16]
	}
	s[12] = '4'
	return fmt.Sprintf("%s-%s-%s-%s-%s", s[0:8], s[8:12], s[12:16], s[16:20], s[20:32])
}

// RevokeAccess marks a minted access token revoked (as the real service does
// when the user signs out); later requests with it get 401.
func (e *Emulator) RevokeAccess(tok string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	at, ok := e.access[tok]
	if ok {
		at.revoked = true
	}
	return ok
}
