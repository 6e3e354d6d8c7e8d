package pkce

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePaste(t *testing.T) {
	const want = "st-1"
	tests := []struct {
		name      string
		input     string
		wantState string
		wantCode  string
		wantErr   error
		errText   string
	}{
		{name: "code#state", input: "abc123#st-1", wantState: want, wantCode: "abc123"},
		{name: "code#state with whitespace", input: "  \tabc123#st-1\r\n", wantState: want, wantCode: "abc123"},
		{name: "localhost callback URL", input: "http://localhost:53692/callback?code=abc123&state=st-1", wantState: want, wantCode: "abc123"},
		{name: "manual callback URL any host", input: "https://platform.claude.com/oauth/code/callback?code=abc123&state=st-1", wantState: want, wantCode: "abc123"},
		{name: "URL with fragment", input: "https://example.test/cb?state=st-1&code=abc123#frag", wantState: want, wantCode: "abc123"},
		{name: "URL without scheme", input: "localhost:53692/callback?code=abc123&state=st-1", wantState: want, wantCode: "abc123"},
		{name: "query string", input: "code=abc123&state=st-1", wantState: want, wantCode: "abc123"},
		{name: "query string with ?", input: "?code=abc123&state=st-1", wantState: want, wantCode: "abc123"},
		{name: "escaped query value", input: "code=ab%2Dc&state=st%2D1", wantState: want, wantCode: "ab-c"},
		{name: "bare code without expected state", input: "abc123", wantCode: "abc123"},
		{name: "code#state without expected state", input: "abc123#whatever", wantCode: "abc123"},

		{name: "empty", input: "   \n", wantState: want, wantErr: ErrBadPaste, errText: "nothing was pasted"},
		{name: "bare code but state expected", input: "abc123", wantState: want, wantErr: ErrBadPaste, errText: "state part is missing"},
		{name: "code# empty state", input: "abc123#", wantState: want, wantErr: ErrBadPaste, errText: "state part is missing"},
		{name: "#state without code", input: "#st-1", wantState: want, wantErr: ErrBadPaste, errText: "code part"},
		{name: "URL without state", input: "http://localhost:53692/callback?code=abc123", wantState: want, wantErr: ErrBadPaste, errText: "state part is missing"},
		{name: "URL without code", input: "http://localhost:53692/callback?state=st-1", wantState: want, wantErr: ErrBadPaste, errText: "no code parameter"},
		{name: "wrong state code#state", input: "abc123#st-2", wantState: want, wantErr: ErrStateMismatch},
		{name: "wrong state URL", input: "http://localhost:53692/callback?code=abc123&state=nope", wantState: want, wantErr: ErrStateMismatch},
		{name: "wrong state query", input: "code=abc123&state=st-11", wantState: want, wantErr: ErrStateMismatch},
		{name: "provider error URL", input: "http://localhost:53692/callback?error=access_denied&state=st-1", wantState: want, wantErr: ErrAccessDenied},
		{name: "garbage sentence", input: "hello there world", wantState: want, wantErr: ErrBadPaste, errText: "characters a code never has"},
		{name: "garbage control chars", input: "ab\x00c#st-1", wantState: want, wantErr: ErrBadPaste},
		{name: "bad URL", input: "http://%zz/callback?code=a", wantState: want, wantErr: ErrBadPaste, errText: "not a valid URL"},
		{name: "bad query", input: "code=%zz&state=st-1", wantState: want, wantErr: ErrBadPaste, errText: "malformed"},
		{name: "too long", input: strings.Repeat("a", 9000), wantErr: ErrBadPaste, errText: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := ParsePaste(tt.input, tt.wantState)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Contains(t, err.Error(), tt.errText)
				assert.Empty(t, code)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantCode, code)
		})
	}
}

func FuzzParsePaste(f *testing.F) {
	f.Add("abc#st", "st")
	f.Add("http://localhost:53692/callback?code=a&state=st", "st")
	f.Add("?code=a&state=b", "")
	f.Fuzz(func(t *testing.T, input, state string) {
		code, err := ParsePaste(input, state)
		if err != nil {
			assert.Empty(t, code)
			return
		}
		assert.True(t, validCode(code), "accepted invalid code %q", code)
	})
}
