package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
)

var updateChatGolden = flag.Bool("update-chat", false, "rewrite testdata/chat golden files")

// chatToken builds a long, obviously fake OAuth token carrying marker (an
// emulator marker or a scenario rule's substring) at run time.
func chatToken(marker string) string {
	return "sk-ant-oat01-chat-" + marker + "-" + strings.Repeat("t", 40)
}

// chatHarness is an emulator behind httptest plus an agent dir logged in to it.
type chatHarness struct {
	t      *testing.T
	dir    string
	srv    *httptest.Server
	emu    *emulator.Emulator
	tokens []string

	mu     sync.Mutex
	bodies [][]byte // bodies of the /v1/messages requests, in order
	cutEnd bool     // drop message_stop from every stream (truncation)
	outTTY bool     // stdout is a terminal
}

// newChatHarness starts the emulator with scenario (JSON, "" for none).
func newChatHarness(t *testing.T, scenario string) *chatHarness {
	t.Helper()
	var sc *emulator.Scenario
	if scenario != "" {
		var err error
		sc, err = emulator.ParseScenario([]byte(scenario))
		require.NoError(t, err)
	}
	h := &chatHarness{t: t, dir: t.TempDir(), emu: emulator.New(emulator.Options{Scenario: sc})}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

// serve records Messages request bodies and hands the request to the
// emulator (with message_stop cut out when cutEnd is set).
func (h *chatHarness) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/messages" {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.mu.Lock()
		h.bodies = append(h.bodies, body)
		cut := h.cutEnd
		h.mu.Unlock()
		if cut {
			w = &cutWriter{ResponseWriter: w}
		}
	}
	h.emu.ServeHTTP(w, r)
}

// cutWriter drops the message_stop event, as a connection closed just
// before the end of the stream would.
type cutWriter struct{ http.ResponseWriter }

func (c *cutWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("event: message_stop")) {
		return len(p), nil
	}
	return c.ResponseWriter.Write(p)
}

func (c *cutWriter) Flush() { c.ResponseWriter.(http.Flusher).Flush() }

// login writes auth.json with an unexpired OAuth credential for tok.
func (h *chatHarness) login(tok string) { h.loginWith(tok, "") }

// loginWith is login with refresh as the refresh token ("" = one the
// emulator accepts once).
func (h *chatHarness) loginWith(tok, refresh string) {
	h.t.Helper()
	if refresh == "" {
		refresh = "sk-ant-ort01-chat-refresh"
	}
	h.writeAuth(&keystore.Credential{Type: "oauth", Access: tok, Refresh: refresh,
		Expires: time.Now().Add(time.Hour).UnixMilli()})
}

// writeAuth writes c as auth.json's anthropic entry.
func (h *chatHarness) writeAuth(c *keystore.Credential) {
	h.t.Helper()
	store, err := keystore.Open(keystore.Options{Dir: h.dir, Mode: keystore.ModeOff})
	require.NoError(h.t, err)
	err = store.UpdateAuth(context.Background(), func(*keystore.Credential) (*keystore.Credential, error) {
		return c, nil
	})
	require.NoError(h.t, err)
	for _, tok := range []string{c.Access, c.Refresh} {
		if tok != "" {
			h.tokens = append(h.tokens, tok)
		}
	}
}

// pool writes key-rotation.json with keys, active being the 0-based index.
func (h *chatHarness) pool(active int, keys ...string) {
	h.t.Helper()
	doc := map[string]any{"keys": keys, "piauth": map[string]any{"version": 1, "active": active}}
	b, err := json.Marshal(doc)
	require.NoError(h.t, err)
	require.NoError(h.t, os.WriteFile(filepath.Join(h.dir, keystore.PoolFileName), b, 0o600))
	h.tokens = append(h.tokens, keys...)
}

// writeFile writes a file in a fresh temp dir and returns its path.
func (h *chatHarness) writeFile(name, content string) string {
	h.t.Helper()
	p := filepath.Join(h.t.TempDir(), name)
	require.NoError(h.t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

type chatResult struct {
	code     int
	out, err string
}

// run runs `piauth chat ARGS` in-process with stdin; out, when set, replaces stdout.
func (h *chatHarness) run(ctx context.Context, stdin string, out io.Writer, args ...string) chatResult {
	h.t.Helper()
	f, bufs := newTestFactory(stdin, map[string]string{
		"PIAUTH_BASE_URL":  h.srv.URL,
		"PIAUTH_TOKEN_URL": h.srv.URL + "/v1/oauth/token",
	})
	if out != nil {
		f.IO.Out = io.MultiWriter(bufs.Out, out)
	}
	f.IO.OutTTY = h.outTTY
	argv := append([]string{"piauth", "--dir", h.dir, "--keyring", "off", "chat"}, args...)
	res := chatResult{code: run(ctx, f, argv), out: bufs.Out.String(), err: bufs.Err.String()}
	for _, tok := range h.tokens {
		assert.NotContains(h.t, res.out+res.err, tok, "a whole token was printed")
	}
	return res
}

// requests decodes the recorded Messages request bodies.
func (h *chatHarness) requests() []chatRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]chatRequest, len(h.bodies))
	for i, b := range h.bodies {
		require.NoError(h.t, json.Unmarshal(b, &out[i]))
	}
	return out
}

type chatRequest struct {
	Model     string `json:"model"`
	MaxTokens int    `json:"max_tokens"`
	System    []struct {
		Text string `json:"text"`
	} `json:"system"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name string `json:"name"`
	} `json:"tools"`
	Thinking *struct {
		BudgetTokens int `json:"budget_tokens"`
	} `json:"thinking"`
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

const (
	// chatScenario scripts the replies of the tests by token substring.
	chatScenario = `{
	  "reply": {"text": "Hello from the emulator.", "deltas": 4,
	            "usage": {"input_tokens": 1234, "output_tokens": 567, "cache_read_input_tokens": 2048}},
	  "tokens": [
	    {"contains": "thinker", "reply": {"thinking": "Weighing the options.", "text": "Answer after thought."}},
	    {"contains": "tooler", "reply": {"text": "Let me look.",
	      "tool_calls": [{"input": {"city": "Paris"}, "chunks": 3}]}},
	    {"contains": "slow", "reply": {"event_delay_ms": 30}},
	    {"contains": "broken", "outcomes": [{"status": 400, "message": "messages.0: something is off"}]}
	  ]
	}`
	wantText = "Hello from the emulator."
	// claude-sonnet-5-5 (the default, alias sonnet) at 2 / 10 / 0.10 USD per
	// million input / output / cache-read tokens:
	// 1,234×2e-6 + 567×10e-6 + 2,048×0.1e-6 = 0.002468 + 0.00567 + 0.0002048 = 0.0083428.
	wantAccounting = "in 1,234 · out 567 · cache read 2,048 · cache write 0 · $0.0083"
	weatherTools   = `[{"name": "get_weather", "description": "Weather of a city",
	  "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]`
)

func TestChatModes(t *testing.T) {
	tests := []struct {
		name      string
		token     string
		stdin     string
		args      []string // after `chat`; TOOLS is replaced by the tools file
		wantOut   string
		wantErr   []string // substrings of stderr
		noErr     []string // must not be on stderr
		wantLast  string   // last stderr line
		wantUser  string   // content of the request's user message
		wantStop  string
		wantTools []string // tool names sent
	}{
		{name: "plain", token: "plain", args: []string{"say", "hello"},
			wantOut: wantText + "\n", wantLast: wantAccounting, wantUser: "say hello"},
		{name: "stream", token: "plain", args: []string{"--stream", "hello"},
			wantOut: wantText + "\n", wantLast: wantAccounting, wantUser: "hello"},
		{name: "stdin then args", token: "plain", stdin: "some piped context\n", args: []string{"summarise", "it"},
			wantOut: wantText + "\n", wantUser: "some piped context\n\nsummarise it"},
		{name: "stdin only", token: "plain", stdin: "only stdin\n",
			wantOut: wantText + "\n", wantUser: "only stdin"},
		{name: "thinking hidden without a terminal", token: "thinker", args: []string{"--thinking", "2048", "think"},
			wantOut: "Answer after thought.\n", noErr: []string{"Weighing"}},
		{name: "show thinking", token: "thinker", args: []string{"--show-thinking", "--thinking", "2048", "think"},
			wantOut: "Answer after thought.\n", wantErr: []string{"Weighing the options.\n"}},
		{name: "show thinking streamed", token: "thinker", args: []string{"--stream", "--show-thinking", "--thinking", "2048", "think"},
			wantOut: "Answer after thought.\n", wantErr: []string{"Weighing the options.\n"}},
		{name: "tool call", token: "tooler", args: []string{"--tools", "TOOLS", "weather?"},
			wantOut: "Let me look.\n", wantErr: []string{`tool_use get_weather {"city":"Paris"}` + "\n"},
			wantTools: []string{"mcp__piauth__get_weather"}},
		{name: "tool call streamed", token: "tooler", args: []string{"--stream", "--tools", "TOOLS", "weather?"},
			wantOut: "Let me look.\n", wantErr: []string{`tool_use get_weather {"city":"Paris"}` + "\n"}},
		{name: "model and system", token: "plain", args: []string{"-m", "claude-opus-4-8", "-s", "be brief", "hi"},
			wantOut: wantText + "\n", wantUser: "hi",
			wantLast: "in 1,234 · out 567 · cache read 2,048 · cache write 0 · $0.0214"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, chatScenario)
			h.login(chatToken(tt.token))
			tools := h.writeFile("tools.json", weatherTools)
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.ReplaceAll(a, "TOOLS", tools)
			}
			res := h.run(context.Background(), tt.stdin, nil, args...)
			require.Equal(t, 0, res.code, "stderr: %s", res.err)
			assert.Equal(t, tt.wantOut, res.out)
			for _, s := range tt.wantErr {
				assert.Contains(t, res.err, s)
			}
			for _, s := range tt.noErr {
				assert.NotContains(t, res.err, s)
			}
			if tt.wantLast != "" {
				assert.Equal(t, tt.wantLast, lastLine(res.err))
			}
			reqs := h.requests()
			require.Len(t, reqs, 1)
			if tt.wantUser != "" {
				require.Len(t, reqs[0].Messages, 1)
				var content string
				require.NoError(t, json.Unmarshal(reqs[0].Messages[0].Content, &content))
				assert.Equal(t, tt.wantUser, content)
			}
			for i, name := range tt.wantTools {
				assert.Equal(t, name, reqs[0].Tools[i].Name)
			}
		})
	}
}

func TestChatRequestParameters(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		env          string // PIAUTH_MODEL
		wantModel    string
		wantMax      int
		wantThinking int
		wantSystem   []string
	}{
		{name: "defaults", args: []string{"hi"}, wantModel: "claude-sonnet-5-5", wantMax: 4096,
			wantSystem: []string{emulator.IdentityText}},
		{name: "flags", args: []string{"-m", "claude-haiku-4-5", "--max-tokens", "900", "-s", "be brief", "hi"},
			wantModel: "claude-haiku-4-5", wantMax: 900, wantSystem: []string{emulator.IdentityText, "be brief"}},
		{name: "thinking raises the default max tokens", args: []string{"--thinking", "8000", "hi"},
			wantModel: "claude-sonnet-5-5", wantMax: 8000 + 4096, wantThinking: 8000, wantSystem: []string{emulator.IdentityText}},
		{name: "thinking below explicit max tokens", args: []string{"--thinking", "1024", "--max-tokens", "2000", "hi"},
			wantModel: "claude-sonnet-5-5", wantMax: 2000, wantThinking: 1024, wantSystem: []string{emulator.IdentityText}},
		{name: "PIAUTH_MODEL takes an alias", args: []string{"hi"}, env: "opus", wantModel: "claude-opus-5-5", wantMax: 4096,
			wantSystem: []string{emulator.IdentityText}},
		{name: "-m takes an alias", args: []string{"-m", "haiku", "hi"}, wantModel: "claude-haiku-5-5", wantMax: 4096,
			wantSystem: []string{emulator.IdentityText}},
		{name: "-m beats PIAUTH_MODEL", args: []string{"-m", "fable", "hi"}, env: "opus", wantModel: "claude-fable-5-2", wantMax: 4096,
			wantSystem: []string{emulator.IdentityText}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, "")
			h.login(chatToken("params"))
			f, bufs := newTestFactory("", map[string]string{"PIAUTH_BASE_URL": h.srv.URL, "PIAUTH_MODEL": tt.env})
			code := run(context.Background(), f, append([]string{"piauth", "--dir", h.dir, "--keyring", "off", "chat"}, tt.args...))
			require.Equal(t, 0, code, bufs.Err.String())
			reqs := h.requests()
			require.Len(t, reqs, 1)
			assert.Equal(t, tt.wantModel, reqs[0].Model)
			assert.Equal(t, tt.wantMax, reqs[0].MaxTokens)
			if tt.wantThinking > 0 {
				require.NotNil(t, reqs[0].Thinking)
				assert.Equal(t, tt.wantThinking, reqs[0].Thinking.BudgetTokens)
			} else {
				assert.Nil(t, reqs[0].Thinking)
			}
			var system []string
			for _, s := range reqs[0].System {
				system = append(system, s.Text)
			}
			assert.Equal(t, tt.wantSystem, system)
		})
	}
}

func TestChatUsageErrors(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		tools string // content of the --tools file; "" = no --tools
		args  []string
		err   string
	}{
		{name: "empty prompt", err: "empty prompt"},
		{name: "blank stdin and no args", stdin: "  \n\n", err: "empty prompt"},
		{name: "thinking too small", args: []string{"--thinking", "100", "hi"}, err: "--thinking must be at least 1024"},
		{name: "thinking above max tokens", args: []string{"--thinking", "2048", "--max-tokens", "2048", "hi"},
			err: "--max-tokens (2048) must exceed --thinking (2048)"},
		{name: "zero max tokens", args: []string{"--max-tokens", "0", "hi"}, err: "--max-tokens must be positive"},
		{name: "tools not JSON", tools: "not json", args: []string{"hi"}, err: "not a JSON array"},
		{name: "tools without schema", tools: `[{"name":"x"}]`, args: []string{"hi"}, err: `tool "x" needs an input_schema`},
		{name: "tools without name", tools: `[{"input_schema":{}}]`, args: []string{"hi"}, err: "tool 1 has no name"},
		{name: "tools empty", tools: `[]`, args: []string{"hi"}, err: "holds no tools"},
		{name: "bad flag", args: []string{"--max-tokens", "many", "hi"}, err: "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, "")
			h.login(chatToken("usage"))
			args := tt.args
			var tools string
			if tt.tools != "" {
				tools = h.writeFile("tools.json", tt.tools)
				args = append([]string{"--tools", tools}, args...)
			}
			res := h.run(context.Background(), tt.stdin, nil, args...)
			assert.Equal(t, 2, res.code, res.err)
			assert.Contains(t, res.err, tt.err)
			if tools != "" {
				assert.Contains(t, res.err, tools, "the error names the file")
			}
			assert.Empty(t, h.requests())
		})
	}
	t.Run("missing tools file", func(t *testing.T) {
		h := newChatHarness(t, "")
		h.login(chatToken("usage"))
		missing := filepath.Join(t.TempDir(), "nope.json")
		res := h.run(context.Background(), "", nil, "--tools", missing, "hi")
		assert.Equal(t, 2, res.code)
		assert.Contains(t, res.err, missing)
	})
}

func TestChatAccountingWithPool(t *testing.T) {
	tests := []struct {
		name   string
		active int
		want   string
	}{
		{"first key", 0, wantAccounting + " · 🔑 1/2"},
		{"second key", 1, wantAccounting + " · 🔑 2/2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, chatScenario)
			keys := []string{chatToken("pool-one"), chatToken("pool-two")}
			h.pool(tt.active, keys...)
			res := h.run(context.Background(), "", nil, "hi")
			require.Equal(t, 0, res.code, res.err)
			assert.Equal(t, tt.want, lastLine(res.err))
			st := h.emu.Stats()
			assert.Equal(t, int64(1), st.Tokens[emulator.Fingerprint(keys[tt.active])], "the active key was used")
			assert.Zero(t, st.Tokens[emulator.Fingerprint(keys[1-tt.active])])
		})
	}
	t.Run("single pooled key uses auth.json", func(t *testing.T) {
		h := newChatHarness(t, chatScenario)
		h.pool(0, chatToken("lonely"))
		h.login(chatToken("authjson"))
		res := h.run(context.Background(), "", nil, "hi")
		require.Equal(t, 0, res.code, res.err)
		assert.Equal(t, wantAccounting, lastLine(res.err))
		assert.Equal(t, int64(1), h.emu.Stats().Tokens[emulator.Fingerprint(chatToken("authjson"))])
	})
}

func TestChatCredentials(t *testing.T) {
	expired := time.Now().Add(-time.Minute).UnixMilli()
	tests := []struct {
		name      string
		cred      *keystore.Credential
		code      int
		wantErr   string
		refreshes int64
	}{
		{name: "expired login is refreshed first", code: 0, refreshes: 1,
			cred: &keystore.Credential{Type: "oauth", Access: chatToken("old"), Refresh: "sk-ant-ort01-chat-" + strings.Repeat("r", 40), Expires: expired}},
		{name: "expired login without refresh token", code: 3, wantErr: "login expired or revoked: run piauth login",
			cred: &keystore.Credential{Type: "oauth", Access: chatToken("old"), Expires: expired}},
		{name: "rejected refresh token", code: 3, wantErr: "run piauth login",
			cred: &keystore.Credential{Type: "oauth", Access: chatToken("old"), Refresh: "sk-ant-ort01-invalid-" + strings.Repeat("r", 40), Expires: expired}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, chatScenario)
			h.writeAuth(tt.cred)
			res := h.run(context.Background(), "", nil, "hi")
			assert.Equal(t, tt.code, res.code, res.err)
			assert.Contains(t, res.err, tt.wantErr)
			st := h.emu.Stats()
			assert.Equal(t, tt.refreshes, st.Refreshes)
			assert.Zero(t, st.Tokens[emulator.Fingerprint(tt.cred.Access)], "the expired token was never sent")
			if tt.code == 0 {
				assert.Equal(t, wantText+"\n", res.out)
				assert.Equal(t, int64(1), st.Requests["/v1/messages"])
			}
		})
	}
}

func TestChatRetiredModel(t *testing.T) {
	h := newChatHarness(t, "")
	h.login(chatToken("retired"))
	for _, args := range [][]string{{"-m", "claude-sonnet-4-5", "hi"}, {"-m", "claude-3-5-sonnet-20241022", "hi"}} {
		res := h.run(context.Background(), "", nil, args...)
		assert.Equal(t, exitUsage, res.code, res.err)
		assert.Contains(t, res.err, "piauth: model "+args[1]+" ")
		assert.Contains(t, res.err, "; use claude-sonnet-5-5 (alias sonnet)")
	}
	res := h.run(context.Background(), "", nil, "-m", "claude-sonnet-4-5", "hi")
	assert.Contains(t, res.err, "claude-sonnet-4-5 was retired on 2026-11-30; use claude-sonnet-5-5 (alias sonnet)")
	assert.Zero(t, h.emu.Stats().Requests["/v1/messages"], "nothing is sent for a retired model")
}

func TestChatErrors(t *testing.T) {
	tests := []struct {
		name     string
		token    string // "" = not logged in
		refresh  string // the login's refresh token ("" = one the emulator accepts once)
		cut      bool   // drop message_stop
		args     []string
		code     int
		wantOut  string
		wantErr  []string
		wantLast string // last stderr line
	}{
		{name: "not logged in", code: 3, args: []string{"hi"}, wantErr: []string{"piauth: not logged in: run piauth login"}},
		{name: "authentication error, refresh refused too", token: "invalid", refresh: "sk-ant-ort01-chat-invalid-refresh", args: []string{"hi"}, code: 3,
			wantErr: []string{"piauth: authentication_error: ", "(request-id req_", "; run piauth login"}},
		{name: "refused token is refreshed and the request retried", token: "invalid", args: []string{"hi"}, code: 0,
			wantOut: wantText + "\n", wantErr: []string{"🔑 refreshed: the login's token was refused; retrying with its new token"}},
		{name: "request error", token: "broken", args: []string{"hi"}, code: 1,
			wantErr: []string{"piauth: invalid_request_error: messages.0: something is off (request-id req_"}},
		{name: "mid-stream error", token: "midstream", args: []string{"hi"}, code: 1,
			wantOut:  wantText + "\n",
			wantErr:  []string{"in 1,234 · out "},
			wantLast: "piauth: stream error: overloaded_error: Overloaded"},
		{name: "mid-stream error streamed", token: "midstream", args: []string{"--stream", "hi"}, code: 1,
			wantOut: wantText + "\n", wantErr: []string{"in 1,234 · out "},
			wantLast: "piauth: stream error: overloaded_error: Overloaded"},
		{name: "truncated stream", token: "plain", cut: true, args: []string{"--stream", "hi"}, code: 1,
			wantOut:  wantText + "\n",
			wantLast: "piauth: the answer was cut short: stream ended before message_stop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, chatScenario)
			if tt.token != "" {
				h.loginWith(chatToken(tt.token), tt.refresh)
			}
			h.cutEnd = tt.cut
			res := h.run(context.Background(), "", nil, tt.args...)
			assert.Equal(t, tt.code, res.code, res.err)
			if tt.wantOut != "" {
				assert.Equal(t, 1, strings.Count(res.out, tt.wantOut), "partial text printed once: %q", res.out)
				assert.True(t, strings.HasPrefix(res.out, tt.wantOut), "stdout: %q", res.out)
			} else {
				assert.Empty(t, res.out)
			}
			for _, s := range tt.wantErr {
				assert.Contains(t, res.err, s)
			}
			if tt.wantLast != "" {
				assert.True(t, strings.HasPrefix(lastLine(res.err), tt.wantLast), "last line: %q", lastLine(res.err))
			}
		})
	}
}

// cancelOnWrite cancels a context at the first write: Ctrl-C right after the
// first text delta reached stdout.
type cancelOnWrite struct {
	cancel context.CancelFunc
	once   sync.Once
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	c.once.Do(c.cancel)
	return len(p), nil
}

func TestChatInterrupted(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"stream", []string{"--stream", "--raw", "hi"}},
		{"json", []string{"--json", "hi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, chatScenario)
			h.outTTY = true // at a terminal every delta is written at once
			h.login(chatToken("slow"))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			res := h.run(ctx, "", &cancelOnWrite{cancel: cancel}, tt.args...)
			assert.Equal(t, 130, res.code, res.err)
			lines := strings.Split(strings.TrimRight(res.err, "\n"), "\n")
			require.GreaterOrEqual(t, len(lines), 2, res.err)
			assert.Equal(t, "piauth: interrupted", lines[len(lines)-1])
			assert.Regexp(t, `^in 1,234 · out \d+ · cache read 2,048 · cache write 0 · \$0\.\d{4}$`, lines[len(lines)-2],
				"usage so far")
			if tt.name == "stream" {
				assert.NotEmpty(t, res.out)
				assert.True(t, strings.HasPrefix(wantText, strings.TrimSuffix(res.out, "\n")), "partial text: %q", res.out)
				assert.NotEqual(t, wantText+"\n", res.out, "the stream stopped early")
			} else {
				assert.Contains(t, res.out, `{"type":"error","error_type":"interrupted","message":"interrupted"}`)
				assert.NotContains(t, res.out, `"type":"message"`)
			}
		})
	}
}

func TestChatInteractive(t *testing.T) {
	tests := []struct {
		name      string
		stdin     string
		args      []string
		wantTurns []string // user prompts of each request
	}{
		{name: "two turns until EOF", stdin: "first question\nsecond question\n", args: []string{"-i"},
			wantTurns: []string{"first question", "second question"}},
		{name: "args are the first turn, /exit ends", stdin: "\nfollow-up\n/exit\nnever sent\n", args: []string{"-i", "opening"},
			wantTurns: []string{"opening", "follow-up"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, chatScenario)
			h.login(chatToken("talk"))
			res := h.run(context.Background(), tt.stdin, nil, tt.args...)
			require.Equal(t, 0, res.code, res.err)
			assert.Equal(t, strings.Repeat(wantText+"\n", len(tt.wantTurns)), res.out)
			assert.Equal(t, len(tt.wantTurns), strings.Count(res.err, wantAccounting+"\n"), "one accounting line per turn")
			reqs := h.requests()
			require.Len(t, reqs, len(tt.wantTurns))
			for i, req := range reqs {
				require.Len(t, req.Messages, 2*i+1, "request %d carries the conversation", i)
				for j := 0; j <= i; j++ {
					var user string
					require.NoError(t, json.Unmarshal(req.Messages[2*j].Content, &user))
					assert.Equal(t, "user", req.Messages[2*j].Role)
					assert.Equal(t, tt.wantTurns[j], user)
					if j < i {
						assert.Equal(t, "assistant", req.Messages[2*j+1].Role)
						assert.JSONEq(t, `[{"type":"text","text":"`+wantText+`"}]`, string(req.Messages[2*j+1].Content))
					}
				}
			}
		})
	}
	t.Run("a failed turn is reported and forgotten", func(t *testing.T) {
		h := newChatHarness(t, `{"tokens":[{"contains":"flaky","outcomes":[{"status":200},{"status":400},{"status":200}]}]}`)
		h.login(chatToken("flaky"))
		res := h.run(context.Background(), "one\ntwo\nthree\n", nil, "-i")
		require.Equal(t, 0, res.code, res.err)
		assert.Contains(t, res.err, "piauth: invalid_request_error: ")
		reqs := h.requests()
		require.Len(t, reqs, 3)
		require.Len(t, reqs[2].Messages, 3, "the failed turn is not in the history")
		var user string
		require.NoError(t, json.Unmarshal(reqs[2].Messages[2].Content, &user))
		assert.Equal(t, "three", user)
	})
}

// idPattern matches the random ids the emulator mints.
var idPattern = regexp.MustCompile(`(msg_01|toolu_01|req_011C|EmuSig)[A-Za-z0-9]+`)

func TestChatJSONGolden(t *testing.T) {
	tests := []struct {
		name  string
		token string
		args  []string
		code  int
	}{
		{"text", "plain", []string{"--json", "hi"}, 0},
		{"thinking", "thinker", []string{"--json", "--thinking", "2048", "think"}, 0},
		{"tool_use", "tooler", []string{"--json", "--tools", "TOOLS", "weather?"}, 0},
		{"midstream", "midstream", []string{"--json", "hi"}, 1},
		{"api_error", "broken", []string{"--json", "hi"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, chatScenario)
			h.login(chatToken(tt.token))
			tools := h.writeFile("tools.json", weatherTools)
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.ReplaceAll(a, "TOOLS", tools)
			}
			res := h.run(context.Background(), "", nil, args...)
			require.Equal(t, tt.code, res.code, res.err)

			lines := strings.Split(strings.TrimSuffix(res.out, "\n"), "\n")
			for i, line := range lines {
				var ev map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &ev), "line %d: %s", i+1, line)
				assert.NotEmpty(t, ev["type"], "line %d has a type", i+1)
			}
			var last map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last))
			if tt.code == 0 {
				assert.Equal(t, "message", last["type"])
			} else {
				assert.Equal(t, "error", last["type"])
			}
			if tt.name == "tool_use" {
				assert.Equal(t, "tool_use", last["stop_reason"])
				content := last["content"].([]any)
				assert.Equal(t, "get_weather", content[len(content)-1].(map[string]any)["name"])
			}

			got := idPattern.ReplaceAllString(res.out, "${1}ID")
			golden := filepath.Join("testdata", "chat", tt.name+".ndjson")
			if *updateChatGolden {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run with -update-chat to create it")
			assert.Equal(t, string(want), got)
		})
	}
}

// writeRecorder keeps every Write it gets, separately.
type writeRecorder struct{ writes []string }

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// TestChatStreamWrites checks --stream's output granularity: every delta at
// once on a terminal, whole lines to a pipe or file.
func TestChatStreamWrites(t *testing.T) {
	const text = "line one\nline two\nline three"
	scenario := `{"reply": {"text": "line one\nline two\nline three", "deltas": 9}}`
	tests := []struct {
		name   string
		tty    bool
		writes int
	}{
		{"terminal: one write per delta, then the final newline", true, 10},
		{"pipe: one write per line", false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, scenario)
			h.outTTY = tt.tty
			h.login(chatToken("lines"))
			rec := &writeRecorder{}
			res := h.run(context.Background(), "", rec, "--stream", "--raw", "hi")
			require.Equal(t, 0, res.code, res.err)
			assert.Equal(t, text+"\n", res.out)
			assert.Len(t, rec.writes, tt.writes, "writes: %q", rec.writes)
			if !tt.tty {
				for _, w := range rec.writes {
					assert.True(t, strings.HasSuffix(w, "\n"), "a write ends a line: %q", w)
				}
			}
		})
	}
}
