package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
)

func TestKeyAddStdin(t *testing.T) {
	k1, k2, api := testKey("oat01", 1), testKey("oat01", 2), testKey("api03", 3)
	tests := []struct {
		name     string
		existing []string // pool before
		stdin    string
		args     []string
		code     int
		wantOut  []string
		wantErr  string
		wantKeys []string // pool after
		label    string   // label of every added key
	}{
		{
			name: "two keys", stdin: k1 + "\n" + api + "\n", code: 0,
			wantOut:  []string{"added key 1/2 (" + keystore.Mask(k1) + ")", "added key 2/2 (" + keystore.Mask(api) + ")"},
			wantKeys: []string{k1, api},
		},
		{
			name: "blank lines and spaces ignored", stdin: "\n  " + k1 + "  \r\n\n\t" + k2 + "\n\n",
			wantOut: []string{"added key 1/2", "added key 2/2"}, wantKeys: []string{k1, k2},
		},
		{
			name: "no trailing newline", stdin: k1, wantOut: []string{"added key 1/1"}, wantKeys: []string{k1},
		},
		{
			name: "label", stdin: k1 + "\n", args: []string{"--label", "work"}, label: "work",
			wantOut: []string{"added key 1/1"}, wantKeys: []string{k1},
		},
		{
			name: "already pooled changes nothing", existing: []string{k1, k2}, stdin: k2 + "\n",
			wantOut:  []string{"key 2/2 (" + keystore.Mask(k2) + ") is already in the pool"},
			wantKeys: []string{k1, k2},
		},
		{
			name: "duplicate within input", stdin: k1 + "\n" + k1 + "\n",
			wantOut:  []string{"added key 1/1", "key 1/1 (" + keystore.Mask(k1) + ") is already in the pool"},
			wantKeys: []string{k1},
		},
		{
			name: "appends to an existing pool", existing: []string{k1}, stdin: k2 + "\n",
			wantOut: []string{"added key 2/2 (" + keystore.Mask(k2) + ")"}, wantKeys: []string{k1, k2},
		},
		{
			name: "non-key line names its number", existing: []string{k1}, stdin: k2 + "\n\nhunter2-" + k2 + "\n",
			code: 2, wantErr: "stdin line 3 is not an Anthropic key", wantKeys: []string{k1},
		},
		{
			name: "key with inner space rejected", stdin: k1 + " " + k2 + "\n",
			code: 2, wantErr: "stdin line 1 is not an Anthropic key",
		},
		{
			name: "refresh token refused", existing: []string{k1}, stdin: k2 + "\n" + strings.Replace(k2, "-oat01-", "-ort01-", 1) + "\n",
			code: 2, wantErr: "stdin line 2 is a refresh token, not a key; pool the account with its refresh token by 'piauth login --add-to-pool'; nothing added", wantKeys: []string{k1},
		},
		{
			name: "control characters refused", stdin: k1[:20] + "\x1b[2K" + k1[20:] + "\n",
			code: 2, wantErr: "stdin line 1 is not an Anthropic key",
		},
		{name: "empty stdin", stdin: "\n \n", code: 2, wantErr: "no keys on stdin"},
		{
			name: "secret on argv refused", stdin: k1, args: []string{k2},
			code: 2, wantErr: "secrets on the command line leak",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.existing != nil {
				writePoolFile(t, dir, tt.existing, nil)
			}
			r := piauthRun{dir: dir, stdin: tt.stdin}.run(t, append([]string{"key", "add", "--stdin"}, tt.args...)...)
			assert.Equal(t, tt.code, r.code, "stderr: %s", r.err)
			for _, w := range tt.wantOut {
				assert.Contains(t, r.out, w)
			}
			assert.Contains(t, r.err, tt.wantErr)
			assertNoSecret(t, []string{k1, k2, api}, r.out, r.err)

			p := readPool(t, dir)
			assert.Equal(t, tt.wantKeys, p.Keys)
			if tt.label != "" {
				for i := range p.Keys {
					assert.Equal(t, tt.label, p.State(i).Label)
				}
			}
			if tt.existing == nil && tt.code != 0 {
				assert.NoFileExists(t, filepath.Join(dir, keystore.PoolFileName), "nothing may be written")
			}
		})
	}
}

func TestKeyAddFromAuth(t *testing.T) {
	access, refresh := testKey("oat01", 10), testKey("ort01", 11)
	apiKey := testKey("api03", 12)
	tests := []struct {
		name        string
		auth        string // auth.json content; "" = no file
		code        int
		wantOut     string
		wantErr     string
		wantKey     string
		wantRefresh string
		wantExpires int64
	}{
		{
			name:    "oauth credentials keep refresh token and expiry",
			auth:    `{"anthropic":{"type":"oauth","access":"` + access + `","refresh":"` + refresh + `","expires":1767225600000},"openai":{"type":"api_key","key":"x"}}`,
			wantOut: "added key 1/1 (" + keystore.Mask(access) + ")", wantKey: access, wantRefresh: refresh, wantExpires: 1767225600000,
		},
		{
			name:    "api key entry",
			auth:    `{"anthropic":{"type":"api_key","key":"` + apiKey + `"}}`,
			wantOut: "added key 1/1 (" + keystore.Mask(apiKey) + ")", wantKey: apiKey,
		},
		{name: "no auth.json", code: 3, wantErr: "not logged in"},
		{name: "no anthropic entry", auth: `{"openai":{"type":"api_key","key":"x"}}`, code: 3, wantErr: "not logged in"},
		{name: "malformed auth.json", auth: "{\n  \"anthropic\": {\"type\": \"oauth\",,}\n}", code: 1, wantErr: keystore.AuthFileName + ":2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			authPath := filepath.Join(dir, keystore.AuthFileName)
			if tt.auth != "" {
				require.NoError(t, os.WriteFile(authPath, []byte(tt.auth), 0o600))
			}
			r := piauthRun{dir: dir}.run(t, "key", "add", "--label", "me")
			assert.Equal(t, tt.code, r.code, "stderr: %s", r.err)
			assert.Contains(t, r.out, tt.wantOut)
			assert.Contains(t, r.err, tt.wantErr)
			assertNoSecret(t, []string{access, refresh, apiKey}, r.out, r.err)
			if tt.auth != "" {
				got, err := os.ReadFile(authPath)
				require.NoError(t, err)
				assert.Equal(t, tt.auth, string(got), "auth.json must not change")
			}
			p := readPool(t, dir)
			if tt.wantKey == "" {
				assert.Empty(t, p.Keys)
				return
			}
			require.Equal(t, []string{tt.wantKey}, p.Keys)
			st := p.State(0)
			assert.Equal(t, "me", st.Label)
			assert.Equal(t, tt.wantRefresh, st.Refresh)
			assert.Equal(t, tt.wantExpires, st.Expires)
		})
	}

	t.Run("again says already pooled", func(t *testing.T) {
		dir := t.TempDir()
		auth := `{"anthropic":{"type":"oauth","access":"` + access + `","refresh":"` + refresh + `","expires":1}}`
		require.NoError(t, os.WriteFile(filepath.Join(dir, keystore.AuthFileName), []byte(auth), 0o600))
		r := piauthRun{dir: dir}.run(t, "key", "add")
		require.Equal(t, 0, r.code, r.err)
		before, err := os.ReadFile(filepath.Join(dir, keystore.PoolFileName))
		require.NoError(t, err)
		r = piauthRun{dir: dir}.run(t, "key", "add")
		require.Equal(t, 0, r.code, r.err)
		assert.Equal(t, "key 1/1 ("+keystore.Mask(access)+") is already in the pool\n", r.out)
		after, err := os.ReadFile(filepath.Join(dir, keystore.PoolFileName))
		require.NoError(t, err)
		assert.Equal(t, before, after)
	})
}

// Every key command refuses a malformed pool file with path:line:col, exit 1,
// and leaves it byte-identical.
func TestKeyCommandsLeaveMalformedPoolUntouched(t *testing.T) {
	k := testKey("oat01", 1)
	malformed := "{\n  \"keys\": [\n    \"" + k + "\",\n    42\n  ]\n}\n"
	cmds := []struct {
		name  string
		args  []string
		stdin string
	}{
		{"add stdin", []string{"key", "add", "--stdin"}, testKey("oat01", 2)},
		{"list", []string{"key", "list"}, ""},
		{"list json", []string{"key", "list", "--json"}, ""},
		{"use", []string{"key", "use", "1"}, ""},
		{"remove", []string{"key", "remove", "1"}, ""},
		{"reset", []string{"key", "reset"}, ""},
	}
	for _, tc := range cmds {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, keystore.PoolFileName)
			require.NoError(t, os.WriteFile(path, []byte(malformed), 0o600))
			r := piauthRun{dir: dir, stdin: tc.stdin}.run(t, tc.args...)
			assert.Equal(t, 1, r.code, "stdout: %s stderr: %s", r.out, r.err)
			assert.True(t, strings.HasPrefix(r.err, "piauth: "+path+":4:5: "), "stderr: %q", r.err)
			assertNoSecret(t, []string{k}, r.out, r.err)
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, malformed, string(got))
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, 1, "no other file may appear")
		})
	}
}
