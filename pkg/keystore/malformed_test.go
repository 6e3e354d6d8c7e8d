package keystore

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// TestMalformedCorpus feeds every file of testdata/malformed/ (auth-*.json as
// auth.json, pool-*.json as key-rotation.json) to every reader and writer:
// each must fail with ErrMalformed and a "path:line:col: msg" error, leave the
// file byte-identical and write nothing to the keyring. The error texts are
// pinned in testdata/malformed/errors.golden (go test -run Corpus -update).
func TestMalformedCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/malformed/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)

	var golden strings.Builder
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			content, err := os.ReadFile(f)
			require.NoError(t, err)
			kr := newMemKeyring()
			s, _ := openTest(t, ModeOn, kr)
			target := s.PoolPath()
			if strings.HasPrefix(name, "auth-") {
				target = s.AuthPath()
			}
			require.NoError(t, os.WriteFile(target, content, 0o600))

			msg := checkAllOpsRefuse(t, s, kr, target, content)
			golden.WriteString(name + ": " + strings.ReplaceAll(msg, target, "PATH") + "\n")
		})
	}

	goldenPath := filepath.Join("testdata", "malformed", "errors.golden")
	if *update {
		require.NoError(t, os.WriteFile(goldenPath, []byte(golden.String()), 0o644))
	}
	want, err := os.ReadFile(goldenPath)
	require.NoError(t, err)
	assert.Equal(t, string(want), golden.String())
}

// checkAllOpsRefuse runs every operation against a malformed target file and
// returns the (common) error text.
func checkAllOpsRefuse(t *testing.T, s *Store, kr *memKeyring, target string, content []byte) string {
	t.Helper()
	ctx := context.Background()
	add := func(p *Pool) error { p.Add(fakeTok("oat01", 1), KeyState{}); return nil }
	var errs []error
	if target == s.AuthPath() {
		_, err := s.Auth()
		errs = append(errs, err)
		errs = append(errs, s.UpdateAuth(ctx, func(c *Credential) (*Credential, error) {
			return &Credential{Type: "api_key", Key: "k"}, nil
		}))
	} else {
		_, err := s.Pool()
		errs = append(errs, err)
		_, err = s.UpdatePool(ctx, add)
		errs = append(errs, err)
		_, _, err = s.SyncKeyring(ctx)
		errs = append(errs, err)
	}
	_, err := s.UpdateBoth(ctx, func(auth **Credential, p *Pool) error { *auth = &Credential{Type: "api_key", Key: "k"}; return add(p) })
	errs = append(errs, err)

	for _, err := range errs {
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrMalformed)
		assert.True(t, strings.HasPrefix(err.Error(), target+":"), "error names the file: %v", err)
		assert.Equal(t, errs[0].Error(), err.Error(), "every operation reports the same error")
	}
	got, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, content, got, "file is byte-identical")
	assert.Zero(t, kr.sets, "nothing written to the keyring")
	entries, err := os.ReadDir(s.Dir())
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no other file was written")
	return errs[0].Error()
}

func TestMalformedHugeFile(t *testing.T) {
	kr := newMemKeyring()
	s, _ := openTest(t, ModeOn, kr)
	f, err := os.Create(s.PoolPath())
	require.NoError(t, err)
	require.NoError(t, f.Truncate(maxFileSize+1)) // sparse: cheap on disk
	require.NoError(t, f.Close())

	_, err = s.UpdatePool(context.Background(), func(p *Pool) error { return nil })
	require.ErrorIs(t, err, ErrMalformed)
	assert.Contains(t, err.Error(), "file too large")
	fi, err := os.Stat(s.PoolPath())
	require.NoError(t, err)
	assert.Equal(t, int64(maxFileSize+1), fi.Size())
	assert.Zero(t, kr.calls)
}

func TestMalformedPositions(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"syntax on line 3", "{\n  \"keys\": [\n    x\n  ]\n}", "f:3:5: invalid character 'x' looking for beginning of value"},
		{"truncated", "{\"keys\": [", "f:1:11: unexpected end of file (truncated JSON)"},
		{"dup after unicode", "{\"é\": 1,\n \"é\": 2}", "f:2:2: duplicate key \"é\""},
		{"wrong type position", "{\"keys\": [\"a\"], \"piauth\": {\"rotated\": 1}}", "f:1:39: \"piauth.rotated\": expected a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parsePool("f", []byte(tt.in))
			assert.EqualError(t, err, tt.want)
		})
	}
}
