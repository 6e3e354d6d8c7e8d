package keystore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memKeyring is an in-memory Keyring; fail, when set, is returned by every call.
type memKeyring struct {
	mu    sync.Mutex
	items map[string]string
	fail  error
	calls int
	sets  int
}

func newMemKeyring() *memKeyring { return &memKeyring{items: map[string]string{}} }

func (k *memKeyring) Get(user string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	if k.fail != nil {
		return "", k.fail
	}
	v, ok := k.items[user]
	if !ok {
		return "", fmt.Errorf("get %s: %w", user, ErrNotFound)
	}
	return v, nil
}

func (k *memKeyring) Set(user, value string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	if k.fail != nil {
		return k.fail
	}
	k.sets++
	k.items[user] = value
	return nil
}

func (k *memKeyring) Delete(user string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	if k.fail != nil {
		return k.fail
	}
	if _, ok := k.items[user]; !ok {
		return fmt.Errorf("delete %s: %w", user, ErrNotFound)
	}
	delete(k.items, user)
	return nil
}

func (k *memKeyring) names() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for n := range k.items {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func openTest(t *testing.T, mode KeyringMode, kr Keyring) (*Store, *bytes.Buffer) {
	t.Helper()
	var warn bytes.Buffer
	s, err := Open(Options{Dir: t.TempDir(), Mode: mode, Keyring: kr, Warn: &warn,
		Now: func() time.Time { return time.Date(2026, 11, 28, 17, 30, 0, 0, time.UTC) }})
	require.NoError(t, err)
	return s, &warn
}

func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), perm))
	require.NoError(t, os.Chmod(path, perm))
}

func TestAuthRoundTripKeepsOtherProviders(t *testing.T) {
	s, _ := openTest(t, ModeOff, nil)
	ctx := context.Background()
	_, err := s.Auth()
	require.ErrorIs(t, err, ErrNotFound, "no file")

	writeFile(t, s.AuthPath(), `{
  "openai-codex": {"type": "oauth", "access": "o", "refresh": "r", "expires": 5, "accountId": "acc<&>"},
  "anthropic": {"type": "oauth", "access": "a1", "refresh": "r1", "expires": 100, "scopes": ["x"]}
}`, 0o600)
	c, err := s.Auth()
	require.NoError(t, err)
	assert.Equal(t, "a1", c.Token())
	assert.True(t, c.Expired(time.UnixMilli(100)))
	assert.False(t, c.Expired(time.UnixMilli(99)))

	require.NoError(t, s.UpdateAuth(ctx, func(cur *Credential) (*Credential, error) {
		require.NotNil(t, cur)
		return &Credential{Type: "oauth", Access: "a2", Refresh: "r2", Expires: 200}, nil
	}))
	raw, err := os.ReadFile(s.AuthPath())
	require.NoError(t, err)
	var m map[string]map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	assert.Equal(t, map[string]any{"type": "oauth", "access": "o", "refresh": "r", "expires": 5.0, "accountId": "acc<&>"}, m["openai-codex"])
	assert.Equal(t, map[string]any{"type": "oauth", "access": "a2", "refresh": "r2", "expires": 200.0, "scopes": []any{"x"}}, m["anthropic"])
	assert.Contains(t, string(raw), "\n  \"anthropic\": {\n    \"", "two-space indentation")
	assert.Contains(t, string(raw), "acc<&>", "no HTML escaping")
	fi, err := os.Stat(s.AuthPath())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	require.NoError(t, s.UpdateAuth(ctx, func(*Credential) (*Credential, error) { return nil, nil }))
	_, err = s.Auth()
	assert.ErrorIs(t, err, ErrNotFound, "entry deleted")
	raw, _ = os.ReadFile(s.AuthPath())
	assert.Contains(t, string(raw), "openai-codex")

	require.NoError(t, s.UpdateAuth(ctx, func(*Credential) (*Credential, error) {
		return &Credential{Type: "api_key", Key: "k"}, nil
	}))
	c, err = s.Auth()
	require.NoError(t, err)
	assert.Equal(t, "k", c.Token())
	assert.False(t, c.Expired(time.Now()), "api keys never expire")
}

func TestModeFixWarnsAndKeepsContent(t *testing.T) {
	s, warn := openTest(t, ModeOff, nil)
	content := `{"keys": ["` + fakeTok("oat01", 1) + `"]}`
	writeFile(t, s.PoolPath(), content, 0o644)

	_, err := s.Pool()
	require.NoError(t, err)
	_, err = s.Pool()
	require.NoError(t, err)
	assert.Equal(t, s.PoolPath()+": mode 0644, fixing to 0600", strings.TrimSpace(strings.TrimPrefix(warn.String(), "piauth: warning: ")))
	fi, err := os.Stat(s.PoolPath())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	got, _ := os.ReadFile(s.PoolPath())
	assert.Equal(t, content, string(got))
}

func TestUpdatePoolMirrorsDiff(t *testing.T) {
	kr := newMemKeyring()
	s, warn := openTest(t, ModeOn, kr)
	ctx := context.Background()
	a, b := fakeTok("oat01", 1), fakeTok("api03", 2)

	p, err := s.Pool()
	require.NoError(t, err)
	assert.Empty(t, p.Keys, "missing file is an empty pool")

	_, err = s.UpdatePool(ctx, func(p *Pool) error {
		p.Add(a, KeyState{Label: "work", Refresh: "rr", Expires: 9})
		p.Add(b, KeyState{})
		return nil
	})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"index", "key:" + Fingerprint(a), "key:" + Fingerprint(b)}, kr.names())
	var item keyringItem
	require.NoError(t, json.Unmarshal([]byte(kr.items["key:"+Fingerprint(a)]), &item))
	assert.Equal(t, keyringItem{Token: a, Refresh: "rr", Expires: 9, Label: "work"}, item)
	assert.Equal(t, `["`+Fingerprint(a)+`","`+Fingerprint(b)+`"]`, kr.items["index"])
	assert.True(t, s.InKeyring(Fingerprint(a)))

	sets := kr.sets
	_, err = s.UpdatePool(ctx, func(p *Pool) error { p.Active = 1; return nil })
	require.NoError(t, err)
	assert.Equal(t, sets, kr.sets, "state-only change writes nothing to the keyring")

	_, err = s.UpdatePool(ctx, func(p *Pool) error { p.Remove(p.Find(a)); return nil })
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"index", "key:" + Fingerprint(b)}, kr.names())
	assert.False(t, s.InKeyring(Fingerprint(a)))
	assert.Empty(t, warn.String())

	_, err = s.UpdatePool(ctx, func(p *Pool) error { return fmt.Errorf("nope") })
	assert.EqualError(t, err, "nope")
}

func TestKeyringModes(t *testing.T) {
	down := fmt.Errorf("dbus: %w", ErrKeyringUnavailable)
	tests := []struct {
		name      string
		mode      KeyringMode
		wantErr   bool
		wantWarns int
		wantCalls int
		wantState string
	}{
		{"auto falls back once", ModeAuto, false, 1, 1, "unavailable: dbus: keyring unavailable"},
		{"on is an error", ModeOn, true, 0, 1, "unavailable: dbus: keyring unavailable"},
		{"off never calls", ModeOff, false, 0, 0, "off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr := newMemKeyring()
			kr.fail = down
			s, warn := openTest(t, tt.mode, kr)
			for i := range 3 {
				_, err := s.UpdatePool(context.Background(), func(p *Pool) error {
					p.Add(fakeTok("oat01", i), KeyState{})
					return nil
				})
				if tt.wantErr {
					assert.ErrorIs(t, err, ErrKeyringUnavailable)
				} else {
					assert.NoError(t, err)
				}
			}
			p, err := s.Pool()
			require.NoError(t, err)
			assert.Len(t, p.Keys, 3, "the file is written first")
			assert.Equal(t, tt.wantWarns, strings.Count(warn.String(), "OS keyring unavailable"))
			if tt.wantWarns > 0 {
				assert.Equal(t, "piauth: warning: OS keyring unavailable (dbus: keyring unavailable); using files only\n", warn.String())
			}
			assert.Equal(t, tt.wantCalls, kr.calls)
			assert.Equal(t, tt.wantState, s.KeyringState())
		})
	}
}

func TestKeyringStateProbe(t *testing.T) {
	s, _ := openTest(t, ModeAuto, newMemKeyring())
	assert.Equal(t, "on", s.KeyringState())
}

func TestSyncKeyringPicksUpHandEdits(t *testing.T) {
	kr := newMemKeyring()
	s, _ := openTest(t, ModeOn, kr)
	ctx := context.Background()
	a, b, c := fakeTok("oat01", 1), fakeTok("oat01", 2), fakeTok("oat01", 3)
	_, err := s.UpdatePool(ctx, func(p *Pool) error { p.Add(a, KeyState{}); p.Add(b, KeyState{}); return nil })
	require.NoError(t, err)

	// Hand edit as the seed README suggests: drop a, add c.
	writeFile(t, s.PoolPath(), `{"keys": ["`+b+`", "`+c+`"]}`, 0o600)
	added, removed, err := s.SyncKeyring(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, added)
	assert.Equal(t, 1, removed)
	assert.ElementsMatch(t, []string{"index", "key:" + Fingerprint(b), "key:" + Fingerprint(c)}, kr.names())
	assert.Equal(t, `["`+Fingerprint(b)+`","`+Fingerprint(c)+`"]`, kr.items["index"])

	added, removed, err = s.SyncKeyring(ctx)
	require.NoError(t, err)
	assert.Zero(t, added+removed, "second sync is a no-op")

	off, _ := openTest(t, ModeOff, nil)
	_, _, err = off.SyncKeyring(ctx)
	assert.ErrorIs(t, err, ErrKeyringUnavailable)
}

func TestRestoreFromKeyring(t *testing.T) {
	a, b := fakeTok("oat01", 1), fakeTok("api03", 2)
	tests := []struct {
		name        string
		file        *string // nil = no file
		wantErr     string
		wantCorrupt bool
	}{
		{name: "missing file", file: nil},
		{name: "empty pool", file: ptr(`{"keys": [], "other": 1}`)},
		{name: "corrupt file", file: ptr(`{"keys": [`), wantCorrupt: true},
		{name: "valid pool refused", file: ptr(`{"keys": ["` + a + `"]}`), wantErr: "refusing to overwrite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr := newMemKeyring()
			src, _ := openTest(t, ModeOn, kr)
			_, err := src.UpdatePool(context.Background(), func(p *Pool) error {
				p.Add(a, KeyState{Label: "work", Refresh: "r", Expires: 7})
				p.Add(b, KeyState{})
				return nil
			})
			require.NoError(t, err)

			s, _ := openTest(t, ModeOn, kr)
			if tt.file != nil {
				writeFile(t, s.PoolPath(), *tt.file, 0o600)
			}
			p, err := s.RestoreFromKeyring(context.Background())
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				got, _ := os.ReadFile(s.PoolPath())
				assert.Equal(t, *tt.file, string(got))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []string{a, b}, p.Keys)
			re, err := s.Pool()
			require.NoError(t, err)
			assert.Equal(t, []string{a, b}, re.Keys)
			assert.Equal(t, "work", re.State(0).Label)
			assert.Equal(t, "r", re.State(0).Refresh)
			corrupt := s.PoolPath() + ".corrupt-20261128T173000Z"
			if tt.wantCorrupt {
				got, err := os.ReadFile(corrupt)
				require.NoError(t, err)
				assert.Equal(t, *tt.file, string(got))
			} else {
				assert.NoFileExists(t, corrupt)
			}
		})
	}

	s, _ := openTest(t, ModeOn, newMemKeyring())
	_, err := s.RestoreFromKeyring(context.Background())
	assert.ErrorIs(t, err, ErrNotFound, "empty keyring")
}

func ptr(s string) *string { return &s }

func TestUpdateBoth(t *testing.T) {
	kr := newMemKeyring()
	s, _ := openTest(t, ModeOn, kr)
	writeFile(t, s.AuthPath(), `{"google": {"type": "api_key", "key": "g"}, "anthropic": {"type": "oauth", "access": "`+fakeTok("oat01", 1)+`", "refresh": "rf", "expires": 3}}`, 0o600)
	p, err := s.UpdateBoth(context.Background(), func(auth **Credential, p *Pool) error {
		require.NotNil(t, *auth)
		c := *auth
		p.Add(c.Access, KeyState{Refresh: c.Refresh, Expires: c.Expires})
		c.Access = fakeTok("oat01", 2)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{fakeTok("oat01", 1)}, p.Keys)
	c, err := s.Auth()
	require.NoError(t, err)
	assert.Equal(t, fakeTok("oat01", 2), c.Access)
	assert.Equal(t, "rf", c.Refresh)
	raw, _ := os.ReadFile(s.AuthPath())
	assert.Contains(t, string(raw), `"google"`)
	assert.True(t, s.InKeyring(Fingerprint(fakeTok("oat01", 1))))
	assert.NoDirExists(t, s.AuthPath()+".lock")
	assert.NoDirExists(t, s.PoolPath()+".lock")
}

func TestSymlinkRefused(t *testing.T) {
	kr := newMemKeyring()
	s, _ := openTest(t, ModeOn, kr)
	target := filepath.Join(t.TempDir(), "elsewhere.json")
	writeFile(t, target, `{"keys": []}`, 0o600)
	require.NoError(t, os.Symlink(target, s.PoolPath()))

	_, err := s.UpdatePool(context.Background(), func(p *Pool) error { p.Add(fakeTok("oat01", 1), KeyState{}); return nil })
	require.ErrorIs(t, err, ErrMalformed)
	assert.Contains(t, err.Error(), s.PoolPath()+": is a symlink")
	fi, err := os.Lstat(s.PoolPath())
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeSymlink, "symlink kept")
	got, _ := os.ReadFile(target)
	assert.Equal(t, `{"keys": []}`, string(got))
	assert.Zero(t, kr.calls)
}

func TestUnchangedAuthIsNotRewritten(t *testing.T) {
	s, _ := openTest(t, ModeOff, nil)
	content := `{"zeta": {"type": "api_key", "key": "z"}, "anthropic": {"type": "oauth", "refresh": "r", "access": "a", "expires": 1}}`
	writeFile(t, s.AuthPath(), content, 0o600)
	require.NoError(t, s.UpdateAuth(context.Background(), func(c *Credential) (*Credential, error) { return c, nil }))
	_, err := s.UpdateBoth(context.Background(), func(auth **Credential, p *Pool) error {
		p.Add(fakeTok("oat01", 1), KeyState{})
		return nil
	})
	require.NoError(t, err)
	got, err := os.ReadFile(s.AuthPath())
	require.NoError(t, err)
	assert.Equal(t, content, string(got), "pi's file untouched, key order included")
}

func TestCredentialExtraFields(t *testing.T) {
	s, _ := openTest(t, ModeOff, nil)
	writeFile(t, s.AuthPath(), `{"anthropic": {"type": "oauth", "access": "a", "account": {"email": "x@y"}}}`, 0o600)
	require.NoError(t, s.UpdateAuth(context.Background(), func(c *Credential) (*Credential, error) {
		assert.JSONEq(t, `{"email": "x@y"}`, string(c.Field("account")))
		assert.Error(t, c.SetField("access", "b"), "modelled fields are set directly")
		require.NoError(t, c.SetField("org", "o1"))
		require.NoError(t, c.SetField("account", nil))
		return c, nil
	}))
	c, err := s.Auth()
	require.NoError(t, err)
	assert.Nil(t, c.Field("account"))
	assert.JSONEq(t, `"o1"`, string(c.Field("org")))
	assert.Equal(t, "a", c.Access)
}
