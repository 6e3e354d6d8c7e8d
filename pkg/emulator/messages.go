package emulator

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// claudeCodeTools are the tool names an OAuth request may use without the mcp__ prefix.
var claudeCodeTools = []string{"Read", "Write", "Edit", "Bash", "Grep", "Glob", "AskUserQuestion", "TodoWrite", "WebFetch", "WebSearch"}

// Error messages the real API uses.
const (
	msgInvalidAPIKey   = "invalid x-api-key"
	msgOAuthNotAllowed = "OAuth authentication is currently not supported."
	msgIdentity        = "This credential is only authorized for use with Claude Code and cannot be used for other API requests."
	msgThirdParty      = "Third-party apps now draw from your extra usage, not your plan limits. " +
		"Use Claude Code, or enable extra usage in your account settings to continue."
	msgExpired = "OAuth token has expired. Please obtain a new token or refresh your existing token."
	msgRevoked = "OAuth token has been revoked. Please obtain a new token."
)

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func hasBeta(r *http.Request, beta string) bool {
	for _, v := range r.Header.Values("anthropic-beta") {
		for _, b := range strings.Split(v, ",") {
			if strings.TrimSpace(b) == beta {
				return true
			}
		}
	}
	return false
}

func (e *Emulator) countToken(tok string) {
	e.mu.Lock()
	e.stats.Tokens[Fingerprint(tok)]++
	e.mu.Unlock()
}

// checkMinted returns an error message when tok was minted here and is
// expired or revoked, or carries the "invalid" marker; "" when usable.
func (e *Emulator) checkMinted(tok string) string {
	e.mu.Lock()
	at, ok := e.access[tok]
	var expired, revoked bool
	if ok {
		expired, revoked = !e.opts.Now().Before(at.expires), at.revoked
	}
	e.mu.Unlock()
	switch {
	case revoked:
		return msgRevoked
	case expired:
		return msgExpired
	case !ok && strings.Contains(tok, "invalid"):
		return msgInvalidAPIKey
	}
	return ""
}

// messagesRequest holds the fields the emulator validates or echoes.
type messagesRequest struct {
	Model     string          `json:"model"`
	MaxTokens *int64          `json:"max_tokens"`
	Messages  []any           `json:"messages"`
	Stream    bool            `json:"stream"`
	System    json.RawMessage `json:"system"`
	Tools     []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tools"`
	Thinking *struct {
		Type         string `json:"type"`
		BudgetTokens int64  `json:"budget_tokens"`
	} `json:"thinking"`
}

// badRequest is a 400 invalid_request_error.
type badRequest string

func (b badRequest) Error() string { return string(b) }

func (req *messagesRequest) validate(oauth bool) error {
	switch {
	case req.Model == "":
		return badRequest("model: Field required")
	case req.MaxTokens == nil:
		return badRequest("max_tokens: Field required")
	case *req.MaxTokens <= 0:
		return badRequest("max_tokens: Input should be greater than or equal to 1")
	case len(req.Messages) == 0:
		return badRequest("messages: at least one message is required")
	}
	if t := req.Thinking; t != nil && t.Type == "enabled" {
		if t.BudgetTokens < 1024 {
			return badRequest("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
		}
		if t.BudgetTokens >= *req.MaxTokens {
			return badRequest("`max_tokens` must be greater than `thinking.budget_tokens`")
		}
	}
	if !oauth {
		return nil
	}
	if firstSystemText(req.System) != IdentityText {
		return badRequest(msgIdentity)
	}
	for _, t := range req.Tools {
		if t.Type != "" && t.Type != "custom" {
			continue // server tools
		}
		if !slices.Contains(claudeCodeTools, t.Name) && !strings.HasPrefix(t.Name, "mcp__") {
			return badRequest(msgThirdParty)
		}
	}
	return nil
}

func firstSystemText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var blocks []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &blocks) != nil || len(blocks) == 0 || blocks[0].Type != "text" {
		return ""
	}
	return blocks[0].Text
}

func (e *Emulator) handleMessages(w http.ResponseWriter, r *http.Request) {
	tok, status, typ, msg := e.authenticate(r)
	if tok != "" {
		noteToken(w, tok)
		e.countToken(tok)
	}
	if status != 0 {
		e.apiError(w, status, typ, msg, nil)
		return
	}
	oauth := strings.HasPrefix(tok, "sk-ant-oat")
	var req messagesRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 32<<20)).Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			e.apiError(w, http.StatusRequestEntityTooLarge, "request_too_large", "Request exceeds the maximum allowed number of bytes.", nil)
			return
		}
		e.apiError(w, http.StatusBadRequest, "invalid_request_error", "There was an issue with the format of your request: "+err.Error(), nil)
		return
	}
	if err := req.validate(oauth); err != nil {
		e.apiError(w, http.StatusBadRequest, "invalid_request_error", err.Error(), nil)
		return
	}

	out, reply, unified := e.plan(tok)
	if out.DelayMS > 0 {
		if err := e.opts.Sleep(r.Context(), time.Duration(out.DelayMS)*time.Millisecond); err != nil {
			return
		}
	}
	now := e.opts.Now()
	if out.Status != http.StatusOK {
		typ := out.Type
		if typ == "" {
			typ = errorType(out.Status)
		}
		msg := out.Message
		if msg == "" {
			msg = defaultMessage(out.Status)
		}
		h := http.Header{}
		if out.Status == http.StatusTooManyRequests {
			retry := out.RetryAfter
			if retry <= 0 {
				retry = 600
			}
			reset := strconv.FormatInt(now.Add(time.Duration(retry)*time.Second).Unix(), 10)
			h.Set("retry-after", strconv.Itoa(retry))
			h.Set("anthropic-ratelimit-unified-status", "rejected")
			h.Set("anthropic-ratelimit-unified-5h-status", "rejected")
			h.Set("anthropic-ratelimit-unified-5h-utilization", "1.0")
			h.Set("anthropic-ratelimit-unified-5h-reset", reset)
			h.Set("anthropic-ratelimit-unified-reset", reset)
			h.Set("anthropic-ratelimit-unified-representative-claim", "five_hour")
		} else if out.RetryAfter > 0 {
			h.Set("retry-after", strconv.Itoa(out.RetryAfter))
		}
		e.apiError(w, out.Status, typ, msg, h)
		return
	}
	if oauth {
		setUnified(w.Header(), unified, now)
	}
	w.Header().Set("request-id", e.requestID())
	m := e.newMessage(&req, reply)
	if !req.Stream {
		if out.Midstream || out.MidstreamEarly {
			e.apiError(w, 529, "overloaded_error", "Overloaded", nil)
			return
		}
		e.writeJSONMessage(w, m)
		return
	}
	e.writeStream(r.Context(), w, m, out.Midstream, out.MidstreamEarly)
}

func defaultMessage(status int) string {
	switch status {
	case 429:
		return "This request would exceed your account's rate limit. Please try again later."
	case 529:
		return "Overloaded"
	case 401:
		return msgInvalidAPIKey
	}
	return http.StatusText(status)
}

// authenticate checks credentials and headers. It returns the presented
// token (possibly "") and, when the request must be refused, the status,
// error type and message.
func (e *Emulator) authenticate(r *http.Request) (tok string, status int, typ, msg string) {
	const authErr = "authentication_error"
	apiKey := r.Header.Get("x-api-key")
	bear, hasBearer := bearer(r)
	switch {
	case apiKey != "" && (strings.HasPrefix(apiKey, "sk-ant-oat") || hasBearer):
		return apiKey, http.StatusUnauthorized, authErr, msgInvalidAPIKey
	case apiKey != "":
		tok = apiKey
		if !strings.HasPrefix(apiKey, "sk-ant-api") {
			return tok, http.StatusUnauthorized, authErr, msgInvalidAPIKey
		}
	case hasBearer:
		tok = bear
		if !strings.HasPrefix(bear, "sk-ant-oat") {
			return tok, http.StatusUnauthorized, authErr, "Invalid bearer token"
		}
	default:
		return "", http.StatusUnauthorized, authErr, "x-api-key header is required"
	}
	if r.Header.Get("anthropic-version") == "" {
		return tok, http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required"
	}
	if strings.HasPrefix(tok, "sk-ant-oat") && !hasBeta(r, OAuthBeta) {
		return tok, http.StatusUnauthorized, authErr, msgOAuthNotAllowed
	}
	if m := e.checkMinted(tok); m != "" {
		return tok, http.StatusUnauthorized, authErr, m
	}
	return tok, 0, "", ""
}

// plan picks the outcome, reply and utilisation for a request with tok,
// consuming one scripted outcome when a scenario rule matches.
func (e *Emulator) plan(tok string) (Outcome, Reply, Unified) {
	sc := e.scenario
	reply := sc.Reply
	unified := (*Unified)(nil).merged(sc.Unified)
	out := Outcome{Status: http.StatusOK}
	if i := sc.rule(tok); i >= 0 {
		rule := sc.Tokens[i]
		reply = reply.merged(rule.Reply)
		unified = unified.merged(rule.Unified)
		if n := len(rule.Outcomes); n > 0 {
			e.mu.Lock()
			k := min(e.seq[i], n-1)
			e.seq[i]++
			e.mu.Unlock()
			out = rule.Outcomes[k]
		}
		return out, reply, unified
	}
	if _, minted := e.mintedAccess(tok); !minted {
		switch {
		case strings.Contains(tok, "ratelimited"):
			out = Outcome{Status: http.StatusTooManyRequests, RetryAfter: 600}
		case strings.Contains(tok, "overloaded"):
			out = Outcome{Status: 529}
		case strings.Contains(tok, "midstream"):
			out = Outcome{Status: http.StatusOK, Midstream: true}
		}
	}
	return out, reply, unified
}

func (e *Emulator) mintedAccess(tok string) (*accessToken, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	at, ok := e.access[tok]
	return at, ok
}

// unifiedFor returns the utilisation configured for tok.
func (e *Emulator) unifiedFor(tok string) Unified {
	u := (*Unified)(nil).merged(e.scenario.Unified)
	if i := e.scenario.rule(tok); i >= 0 {
		u = u.merged(e.scenario.Tokens[i].Unified)
	}
	return u
}

func (u Unified) values() (five, seven float64) {
	five, seven = 0.12, 0.31
	if u.FiveHour != nil {
		five = *u.FiveHour
	}
	if u.SevenDay != nil {
		seven = *u.SevenDay
	}
	return five, seven
}

func fiveHourReset(now time.Time) time.Time { return now.Add(5 * time.Hour).Truncate(time.Hour) }
func sevenDayReset(now time.Time) time.Time { return now.Add(7 * 24 * time.Hour).Truncate(time.Hour) }

// setUnified writes the subscription rate-limit headers of a healthy answer.
func setUnified(h http.Header, u Unified, now time.Time) {
	five, seven := u.values()
	status := u.Status
	if status == "" {
		status = "allowed"
	}
	r5 := strconv.FormatInt(fiveHourReset(now).Unix(), 10)
	r7 := strconv.FormatInt(sevenDayReset(now).Unix(), 10)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	h.Set("anthropic-ratelimit-unified-status", status)
	h.Set("anthropic-ratelimit-unified-5h-status", status)
	h.Set("anthropic-ratelimit-unified-5h-utilization", f(five))
	h.Set("anthropic-ratelimit-unified-5h-reset", r5)
	h.Set("anthropic-ratelimit-unified-7d-status", "allowed")
	h.Set("anthropic-ratelimit-unified-7d-utilization", f(seven))
	h.Set("anthropic-ratelimit-unified-7d-reset", r7)
	h.Set("anthropic-ratelimit-unified-reset", r5)
	h.Set("anthropic-ratelimit-unified-representative-claim", "five_hour")
	h.Set("anthropic-ratelimit-unified-fallback-percentage", "0.5")
	h.Set("anthropic-ratelimit-unified-overage-status", "rejected")
}
