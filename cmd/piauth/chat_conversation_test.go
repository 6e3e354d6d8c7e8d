package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/convo"
	"github.com/piauth/piauth/pkg/emulator"
)

// convoScenario scripts the replies of the conversation tests by token
// substring.
const convoScenario = `{
  "reply": {"text": "Hello from the emulator.", "deltas": 4,
            "usage": {"input_tokens": 1234, "output_tokens": 567, "cache_read_input_tokens": 2048}},
  "tokens": [
    {"contains": "thinker", "reply": {"thinking": "Weighing the options.", "text": "Answer after thought."}},
    {"contains": "tooler", "reply": {"text": "Let me look.",
      "tool_calls": [{"id": "toolu_weather1", "input": {"city": "Paris"}}, {"id": "toolu_weather2", "input": {"city": "Rome"}}]}},
    {"contains": "maxed", "reply": {"text": "This answer is cut", "stop_reason": "max_tokens"}},
    {"contains": "refuser", "reply": {"text": "I can", "stop_reason": "refusal"}},
    {"contains": "pauser", "reply": {"text": "Searching…", "stop_reason": "pause_turn"}},
    {"contains": "huge", "reply": {"text": "word ", "size": 4200000, "deltas": 40}},
    {"contains": "large", "reply": {"text": "word ", "size": 300000, "deltas": 40}}
  ]
}`

// convoEnv runs chat with a state dir, so that conversations are stored.
type convoEnv struct {
	*chatHarness
	state  string
	env    map[string]string
	errTTY bool
}

func newConvoEnv(t *testing.T, token string) *convoEnv {
	t.Helper()
	h := newChatHarness(t, convoScenario)
	// Give the memory of each test back: the process tests after these
	// measure this process's peak through fork (see chat).
	t.Cleanup(debug.FreeOSMemory)
	if token != "" {
		h.login(chatToken(token))
	}
	e := &convoEnv{chatHarness: h, state: t.TempDir()}
	e.env = map[string]string{
		"PIAUTH_BASE_URL":  h.srv.URL,
		"PIAUTH_TOKEN_URL": h.srv.URL + "/v1/oauth/token",
		"PIAUTH_STATE_DIR": e.state,
		// The ledger, which chat leaves open for the process's exit, would
		// pile up connections in this process.
		"PIAUTH_LEDGER": "off",
	}
	return e
}

// chat runs `piauth chat ARGS`: as a real process (so that no SQLite
// store stays in this one: the process tests after these measure its
// memory through fork), or in-process when errTTY fakes a terminal.
func (e *convoEnv) chat(stdin string, args ...string) chatResult {
	e.t.Helper()
	argv := append([]string{"--dir", e.dir, "--keyring", "off", "chat"}, args...)
	var res chatResult
	if e.errTTY {
		f, bufs := newTestFactory(stdin, e.env)
		f.IO.ErrTTY = true
		res = chatResult{code: run(context.Background(), f, append([]string{"piauth"}, argv...)), out: bufs.Out.String(), err: bufs.Err.String()}
	} else {
		p := relRun(e.t, e.env, stdin, argv...)
		res = chatResult{code: p.code, out: p.out, err: p.err}
	}
	for _, tok := range e.tokens {
		assert.NotContains(e.t, res.out+res.err, tok, "a whole token was printed")
	}
	return res
}

// mustChat is chat that must exit 0.
func (e *convoEnv) mustChat(stdin string, args ...string) chatResult {
	e.t.Helper()
	res := e.chat(stdin, args...)
	require.Equal(e.t, 0, res.code, "stderr: %s", res.err)
	return res
}

// stored lists the stored conversations, the most recent first (through
// `piauth chat --list --json`, a real process).
func (e *convoEnv) stored() []convo.Conversation {
	e.t.Helper()
	p := relRun(e.t, e.env, "", "--keyring", "off", "chat", "--list", "--json")
	require.Equal(e.t, 0, p.code, p.err)
	var items []conversationItem
	require.NoError(e.t, json.Unmarshal([]byte(p.out), &items), p.out)
	out := make([]convo.Conversation, len(items))
	for i, it := range items {
		out[i] = convo.Conversation{ID: it.ID, Created: it.Created, Updated: it.Updated, Model: it.Model, System: it.System,
			Tools: it.Tools, ToolsFile: it.ToolsFile, Fingerprint: it.Fingerprint, Title: it.Title, Turns: it.Turns, CostUSD: it.CostUSD}
	}
	return out
}

// bodies are the raw Messages request bodies, decoded.
func (e *convoEnv) bodies() []map[string]json.RawMessage {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]map[string]json.RawMessage, len(e.chatHarness.bodies))
	for i, b := range e.chatHarness.bodies {
		require.NoError(e.t, json.Unmarshal(b, &out[i]))
	}
	return out
}

var listLine = regexp.MustCompile(`(?m)^([0-9a-z]{10})\s+\S.*\s+claude-sonnet-5-5\s+(\d+)\s+\$(\S+)\s+(.*)$`)

func TestChatConversationContinue(t *testing.T) {
	e := newConvoEnv(t, "plain")
	e.mustChat("", "first", "question")
	e.mustChat("", "-c", "second question")
	reqs := e.requests()
	require.Len(t, reqs, 2)
	require.Len(t, reqs[1].Messages, 3, "the second request carries the first turn")
	assert.Equal(t, reqs[0].Messages[0], reqs[1].Messages[0])
	assert.Equal(t, "assistant", reqs[1].Messages[1].Role)
	assert.JSONEq(t, `[{"type":"text","text":"Hello from the emulator."}]`, string(reqs[1].Messages[1].Content))
	assert.JSONEq(t, `"second question"`, string(reqs[1].Messages[2].Content))

	cs := e.stored()
	require.Len(t, cs, 1)
	id := cs[0].ID
	assert.Equal(t, 2, cs[0].Turns)
	assert.Equal(t, "first question", cs[0].Title)

	// A new conversation, then --cid (a prefix) goes back to the first.
	e.mustChat("", "another", "topic")
	e.mustChat("", "--cid", strings.ToUpper(id[:6]), "third")
	reqs = e.requests()
	require.Len(t, reqs, 4)
	require.Len(t, reqs[3].Messages, 5)
	assert.JSONEq(t, `"third"`, string(reqs[3].Messages[4].Content))

	t.Run("list", func(t *testing.T) {
		res := e.mustChat("", "--list")
		m := listLine.FindAllStringSubmatch(res.out, -1)
		require.Len(t, m, 2, res.out)
		assert.Equal(t, []string{id, "3", "0.0250", "first question"}, m[0][1:], "most recent first, cost of 3 turns")
		assert.Equal(t, []string{"1", "another topic"}, []string{m[1][2], m[1][4]}, res.out)
	})
	t.Run("list json", func(t *testing.T) {
		res := e.mustChat("", "--list", "--json")
		var items []conversationItem
		require.NoError(t, json.Unmarshal([]byte(res.out), &items))
		require.Len(t, items, 2)
		assert.Equal(t, id, items[0].ID)
		assert.Equal(t, 3, items[0].Turns)
		assert.InDelta(t, 3*0.0083428, items[0].CostUSD, 1e-9)
		assert.Equal(t, "claude-sonnet-5-5", items[0].Model)
		assert.Equal(t, emulator.Fingerprint(chatToken("plain")), items[0].Fingerprint)
	})
	t.Run("show", func(t *testing.T) {
		res := e.mustChat("", "--show", id[:5])
		assert.Contains(t, res.out, "conversation "+id+" · claude-sonnet-5-5 · 3 turns")
		assert.Contains(t, res.out, "\n> first question\n\nHello from the emulator.\n\n> second question\n")
	})
	t.Run("show json", func(t *testing.T) {
		res := e.mustChat("", "--show", id, "--json")
		var show conversationShow
		require.NoError(t, json.Unmarshal([]byte(res.out), &show))
		require.Len(t, show.Messages, 6)
		assert.JSONEq(t, string(show.Messages[0]), `{"role":"user","content":"first question"}`)
		require.Len(t, show.TurnInfo, 3)
		assert.Equal(t, "end_turn", show.TurnInfo[2].StopReason)
	})
	t.Run("errors", func(t *testing.T) {
		for _, args := range [][]string{{"--show", "zzzzzzzz"}, {"--cid", "zzzzzzzz", "hi"}, {"--delete", "zzzzzzzz"},
			{"-c", "--cid", id, "hi"}, {"--list", "--show", id}, {"--list", "-c"}} {
			res := e.chat("", args...)
			assert.Equal(t, exitUsage, res.code, "%v: %s", args, res.err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		res := e.mustChat("", "--delete", id)
		assert.Contains(t, res.err, "deleted conversation "+id)
		cs := e.stored()
		require.Len(t, cs, 1)
		assert.NotEqual(t, id, cs[0].ID)
	})
}

// TestChatConversationWALBounded: chat processes exit without closing the
// store, each its only opener; the WAL must not grow with every turn (it
// did: SQLite never restarts it then) but be trimmed past convo.MaxWAL.
func TestChatConversationWALBounded(t *testing.T) {
	e := newConvoEnv(t, "large")
	wal := filepath.Join(e.state, convo.FileName+"-wal")
	const chats = 8 // of 300 KB answers: 2.4 MB unbounded
	largest := int64(0)
	for range chats {
		e.mustChat("", "hello")
		fi, err := os.Stat(wal)
		if err == nil {
			largest = max(largest, fi.Size())
		}
	}
	assert.LessOrEqual(t, largest, int64(convo.MaxWAL+400<<10), "the WAL stays within a turn of convo.MaxWAL")
	assert.Len(t, e.stored(), chats, "every turn stored")
}

func TestChatConversationPinnedKey(t *testing.T) {
	e := newConvoEnv(t, "")
	keys := []string{chatToken("pool-one"), chatToken("pool-two")}
	e.pool(0, keys...)
	e.mustChat("", "hi")
	e.pool(1, keys...) // another key is active now
	res := e.mustChat("", "-c", "more")
	assert.Contains(t, lastLine(res.err), "🔑 1/2", "the continued conversation stays on its key")
	st := e.emu.Stats()
	assert.Equal(t, int64(2), st.Tokens[emulator.Fingerprint(keys[0])])
	assert.Zero(t, st.Tokens[emulator.Fingerprint(keys[1])])

	e.mustChat("", "a new conversation")
	assert.Equal(t, int64(1), e.emu.Stats().Tokens[emulator.Fingerprint(keys[1])], "a new one starts on the active key")
	cs := e.stored()
	require.Len(t, cs, 2)
	assert.Equal(t, emulator.Fingerprint(keys[1]), cs[0].Fingerprint)
	assert.Equal(t, emulator.Fingerprint(keys[0]), cs[1].Fingerprint)
}

func TestChatToolResultRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		args     []string // after -c; FILE is a file holding {"temp": 21}
		code     int
		wantErr  string
		wantLast string // JSON of the user message's content
	}{
		{name: "results", args: []string{"--tool-result", `toolu_weather1={"temp": 19}`, "--tool-result", "toolu_weather2=@FILE"},
			wantLast: `[{"type":"tool_result","tool_use_id":"toolu_weather1","content":"{\"temp\":19}"},
				{"type":"tool_result","tool_use_id":"toolu_weather2","content":"{\"temp\":21}"}]`},
		{name: "error and text", args: []string{"--tool-result", `toolu_weather1="sunny"`, "--tool-error", "toolu_weather2=no such city", "and now?"},
			wantLast: `[{"type":"tool_result","tool_use_id":"toolu_weather1","content":"sunny"},
				{"type":"tool_result","tool_use_id":"toolu_weather2","content":"no such city","is_error":true},
				{"type":"text","text":"and now?"}]`},
		{name: "content blocks", args: []string{"--tool-result", `toolu_weather1=[{"type":"text","text":"19°"}]`, "--tool-result", "toolu_weather2=21"},
			wantLast: `[{"type":"tool_result","tool_use_id":"toolu_weather1","content":[{"type":"text","text":"19°"}]},
				{"type":"tool_result","tool_use_id":"toolu_weather2","content":"21"}]`},
		{name: "unknown id", args: []string{"--tool-result", "toolu_nope={}"}, code: exitUsage,
			wantErr: `tool result for "toolu_nope": no such tool call waits; expected toolu_weather1, toolu_weather2`},
		{name: "one missing", args: []string{"--tool-result", "toolu_weather1={}"}, code: exitUsage,
			wantErr: "no result for tool call toolu_weather2"},
		{name: "prompt without results", args: []string{"what now?"}, code: exitUsage,
			wantErr: "waits for the results of tool calls toolu_weather1, toolu_weather2: give --tool-result"},
		{name: "bad value", args: []string{"--tool-result", "toolu_weather1"}, code: exitUsage, wantErr: "want ID=JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newConvoEnv(t, "tooler")
			tools := e.writeFile("tools.json", weatherTools)
			file := e.writeFile("result.json", `{"temp": 21}`+"\n")
			res := e.mustChat("", "--tools", tools, "weather in Paris and Rome?")
			assert.Contains(t, res.err, `tool_use get_weather {"city":"Paris"}`)
			require.NoError(t, os.Remove(tools), "the tools are remembered with the conversation")
			args := []string{"-c"}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "FILE", file))
			}
			res = e.chat("", args...)
			require.Equal(t, tt.code, res.code, res.err)
			if tt.wantErr != "" {
				assert.Contains(t, res.err, tt.wantErr)
				assert.Len(t, e.requests(), 1, "nothing sent")
				return
			}
			reqs := e.requests()
			require.Len(t, reqs, 2)
			msgs := reqs[1].Messages
			require.Len(t, msgs, 3)
			assert.Contains(t, string(msgs[1].Content), `"id":"toolu_weather1"`, "the tool calls are sent back")
			assert.JSONEq(t, tt.wantLast, string(msgs[2].Content))
			require.Len(t, reqs[1].Tools, 1)
			assert.Equal(t, "mcp__piauth__get_weather", reqs[1].Tools[0].Name)
			assert.Equal(t, 2, e.stored()[0].Turns)
		})
	}
	t.Run("tool result needs a conversation", func(t *testing.T) {
		e := newConvoEnv(t, "tooler")
		res := e.chat("", "--tool-result", "a=b", "hi")
		assert.Equal(t, exitUsage, res.code)
		assert.Contains(t, res.err, "add -c")
	})
}

func TestChatStopReasons(t *testing.T) {
	tests := []struct {
		name, token string
		args        []string
		code        int
		wantErr     string
	}{
		{"max_tokens", "maxed", []string{"hi"}, exitTruncated,
			"piauth: answer cut at max_tokens (4096); raise --max-tokens or continue with -c\n"},
		{"max_tokens allowed", "maxed", []string{"--allow-truncated", "--max-tokens", "100", "hi"}, 0,
			"piauth: answer cut at max_tokens (100); raise --max-tokens or continue with -c\n"},
		{"max_tokens json", "maxed", []string{"--json", "hi"}, exitTruncated, "answer cut at max_tokens"},
		{"refusal", "refuser", []string{"hi"}, 0, "piauth: the model declined to answer (stop_reason refusal)\n"},
		{"pause_turn", "pauser", []string{"hi"}, 0, "piauth: the server paused this turn (stop_reason pause_turn)"},
		{"end_turn", "plain", []string{"hi"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newConvoEnv(t, tt.token)
			res := e.chat("", tt.args...)
			require.Equal(t, tt.code, res.code, res.err)
			if tt.wantErr == "" {
				assert.NotContains(t, res.err, "piauth:")
				return
			}
			assert.Contains(t, res.err, tt.wantErr)
			assert.Equal(t, 1, strings.Count(res.err, "piauth:"), "said once: %s", res.err)
			assert.Equal(t, 1, e.stored()[0].Turns, "the answer is stored all the same")
		})
	}
	t.Run("pause_turn resumed with -c", func(t *testing.T) {
		e := newConvoEnv(t, "pauser")
		e.mustChat("", "search")
		e.mustChat("", "-c")
		reqs := e.requests()
		require.Len(t, reqs, 2)
		require.Len(t, reqs[1].Messages, 2)
		assert.Equal(t, "assistant", reqs[1].Messages[1].Role, "the paused answer is sent back as the last message")
	})
	t.Run("continue after max_tokens", func(t *testing.T) {
		e := newConvoEnv(t, "maxed")
		assert.Equal(t, exitTruncated, e.chat("", "long essay").code)
		assert.Equal(t, exitTruncated, e.chat("", "-c", "go on").code)
		require.Len(t, e.requests()[1].Messages, 3)
	})
}

func TestChatQuietAndThinkingLabel(t *testing.T) {
	tests := []struct {
		name     string
		token    string
		args     []string
		errTTY   bool
		wantErr  string
		noErr    []string
		wantLast string
	}{
		{name: "quiet", token: "plain", args: []string{"-q", "hi"}, noErr: []string{"in 1,234"}},
		{name: "thinking labelled", token: "thinker", args: []string{"--show-thinking", "--thinking", "2048", "hi"},
			wantErr: "thinking:\nWeighing the options.\n"},
		{name: "thinking labelled streamed", token: "thinker", args: []string{"--stream", "--show-thinking", "--thinking", "2048", "hi"},
			wantErr: "thinking:\nWeighing the options.\n"},
		{name: "thinking labelled on a terminal with NO_COLOR", token: "thinker", errTTY: true,
			args: []string{"--stream", "--thinking", "2048", "hi"}, wantErr: "thinking:\nWeighing the options.\n", noErr: []string{"\x1b["}},
		{name: "quiet keeps notices", token: "maxed", args: []string{"-q", "--allow-truncated", "hi"},
			wantErr: "answer cut at max_tokens", noErr: []string{"in 1,234"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newConvoEnv(t, tt.token)
			e.errTTY = tt.errTTY
			e.env["NO_COLOR"] = "1"
			e.env["PIAUTH_LOG"] = "off" // in-process on a fake terminal: no store to keep open
			res := e.mustChat("", tt.args...)
			assert.NotEmpty(t, res.out)
			assert.Contains(t, res.err, tt.wantErr)
			for _, s := range tt.noErr {
				assert.NotContains(t, res.err, s)
			}
		})
	}
}

func TestChatConversationStoreOffAndCorrupt(t *testing.T) {
	t.Run("PIAUTH_LOG=off", func(t *testing.T) {
		e := newConvoEnv(t, "plain")
		e.env["PIAUTH_LOG"] = "off"
		res := e.mustChat("", "hi")
		assert.Equal(t, wantText+"\n", res.out)
		assert.NoFileExists(t, filepath.Join(e.state, convo.FileName))
		res = e.chat("", "-c", "more")
		assert.Equal(t, exitError, res.code)
		assert.Contains(t, res.err, "conversations are not stored (PIAUTH_LOG=off)")
		assert.Len(t, e.requests(), 1)
	})
	t.Run("corrupt store", func(t *testing.T) {
		e := newConvoEnv(t, "plain")
		path := filepath.Join(e.state, convo.FileName)
		junk := []byte(strings.Repeat("this is not a SQLite database ", 10))
		require.NoError(t, os.WriteFile(path, junk, 0o600))
		res := e.mustChat("", "hi")
		assert.Equal(t, wantText+"\n", res.out, "answered all the same")
		assert.Equal(t, 1, strings.Count(res.err, "warning:"), res.err)
		assert.Contains(t, res.err, path)
		assert.Contains(t, res.err, "move it away")
		assert.Contains(t, res.err, wantAccounting+"\n")
		res = e.chat("", "-c", "more")
		assert.Equal(t, exitError, res.code)
		assert.Contains(t, res.err, path)
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, junk, got, "left as it was")
	})
}

func TestChatSampling(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    map[string]string // body fields
		absent  []string
		wantErr string
	}{
		{name: "none", args: []string{"hi"}, absent: []string{"temperature", "top_p", "stop_sequences"}},
		{name: "all", args: []string{"--temperature", "0.2", "--top-p", "0.9", "--stop", "END", "--stop", "\n\nQ:", "hi"},
			want: map[string]string{"temperature": "0.2", "top_p": "0.9", "stop_sequences": `["END","\n\nQ:"]`}},
		{name: "zero temperature is sent", args: []string{"--temperature", "0", "hi"}, want: map[string]string{"temperature": "0"}},
		{name: "thinking with temperature 1", args: []string{"--thinking", "2048", "--temperature", "1", "--top-p", "0.95", "hi"},
			want: map[string]string{"temperature": "1", "top_p": "0.95"}},
		{name: "temperature range", args: []string{"--temperature", "1.5", "hi"}, wantErr: "--temperature 1.5: want a value from 0 to 1"},
		{name: "top_p range", args: []string{"--top-p", "-0.1", "hi"}, wantErr: "--top-p -0.1: want a value from 0 to 1"},
		{name: "thinking refuses temperature", args: []string{"--thinking", "2048", "--temperature", "0.5", "hi"},
			wantErr: "extended thinking (--thinking) takes only temperature 1"},
		{name: "thinking refuses low top_p", args: []string{"--thinking", "2048", "--top-p", "0.5", "hi"},
			wantErr: "takes top_p from 0.95 to 1"},
		{name: "blank stop", args: []string{"--stop", " ", "hi"}, wantErr: "a stop sequence needs a character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newConvoEnv(t, "plain")
			res := e.chat("", tt.args...)
			if tt.wantErr != "" {
				assert.Equal(t, exitUsage, res.code)
				assert.Contains(t, res.err, tt.wantErr)
				assert.Empty(t, e.requests(), "refused before sending")
				return
			}
			require.Equal(t, 0, res.code, res.err)
			body := e.bodies()[0]
			for k, v := range tt.want {
				assert.JSONEq(t, v, string(body[k]), k)
			}
			for _, k := range tt.absent {
				assert.NotContains(t, body, k)
			}
		})
	}
}

func TestChatInteractiveTurnsStored(t *testing.T) {
	e := newConvoEnv(t, "tooler")
	tools := e.writeFile("tools.json", weatherTools)
	e.mustChat("weather?\nnever mind, thanks\n", "-i", "--tools", tools)
	reqs := e.requests()
	require.Len(t, reqs, 2)
	msgs := reqs[1].Messages
	require.Len(t, msgs, 3)
	assert.Contains(t, string(msgs[1].Content), `"type":"tool_use"`, "the tool calls stay in the history")
	assert.JSONEq(t, `[{"type":"tool_result","tool_use_id":"toolu_weather1","content":"not run: the user replied without running the tool","is_error":true},
		{"type":"tool_result","tool_use_id":"toolu_weather2","content":"not run: the user replied without running the tool","is_error":true},
		{"type":"text","text":"never mind, thanks"}]`, string(msgs[2].Content), "a typed reply declines the waiting calls")
	cs := e.stored()
	require.Len(t, cs, 1, "the loop's turns are one stored conversation")
	assert.Equal(t, 2, cs[0].Turns)
}

func TestChatSessionReset(t *testing.T) {
	e := newConvoEnv(t, "plain")
	f, _ := newTestFactory("", e.env)
	f.Dir = e.dir
	f.KeyringMode = "off"
	// The turns are "stored" in memory: this test runs the session
	// in-process, and SQLite is kept out of the test process.
	saved := map[string][]string{} // conversation id → the system prompt of each turn
	opened := make(chan struct{})
	close(opened)
	store := &convoStore{opened: opened, warn: t.Logf, save: func(_ context.Context, c *convo.Conversation, _ *convo.Turn) error {
		saved[c.ID] = append(saved[c.ID], c.System)
		return nil
	}}
	opts := &chatOptions{IO: f.IO, Messages: f.MessagesClient, Conversations: store, MaxTokens: 100}
	require.NoError(t, opts.resolveModel())
	client, err := opts.Messages(context.Background(), messagesOptions{})
	require.NoError(t, err)
	s := &chatSession{opts: opts, client: client, interactive: true}
	for _, p := range []string{"one", "two"} {
		_, err := s.turn(context.Background(), p)
		require.NoError(t, err)
	}
	first := s.convID()
	s.reset()
	assert.Empty(t, s.convID(), "reset forgets the conversation")
	opts.System = "now terse" // the REPL's /system
	_, err = s.turn(context.Background(), "three")
	require.NoError(t, err)
	reqs := e.requests()
	require.Len(t, reqs, 3)
	assert.Len(t, reqs[1].Messages, 3)
	assert.Len(t, reqs[2].Messages, 1, "reset clears the history")
	assert.Equal(t, "now terse", reqs[2].System[len(reqs[2].System)-1].Text)
	require.Len(t, saved, 2, "the turn after reset starts a new stored conversation")
	assert.Equal(t, []string{"", ""}, saved[first])
	assert.Equal(t, []string{"now terse"}, saved[s.convID()])
}

func TestChatStreamTurnStored(t *testing.T) {
	t.Run("text and thinking kept for the store", func(t *testing.T) {
		e := newConvoEnv(t, "thinker")
		e.mustChat("", "--stream", "--thinking", "2048", "hi")
		e.mustChat("", "-c", "--thinking", "2048", "more")
		msgs := e.requests()[1].Messages
		require.Len(t, msgs, 3)
		var blocks []map[string]string
		require.NoError(t, json.Unmarshal(msgs[1].Content, &blocks))
		require.Len(t, blocks, 2)
		assert.Equal(t, "Weighing the options.", blocks[0]["thinking"])
		assert.NotEmpty(t, blocks[0]["signature"], "the signature is sent back")
		assert.Equal(t, "Answer after thought.", blocks[1]["text"])
	})
	t.Run("an answer over the limit is printed, not stored", func(t *testing.T) {
		e := newConvoEnv(t, "huge")
		e.env["PIAUTH_BASE_URL"] = emulatorProcess(t, convoScenario)
		// A real process, its output counted, not kept: megabytes stay out
		// of this one.
		cmd := exec.Command(piauthBinary(t), "--dir", e.dir, "--keyring", "off", "chat", "--stream", "hi")
		cmd.Env = relEnv(e.env)
		var out byteCounter
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &stderr
		require.NoError(t, cmd.Run(), stderr.String())
		assert.Equal(t, 4200000+1, int(out))
		assert.Contains(t, stderr.String(), "an answer of more than 4.0 MB is not stored")
		assert.Empty(t, e.stored())
	})
}

func TestChatJSONConversationID(t *testing.T) {
	e := newConvoEnv(t, "plain")
	lastEvent := func(out string) map[string]any {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &ev))
		return ev
	}
	first := lastEvent(e.mustChat("", "--json", "hi").out)
	id, _ := first["conversation_id"].(string)
	require.Len(t, id, convo.IDLength)
	assert.Equal(t, id, e.stored()[0].ID)
	again := lastEvent(e.mustChat("", "--json", "--cid", id, "more").out)
	assert.Equal(t, id, again["conversation_id"])

	e.env["PIAUTH_LOG"] = "off"
	off := lastEvent(e.mustChat("", "--json", "hi").out)
	assert.NotContains(t, off, "conversation_id", "not stored: no id")
}

// emulatorProcess runs `piauth emulator` with scenario as a child process
// (for tests moving megabytes, kept out of the test process) and returns its
// URL; the process is killed at the end of the test.
func emulatorProcess(t *testing.T, scenario string) string {
	t.Helper()
	sc := filepath.Join(t.TempDir(), "scenario.json")
	require.NoError(t, os.WriteFile(sc, []byte(scenario), 0o600))
	cmd := exec.Command(piauthBinary(t), "emulator", "--quiet", "--scenario", sc)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "listening on http://"), "first line: %q", line)
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
}

// byteCounter counts what is written to it.
type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}
