package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// markdownAnswer exercises the blocks the renderer splits on: a heading, a
// paragraph with inline styles, a list, a fenced block holding a blank line
// and a fence-like line, a loose ordered list, a quote and a table.
const markdownAnswer = "# Plan\n\nSome *emphasis*, **strong** and `code`.\nA second line.\n\n" +
	"- one\n- two\n  - nested\n\n" +
	"```go\nfunc main() {\n\n\tprintln(\"~~~ not a fence\")\n}\n```\n" +
	"1. first\n\n2. second\n\n" +
	"> quoted\n\n" +
	"| a | b |\n|---|---|\n| 1 | 2 |\n\nThe end."

// golden compares got with testdata/chat/NAME (rewritten with -update-chat).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "chat", name)
	if *updateChatGolden {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update-chat to create it")
	assert.Equal(t, string(want), got)
}

// On a terminal the answer is rendered (glamour's dark style with colour,
// notty with NO_COLOR), the same streamed or not; piped or with --raw it is
// the text as it came.
func TestChatMarkdownGolden(t *testing.T) {
	scenario := `{"reply": {"text": ` + mustJSON(t, markdownAnswer) + `, "deltas": 97}}`
	tests := []struct {
		name   string
		tty    bool
		env    map[string]string
		args   []string
		golden string
	}{
		{"tty colour", true, nil, []string{"hi"}, "markdown_tty.golden"},
		{"tty colour streamed", true, nil, []string{"--stream", "hi"}, "markdown_tty.golden"},
		{"NO_COLOR", true, map[string]string{"NO_COLOR": "1"}, []string{"--stream", "hi"}, "markdown_notty.golden"},
		{"--raw", true, nil, []string{"--stream", "--raw", "hi"}, ""},
		{"piped", false, nil, []string{"--stream", "hi"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, scenario)
			h.login(chatToken("md"))
			env := map[string]string{"PIAUTH_BASE_URL": h.srv.URL, "PIAUTH_TOKEN_URL": h.srv.URL + "/v1/oauth/token"}
			for k, v := range tt.env {
				env[k] = v
			}
			f, bufs := newTestFactory("", env)
			f.IO.OutTTY = tt.tty
			code := run(context.Background(), f, append([]string{"piauth", "--dir", h.dir, "--keyring", "off", "chat"}, tt.args...))
			require.Equal(t, 0, code, bufs.Err.String())
			if tt.golden == "" {
				assert.Equal(t, markdownAnswer+"\n", bufs.Out.String())
				return
			}
			golden(t, tt.golden, bufs.Out.String())
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// renderRecorder records each write of the markdown writer: one per block.
type renderRecorder struct{ writes []string }

func (r *renderRecorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

// However the text is cut into deltas, the output is the same, each block
// is printed as soon as it is complete, and a fenced block is never split.
func TestMarkdownWriterBlocks(t *testing.T) {
	whole := &renderRecorder{}
	md, err := newMarkdownWriter(whole, 60, false)
	require.NoError(t, err)
	_, err = md.Write([]byte(markdownAnswer))
	require.NoError(t, err)
	require.NoError(t, md.drain())
	require.Len(t, whole.writes, 8, "blocks before the last, written as they completed: %q", whole.writes)
	require.NoError(t, md.Flush())
	require.Len(t, whole.writes, 9)
	assert.Contains(t, whole.writes[0], "# Plan")
	assert.Contains(t, whole.writes[3], "func main() {")
	assert.Contains(t, whole.writes[3], "not a fence", "the blank line inside the fence did not split it")
	want := strings.Join(whole.writes, "")

	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		got := &renderRecorder{}
		md, err := newMarkdownWriter(got, 60, false)
		require.NoError(t, err)
		for rest := markdownAnswer; rest != ""; {
			n := min(len(rest), 1+rng.IntN(7))
			_, err := md.Write([]byte(rest[:n]))
			require.NoError(t, err)
			rest = rest[n:]
		}
		require.NoError(t, md.Flush())
		require.Equal(t, want, strings.Join(got.writes, ""))
	}
}

func TestMarkdownLineKinds(t *testing.T) {
	for _, tt := range []struct {
		line    string
		fence   string
		heading bool
	}{
		{"```", "```", false},
		{"```go", "```", false},
		{"   ~~~~ text", "~~~~", false},
		{"    ```", "", false}, // indented code
		{"``` a`b", "", false}, // a backtick in the info string: not a fence
		{"# Title", "", true},
		{"###### six", "", true},
		{"####### seven", "", false},
		{"#hashtag", "", false},
		{"#", "", true},
	} {
		assert.Equal(t, tt.fence, string(openingFence([]byte(tt.line))), tt.line)
		assert.Equal(t, tt.heading, isHeading([]byte(tt.line)), tt.line)
	}
	assert.True(t, closesFence([]byte("````"), []byte("```")))
	assert.False(t, closesFence([]byte("``"), []byte("```")))
	assert.False(t, closesFence([]byte("``` go"), []byte("```")))
	assert.False(t, closesFence([]byte("~~~"), []byte("```")))
}

func TestMDStyle(t *testing.T) {
	color, plain := mdStyle{width: 30, color: true}, mdStyle{width: 30}
	tests := []struct {
		name  string
		style mdStyle
		in    string
		want  string
	}{
		{"wrapped paragraph, line breaks kept", plain, "one two three four five six seven eight\nnine",
			"  one two three four five six\n  seven eight\n  nine\n"},
		{"inline spans", color, "a **b** *c* `d` [e](http://x)",
			"  a \x1b[1mb\x1b[m \x1b[3mc\x1b[m \x1b[38;5;203md\x1b[m \x1b[1me\x1b[m \x1b[2mhttp://x\x1b[m\n"},
		{"markup kept without colour", plain, "a **b** `d`", "  a **b** `d`\n"},
		{"lists", plain, "- one\n  - nested item that is long enough to wrap\n3. three",
			"  • one\n    • nested item that is\n      long enough to wrap\n  3. three\n"},
		{"ordered list numbers with colour", color, "3. three", "  3. three\n"},
		{"quote", plain, "> quoted", "  │ quoted\n"},
		{"heading", color, "## Title", "  \x1b[1;38;5;39m## Title\x1b[m\n"},
		{"rule", plain, "---", "  " + strings.Repeat("─", 26) + "\n"},
		{"table as written", plain, "| a | b |\n|---|---|", "  | a | b |\n  |---|---|\n"},
		{"code block", color, "```go\nx := 1\n\n\ty\n```", "    \x1b[38;5;250mx := 1\x1b[m\n\n    \x1b[38;5;250m    y\x1b[m\n"},
		{"unclosed code block", plain, "```\nx", "    x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, string(tt.style.render([]byte(tt.in))))
		})
	}
	assert.Equal(t, 3, visibleLen("\x1b[1mabc\x1b[m"))
	assert.Equal(t, 2, visibleLen("é•"))
}
