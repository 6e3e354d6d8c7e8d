package keystore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTok builds a token of the given kind at runtime so no literal looks real.
func fakeTok(kind string, n int) string {
	return "sk-ant-" + kind + "-" + strings.Repeat("x", 2) + fmt.Sprintf("%08d", n) + "wxyz"
}

func TestMask(t *testing.T) {
	tests := []struct {
		name, tok, want string
	}{
		{"oauth", "sk-ant-oat01-AbCdEfGhIjKlwxyz", "sk-ant-oat01-Ab…wxyz"},
		{"api", "sk-ant-api03-ZzYyXxWwVv1234", "sk-ant-api03-Zz…1234"},
		{"refresh", "sk-ant-ort01-QqRrSsTtUu9876", "sk-ant-ort01-Qq…9876"},
		{"no prefix", "abcdefghijklmnopqrstuvwxyz", "ab…wxyz"},
		{"short", "sk-ant-oat01-ab", "****"},
		{"empty", "", "****"},
		{"prefix with tiny rest", "sk-ant-oat01-abcdef", "sk-ant-oat01-****"},
		{"seed style", "sk-ant-oat-TOKEN_1abcdefgh", "sk-ant-oat-TO…efgh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Mask(tt.tok)
			assert.Equal(t, tt.want, got)
			if len(tt.tok) >= 16 {
				assert.NotContains(t, got, tt.tok[len(tt.tok)-10:], "mask must hide the middle")
			}
		})
	}
}

func TestFingerprintAndKind(t *testing.T) {
	fp := Fingerprint("hello")
	assert.Equal(t, "2cf24dba5fb0", fp) // sha256("hello") prefix
	assert.Len(t, Fingerprint(fakeTok("oat01", 1)), 12)
	assert.NotEqual(t, Fingerprint(fakeTok("oat01", 1)), Fingerprint(fakeTok("oat01", 2)))

	assert.Equal(t, KindAPI, KindOf("sk-ant-api03-abc"))
	assert.Equal(t, KindOAuth, KindOf("sk-ant-oat01-abc"))
	assert.Equal(t, KindOAuth, KindOf("anything"))
}

func TestResolveDir(t *testing.T) {
	home, tmp := "/home/someone", t.TempDir()
	tests := []struct {
		name, flag, env, home, want string
		wantErr                     bool
	}{
		{"flag wins", tmp, "/elsewhere", home, tmp, false},
		{"env", "", tmp, home, tmp, false},
		{"env tilde", "", "~/agentdir", home, filepath.Join(home, "agentdir"), false},
		{"flag tilde", "~/x/y", "", home, filepath.Join(home, "x/y"), false},
		{"default", "", "", home, filepath.Join(home, ".pi/agent"), false},
		{"no home", "", "", "", "", true},
		{"no home needed", tmp, "", "", tmp, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PI_CODING_AGENT_DIR": tt.env, "HOME": tt.home}
			got, err := ResolveDir(tt.flag, func(k string) string { return env[k] })
			if tt.wantErr {
				assert.ErrorContains(t, err, "PI_CODING_AGENT_DIR")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestMalformedError(t *testing.T) {
	var err error = &MalformedError{Path: "/a/b.json", Line: 3, Col: 7, Msg: "boom"}
	assert.EqualError(t, err, "/a/b.json:3:7: boom")
	assert.True(t, errors.Is(fmt.Errorf("wrap: %w", err), ErrMalformed))
	assert.EqualError(t, &MalformedError{Path: "/p", Msg: "is a symlink"}, "/p: is a symlink")
}

func TestWriteFileAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "agent")
	path := filepath.Join(dir, "f.json")
	require.NoError(t, WriteFileAtomic(path, []byte("one"), 0o600))
	require.NoError(t, WriteFileAtomic(path, []byte("two"), 0o600))

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two", string(got))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temp files left behind")

	link := filepath.Join(dir, "link.json")
	require.NoError(t, os.Symlink(path, link))
	err = WriteFileAtomic(link, []byte("three"), 0o600)
	assert.ErrorIs(t, err, ErrMalformed)
	got, _ = os.ReadFile(path)
	assert.Equal(t, "two", string(got), "symlink target untouched")
}
