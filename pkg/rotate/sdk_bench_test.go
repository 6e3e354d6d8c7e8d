package rotate_test

// The official SDK is a test-only dependency: this file exists so that
// scripts/bench.sh can measure what the SDK's default retry policy costs on a
// rate-limited key (sdk_rotation_ratio). Run it with
//
//	go test -run '^$' -bench BenchmarkSDKRetryAfter -benchtime 1x -count 3 ./pkg/rotate/

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/stream"
)

// BenchmarkSDKRetryAfter times one Messages.New call of the official Go SDK,
// default retry policy, against an emulator that answers the key's first
// request with 429 and `retry-after: 2` and its second with 200. The SDK
// honours retry-after and sleeps; piauth rotates to the next key instead.
func BenchmarkSDKRetryAfter(b *testing.B) {
	// An OAuth token, sent the way a Claude Pro/Max client must send it
	// (bearer, the oauth beta, the Claude Code identity first). The SDK's
	// WithAPIKey also sends "authorization: Bearer", which the emulator, like
	// the real service, refuses for an API key.
	const tok = "sk-ant-oat01-sdkretry-bench-xxxxxxxx"
	sc := &emulator.Scenario{
		Reply: emulator.Reply{Text: "hi", Deltas: 1},
		Tokens: []emulator.TokenRule{{
			Match:    tok,
			Outcomes: []emulator.Outcome{{Status: 429, RetryAfter: 2}, {Status: 200}},
		}},
	}
	emu := emulator.New(emulator.Options{Scenario: sc})
	srv := httptest.NewServer(emu)
	b.Cleanup(srv.Close)

	// The 2026 service also wants a current model and Claude Code's
	// user-agent (its version floor) on OAuth requests.
	client := anthropic.NewClient(option.WithBaseURL(srv.URL), option.WithAuthToken(tok),
		option.WithHeader("anthropic-beta", emulator.OAuthBeta),
		option.WithHeader("User-Agent", stream.Builtin().UserAgent()))
	params := anthropic.MessageNewParams{
		Model:     anthropic.Model("claude-sonnet-5-5"),
		MaxTokens: 1024,
		System:    []anthropic.TextBlockParam{{Text: emulator.IdentityText}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
	}
	for b.Loop() {
		b.StopTimer()
		emu.Reset() // rewind the 429-then-200 sequence
		b.StartTimer()
		msg, err := client.Messages.New(context.Background(), params)
		if err != nil {
			b.Fatal(err)
		}
		if len(msg.Content) == 0 {
			b.Fatal("empty reply")
		}
	}
	b.StopTimer()
	if got := emu.Stats().Requests["/v1/messages"]; got < 2 {
		b.Fatalf("emulator counted %d requests, want the 429 and the retry", got)
	}
}
