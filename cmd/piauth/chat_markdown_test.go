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

// On a terminal the answer is rendered (mdStyle, coloured, or plain with
// NO_COLOR), the same streamed or not; piped or with --raw it is
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

	assertSplitsRenderAlike(t, markdownAnswer, false)
}

// However an answer of every construct is cut into deltas, it renders the
// same, coloured or not.
func TestMarkdownWriterSplitsConstructs(t *testing.T) {
	var all []string
	for _, c := range mdConstructs {
		all = append(all, c.in)
	}
	for _, color := range []bool{false, true} {
		assertSplitsRenderAlike(t, strings.Join(all, "\n\n"), color)
	}
}

// assertSplitsRenderAlike checks that answer written in random pieces
// renders as it does written at once.
func assertSplitsRenderAlike(t *testing.T, answer string, color bool) {
	t.Helper()
	whole := &renderRecorder{}
	md, err := newMarkdownWriter(whole, 60, color)
	require.NoError(t, err)
	_, err = md.Write([]byte(answer))
	require.NoError(t, err)
	require.NoError(t, md.Flush())
	want := strings.Join(whole.writes, "")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		got := &renderRecorder{}
		md, err := newMarkdownWriter(got, 60, color)
		require.NoError(t, err)
		for rest := answer; rest != ""; {
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

// mdConstructs are the markdown constructs the renderer knows, one block
// each (the unclosed fence last, as it takes the rest of a stream).
var mdConstructs = []struct{ name, in string }{
	{"paragraph", "one two three four five six seven eight nine ten eleven twelve\nthe next line is kept\\\nafter a hard break"},
	{"inline", "a **strong** *emphasis* ***both*** ~~struck~~ `code span` and **strong with *emphasis* inside**."},
	{"escapes", "\\*not emphasis\\* &amp; &#35; \\`not code\\` a_b_c"},
	{"links", "[text](https://example.com/a) <https://auto.example> www.example.org " +
		"[https://same.example](https://same.example) ![a picture](pic.png)"},
	{"headings", "# One\n\n### Three *em*\n\nSetext\n======"},
	{"code fenced", "```go\nfunc f() {\n\n\treturn \"**not bold**\"\n}\n```"},
	{"code indented", "    indented\n    code"},
	{"quote", "> a quote long enough to be wrapped at the width of forty columns\n>\n> > nested, with `code`"},
	{"bullets", "- one\n- two\n  - nested\n    - deeper item, long enough to wrap at forty columns\n- three"},
	{"ordered", "8. eight\n9. nine\n   - mixed in\n10. ten"},
	{"loose list", "1) a\n\n   second paragraph of a\n\n2) b"},
	{"tasks", "- [x] done\n- [ ] to do"},
	{"rule", "---"},
	{"table", "| left | centre | right |\n|:-----|:------:|------:|\n| a | **b** | 1 |\n| a longer cell | c | 22 |\n| short |"},
	{"html", "<div>\nraw <b>html</b>\n</div>"},
	{"paragraph then list", "Steps:\n- first\n- second"},
	{"reference only", "[x]: https://example.com"},
	{"code unclosed", "```\nx"},
}

// Each construct goldmark parses is rendered, coloured (escape sequences
// shown as \e) and plain, at width 40: testdata/chat/md/NAME.golden.
func TestMDStyleGolden(t *testing.T) {
	for _, tt := range mdConstructs {
		t.Run(tt.name, func(t *testing.T) {
			colour := string(newMDStyle(40, true).render([]byte(tt.in)))
			plain := string(newMDStyle(40, false).render([]byte(tt.in)))
			assert.NotContains(t, plain, "\x1b", "no escape sequence without colour")
			for _, l := range strings.Split(plain+colour, "\n") {
				if !strings.HasPrefix(strings.TrimLeft(l, " "), "    ") && !strings.Contains(tt.name, "table") {
					assert.LessOrEqual(t, visibleLen(l), 40, "wrapped: %q", l)
				}
			}
			got := "-- plain\n" + plain + "-- colour\n" + strings.ReplaceAll(colour, "\x1b", `\e`)
			golden(t, filepath.Join("md", strings.ReplaceAll(tt.name, " ", "_")+".golden"), got)
		})
	}
	assert.Equal(t, 3, visibleLen("\x1b[1mabc\x1b[m"))
	assert.Equal(t, 2, visibleLen("é•"))
}
