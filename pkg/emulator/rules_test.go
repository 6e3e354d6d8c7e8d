package emulator

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// currentModels are the models the late-2026 service serves.
var currentModels = []string{
	"claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-fable-5-1", "claude-fable-5-2",
	"claude-opus-5", "claude-sonnet-5", "claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6",
	"claude-sonnet-4-6", "claude-haiku-4-5",
}

func withModel(id string) func(map[string]any) { return func(m map[string]any) { m["model"] = id } }

// ruleCase is one request against the Messages API and its expected answer.
type ruleCase struct {
	name string
	h    http.Header
	body string
	want wantErr // status 200: success
}

func checkRules(t *testing.T, opts Options, path string, cases []ruleCase) *Emulator {
	t.Helper()
	e, srv := start(t, opts)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, srv, path, tt.h, tt.body)
			if tt.want.status == http.StatusOK {
				require.Equal(t, http.StatusOK, resp.StatusCode, "%+v", decodeAPIErr(t, resp).Error)
				return
			}
			assertErr(t, resp, tt.want)
		})
	}
	return e
}

func TestModelRules(t *testing.T) {
	oat, api := oauthHeaders(fakeTok("oat", "models")), apiKeyHeaders(fakeTok("api", "models"))
	var cases []ruleCase
	for _, id := range currentModels {
		cases = append(cases, ruleCase{"serves " + id, oat, body(withModel(id)), wantErr{status: 200}})
	}
	for _, id := range []string{
		"claude-sonnet-4-5", "claude-opus-4-5", "claude-opus-4-1", "claude-opus-4", "claude-sonnet-4",
		"claude-3-5-sonnet-20241022", "claude-3-7-sonnet-latest", "claude-3-haiku-20240307", // retired
		"sonnet", "opus", "haiku", "fable", "claude-opus-5-5-latest", "gpt-5", // aliases and unknown ids
	} {
		nf := wantErr{status: 404, typ: "not_found_error", msg: "model: " + id}
		cases = append(cases,
			ruleCase{"oauth refuses " + id, oat, body(withModel(id)), nf},
			ruleCase{"api key refuses " + id, api, body(withModel(id)), nf})
	}
	checkRules(t, Options{}, "/v1/messages", cases)
}

func tooOld(sent, floor string) wantErr {
	return wantErr{status: 400, typ: "invalid_request_error", code: "claude_code_version_too_old",
		msg: "Claude Code " + sent + " does not support this model; version " + floor + " or newer is required"}
}

func TestVersionFloor(t *testing.T) {
	oat := oauthHeaders(fakeTok("oat", "version"))
	ua := func(v string) http.Header { return withHeader(oat, "User-Agent", v) }
	cli := func(v string) http.Header { return ua("claude-cli/" + v + " (external, cli)") }
	ok := wantErr{status: 200}
	cases := []ruleCase{
		{"at the floor", cli("2.1.280"), body(nil), ok},
		{"numeric, not lexical, comparison", cli("2.1.1000"), body(nil), ok},
		{"newer minor", cli("2.2.0"), body(nil), ok},
		{"below the floor", cli("2.1.279"), body(nil), tooOld("2.1.279", "2.1.280")},
		{"old peer version on fable-5-1", cli("2.1.75"), body(withModel("claude-fable-5-1")), tooOld("2.1.75", "2.1.251")},
		{"2.1.251 is enough for fable-5-1", cli("2.1.251"), body(withModel("claude-fable-5-1")), ok},
		{"2.1.251 is enough for opus-5", cli("2.1.251"), body(withModel("claude-opus-5")), ok},
		{"2.1.251 is enough for sonnet-5", cli("2.1.251"), body(withModel("claude-sonnet-5")), ok},
		{"2.1.251 is too old for opus-5-5", cli("2.1.251"), body(withModel("claude-opus-5-5")), tooOld("2.1.251", "2.1.280")},
		{"2.1.251 is too old for haiku-5-5", cli("2.1.251"), body(withModel("claude-haiku-5-5")), tooOld("2.1.251", "2.1.280")},
		{"2.1.251 is too old for fable-5-2", cli("2.1.251"), body(withModel("claude-fable-5-2")), tooOld("2.1.251", "2.1.280")},
		{"no floor for 4.x models", cli("1.0.0"), body(withModel("claude-opus-4-8")), ok},
		{"no floor for haiku-4-5", ua("curl/8.0"), body(withModel("claude-haiku-4-5")), ok},
		{"version without comment", ua("claude-cli/2.1.300"), body(nil), ok},
		{"missing user-agent", ua(""), body(nil), tooOld("unknown", "2.1.280")},
		{"foreign user-agent", ua("pi/1.0"), body(nil), tooOld("unknown", "2.1.280")},
		{"unparseable version", cli("banana"), body(nil), tooOld("banana", "2.1.280")},
		{"claude-code usage agent is not claude-cli", ua("claude-code/2.1.300"), body(nil), tooOld("unknown", "2.1.280")},
		{"api keys have no floor", withHeader(apiKeyHeaders(fakeTok("api", "v")), "User-Agent", "claude-cli/1.0.0"), body(nil), ok},
		{"version gate before identity", cli("2.1.0"), body(func(m map[string]any) { delete(m, "system") }), tooOld("2.1.0", "2.1.280")},
	}
	e := checkRules(t, Options{}, "/v1/messages", cases)
	refused := 0
	for _, c := range cases {
		if c.want.code != "" {
			refused++
		}
	}
	assert.Equal(t, int64(refused), e.Stats().VersionRefused)

	t.Run("count_tokens has the same gate", func(t *testing.T) {
		_, srv := start(t, Options{})
		assertErr(t, post(t, srv, "/v1/messages/count_tokens", cli("2.1.100"), body(nil)), tooOld("2.1.100", "2.1.280"))
	})
}

func TestVersionFloorScenarioOverride(t *testing.T) {
	sc, err := ParseScenario([]byte(`{"service": {"version_floors": {
		"claude-opus-5-5": "2.1.400", "claude-opus-4-8": "2.1.300", "claude-fable-5-1": ""}}}`))
	require.NoError(t, err)
	cli := func(v string) http.Header {
		return withHeader(oauthHeaders(fakeTok("oat", "floor")), "User-Agent", "claude-cli/"+v+" (external, cli)")
	}
	checkRules(t, Options{Scenario: sc}, "/v1/messages", []ruleCase{
		{"raised floor", cli("2.1.399"), body(withModel("claude-opus-5-5")), tooOld("2.1.399", "2.1.400")},
		{"raised floor met", cli("2.1.400"), body(withModel("claude-opus-5-5")), wantErr{status: 200}},
		{"new floor on a 4.x model", cli("2.1.299"), body(withModel("claude-opus-4-8")), tooOld("2.1.299", "2.1.300")},
		{"floor removed", cli("1.0.0"), body(withModel("claude-fable-5-1")), wantErr{status: 200}},
		{"other defaults kept", cli("2.1.279"), body(withModel("claude-sonnet-5-5")), tooOld("2.1.279", "2.1.280")},
	})
}

func TestIdentityGate(t *testing.T) {
	oat := oauthHeaders(fakeTok("oat", "identity"))
	billing := map[string]any{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.300.abc; cch=00000;"}
	identity := map[string]any{"type": "text", "text": IdentityText, "cache_control": map[string]any{"type": "ephemeral"}}
	prompt := map[string]any{"type": "text", "text": "Be brief."}
	system := func(model string, sys any) string {
		return body(func(m map[string]any) {
			m["model"] = model
			if sys == nil {
				delete(m, "system")
			} else {
				m["system"] = sys
			}
		})
	}
	fake := wantErr{status: 429, typ: "rate_limit_error", msg: "Error"}
	ok := wantErr{status: 200}
	cases := []ruleCase{
		{"identity block first", oat, system(testModel, []any{identity, prompt}), ok},
		{"identity string", oat, system(testModel, IdentityText), ok},
		{"billing header then identity", oat, system(testModel, []any{billing, identity, prompt}), ok},
		{"billing header without identity", oat, system(testModel, []any{billing, prompt}), fake},
		{"billing header as string", oat, system(testModel, "x-anthropic-billing-header: cc_version=1"), fake},
		{"identity after the prompt", oat, system(testModel, []any{prompt, identity}), fake},
		{"identity third", oat, system(testModel, []any{billing, prompt, identity}), fake},
		{"identity with extra text", oat, system(testModel, IdentityText+" Be brief."), fake},
		{"no system on sonnet", oat, system(testModel, nil), fake},
		{"no system on opus-5-5", oat, system("claude-opus-5-5", nil), fake},
		{"no system on fable-5-2", oat, system("claude-fable-5-2", nil), fake},
		{"no system on opus-4-6", oat, system("claude-opus-4-6", nil), fake},
		{"haiku-5-5 still answers", oat, system("claude-haiku-5-5", nil), ok},
		{"haiku-4-5 still answers", oat, system("claude-haiku-4-5", []any{prompt}), ok},
		{"api keys need no identity", apiKeyHeaders(fakeTok("api", "identity")), system(testModel, nil), ok},
	}
	e := checkRules(t, Options{}, "/v1/messages", cases)
	assert.Equal(t, int64(9), e.Stats().IdentityRefused)

	t.Run("the fake 429 carries no limit headers", func(t *testing.T) {
		_, srv := start(t, Options{})
		resp := post(t, srv, "/v1/messages", oat, system(testModel, nil))
		assertErr(t, resp, fake)
		assert.Empty(t, limitHeaders(resp.Header))
	})
}

func TestCacheControlLimit(t *testing.T) {
	cc := map[string]any{"type": "ephemeral"}
	text := func(cached bool) map[string]any {
		b := map[string]any{"type": "text", "text": "x"}
		if cached {
			b["cache_control"] = cc
		}
		return b
	}
	shape := func(system, tool, msgs int, extra func(map[string]any)) string {
		return body(func(m map[string]any) {
			sys := []any{map[string]any{"type": "text", "text": IdentityText}}
			for range system {
				sys = append(sys, text(true))
			}
			m["system"] = sys
			ts := tools("Read")
			for range tool {
				ts = append(ts, map[string]any{"name": "Bash", "cache_control": cc})
			}
			m["tools"] = ts
			content := []any{text(false)}
			for range msgs {
				content = append(content, text(true))
			}
			m["messages"] = []any{map[string]any{"role": "user", "content": content}}
			if extra != nil {
				extra(m)
			}
		})
	}
	tooMany := func(n string) wantErr {
		return wantErr{status: 400, typ: "invalid_request_error", msg: "A maximum of 4 blocks with cache_control may be provided. Found " + n + "."}
	}
	oat, api := oauthHeaders(fakeTok("oat", "cache")), apiKeyHeaders(fakeTok("api", "cache"))
	nested := func(m map[string]any) {
		m["messages"] = append(m["messages"].([]any),
			map[string]any{"role": "assistant", "content": []any{map[string]any{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": map[string]any{}}}},
			map[string]any{"role": "user", "content": []any{map[string]any{"type": "tool_result", "tool_use_id": "toolu_1",
				"content": []any{text(true)}}}})
	}
	checkRules(t, Options{}, "/v1/messages", []ruleCase{
		{"four across system, tools and messages", oat, shape(2, 1, 1, nil), wantErr{status: 200}},
		{"five", oat, shape(2, 1, 2, nil), tooMany("5")},
		{"all in messages", oat, shape(0, 0, 7, nil), tooMany("7")},
		{"tool_result content counts", oat, shape(2, 1, 1, nested), tooMany("5")},
		{"null cache_control does not count", oat, shape(2, 1, 1, func(m map[string]any) {
			m["tools"] = append(m["tools"].([]any), map[string]any{"name": "Grep", "cache_control": nil})
		}), wantErr{status: 200}},
		{"api keys too", api, shape(0, 5, 0, nil), tooMany("5")},
	})
}

func TestToolNameSyntax(t *testing.T) {
	pattern := "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'"
	bad := func(i string) wantErr {
		return wantErr{status: 400, typ: "invalid_request_error", msg: "tools." + i + ".custom.name: " + pattern}
	}
	withTools := func(ts ...any) string { return body(func(m map[string]any) { m["tools"] = ts }) }
	long := "mcp__s__" + strings.Repeat("x", 120)
	api := apiKeyHeaders(fakeTok("api", "names"))
	checkRules(t, Options{}, "/v1/messages", []ruleCase{
		{"128 characters", api, withTools(tools(long)...), wantErr{status: 200}},
		{"129 characters", api, withTools(tools(long + "y")...), bad("0")},
		{"dot in the second tool", api, withTools(tools("Read", "get.weather")...), bad("1")},
		{"space", api, withTools(tools("get weather")...), bad("0")},
		{"empty name", api, withTools(tools("")...), bad("0")},
		{"explicit custom type", api, withTools(map[string]any{"type": "custom", "name": "a/b"}), bad("0")},
		{"server tools are exempt", api, withTools(map[string]any{"type": "web_search_20250305", "name": "web search"}), wantErr{status: 200}},
		{"oauth too", oauthHeaders(fakeTok("oat", "names")), withTools(tools("Read", "mcp__x__a:b")...), bad("1")},
	})
}

func TestThirdPartyClassifier(t *testing.T) {
	thirdParty := wantErr{status: 400, typ: "invalid_request_error",
		msg: "Third-party apps now draw from your extra usage, not your plan limits. Add more at claude.ai/settings/usage and keep going."}
	withTools := func(names ...string) string { return body(func(m map[string]any) { m["tools"] = tools(names...) }) }
	oat := oauthHeaders(fakeTok("oat", "classifier"))
	ok := wantErr{status: 200}
	cases := []ruleCase{
		{"every Claude Code tool", oat, withTools("Read", "Write", "Edit", "Bash", "Grep", "Glob", "AskUserQuestion",
			"EnterPlanMode", "ExitPlanMode", "KillShell", "NotebookEdit", "Skill", "Task", "TaskOutput", "TodoWrite",
			"WebFetch", "WebSearch", "Agent", "TaskList", "CronCreate", "CronList"), ok},
		{"mcp double underscore", oat, withTools("mcp__piauth__get_weather", "mcp__my_server__read_file"), ok},
		{"no tools", oat, body(func(m map[string]any) { delete(m, "tools") }), ok},
		{"mcp single underscore", oat, withTools("Read", "mcp_read"), thirdParty},
		{"lowercase todowrite", oat, withTools("todowrite"), thirdParty},
		{"lowercase read", oat, withTools("read"), thirdParty},
		{"upper case", oat, withTools("TODOWRITE"), thirdParty},
		{"foreign name", oat, withTools("get_weather"), thirdParty},
		{"mcp without tool part", oat, withTools("mcp__piauth"), thirdParty},
		{"api keys are not classified", apiKeyHeaders(fakeTok("api", "classifier")), withTools("get_weather", "mcp_read"), ok},
	}
	e := checkRules(t, Options{}, "/v1/messages", cases)
	assert.Equal(t, int64(6), e.Stats().ThirdPartyRefused)

	sc, err := ParseScenario([]byte(`{"service": {"classifier": {"tools": ["Read", "get_weather"], "tool_prefixes": []}}}`))
	require.NoError(t, err)
	checkRules(t, Options{Scenario: sc}, "/v1/messages", []ruleCase{
		{"scenario tool list", oat, withTools("get_weather"), ok},
		{"scenario drops Bash", oat, withTools("Bash"), thirdParty},
		{"refused patterns kept", oat, withTools("mcp_read"), thirdParty},
		{"prefixes dropped", oat, withTools("CronCreate"), thirdParty},
	})
	sc, err = ParseScenario([]byte(`{"service": {"classifier": {"disabled": true}}}`))
	require.NoError(t, err)
	checkRules(t, Options{Scenario: sc}, "/v1/messages", []ruleCase{{"classifier off", oat, withTools("mcp_read"), ok}})
}

func TestImageSizeLimit(t *testing.T) {
	image := func(n int) map[string]any {
		return map[string]any{"type": "image", "source": map[string]any{"type": "base64", "media_type": "image/png",
			"data": strings.Repeat("A", n)}}
	}
	withContent := func(blocks ...any) string {
		return body(func(m map[string]any) {
			m["messages"] = []any{map[string]any{"role": "user", "content": append(blocks, map[string]any{"type": "text", "text": "what is this?"})}}
		})
	}
	tooLarge := func(at string, n int) wantErr {
		return wantErr{status: 400, typ: "invalid_request_error",
			msg: at + ": image exceeds 5 MB maximum: " + strconv.Itoa(n) + " bytes > 5242880 bytes"}
	}
	api := apiKeyHeaders(fakeTok("api", "images"))
	checkRules(t, Options{}, "/v1/messages", []ruleCase{
		{"5 MB of base64", api, withContent(image(5 << 20)), wantErr{status: 200}},
		{"one byte more", api, withContent(image(5<<20 + 1)), tooLarge("messages.0.content.0.image.source.base64", 5<<20+1)},
		{"the second block", api, withContent(image(10), image(6<<20)), tooLarge("messages.0.content.1.image.source.base64", 6<<20)},
		{"oauth too", oauthHeaders(fakeTok("oat", "images")), withContent(image(6 << 20)), tooLarge("messages.0.content.0.image.source.base64", 6<<20)},
	})
}
