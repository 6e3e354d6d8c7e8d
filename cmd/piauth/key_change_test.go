package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/piauth/piauth/pkg/keystore"
)

// Tests of the commands that change the pool's state: use, remove, reset.
func TestKeyUseRemoveReset(t *testing.T) {
	k1, k2, k3 := testKey("oat01", 1), testKey("api03", 2), testKey("oat01", 3)
	keys := []string{k1, k2, k3}
	fp2 := keystore.Fingerprint(k2)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	state := map[string]any{
		"version": 1, "active": 2, "rotated": true,
		"states": map[string]any{
			keystore.Fingerprint(k1): map[string]any{"label": "work", "cooldown_until": future, "cooldown_reason": "rate_limit"},
			fp2:                      map[string]any{"needs_reauth": true, "cooldown_until": future, "cooldown_reason": "overloaded"},
		},
	}
	tests := []struct {
		name       string
		args       []string
		code       int
		wantOut    string
		wantErr    string
		wantKeys   []string
		wantActive int
		check      func(t *testing.T, p *keystore.Pool)
	}{
		{name: "use N", args: []string{"use", "2"}, wantOut: "using key 2/3 (" + keystore.Mask(k2) + ")\n",
			wantErr: "key 2 needs re-authentication", wantKeys: keys, wantActive: 1,
			check: func(t *testing.T, p *keystore.Pool) { assert.False(t, p.Rotated) }},
		{name: "use cooling key warns", args: []string{"use", "1"}, wantOut: "using key 1/3", wantErr: "key 1 is cooling until", wantKeys: keys},
		{name: "use fingerprint prefix", args: []string{"use", fp2[:6]}, wantOut: "using key 2/3", wantKeys: keys, wantActive: 1},
		{name: "use full fingerprint", args: []string{"use", fp2}, wantOut: "using key 2/3", wantKeys: keys, wantActive: 1},
		{name: "use 0", args: []string{"use", "0"}, code: 2, wantErr: "no key 0: the pool has keys 1 to 3", wantKeys: keys, wantActive: 2},
		{name: "use past the end", args: []string{"use", "4"}, code: 2, wantErr: "no key 4", wantKeys: keys, wantActive: 2},
		{name: "use short prefix", args: []string{"use", fp2[:5]}, code: 2, wantErr: "no key matches", wantKeys: keys, wantActive: 2},
		{name: "use word", args: []string{"use", "two"}, code: 2, wantErr: `no key matches "two"`, wantKeys: keys, wantActive: 2},
		{name: "use without N", args: []string{"use"}, code: 2, wantErr: "key use wants one key", wantKeys: keys, wantActive: 2},
		{name: "use two args", args: []string{"use", "1", "2"}, code: 2, wantErr: "key use wants one key", wantKeys: keys, wantActive: 2},
		{name: "use token masks it", args: []string{"use", testKey("oat01", 9)}, code: 2, wantErr: keystore.Mask(testKey("oat01", 9)), wantKeys: keys, wantActive: 2},

		{name: "remove N", args: []string{"remove", "2"}, wantOut: "removed key 2/3 (" + keystore.Mask(k2) + "); 2 keys left\nactive: key 2/2",
			wantKeys: []string{k1, k3}, wantActive: 1,
			check: func(t *testing.T, p *keystore.Pool) { assert.NotContains(t, p.States, fp2, "state removed too") }},
		{name: "remove active", args: []string{"rm", "3"}, wantOut: "removed key 3/3", wantKeys: []string{k1, k2}, wantActive: 0},
		{name: "remove by fingerprint prefix", args: []string{"remove", fp2[:8]}, wantOut: "removed key 2/3", wantKeys: []string{k1, k3}, wantActive: 1},
		{name: "remove missing", args: []string{"remove", "9"}, code: 2, wantErr: "no key 9", wantKeys: keys, wantActive: 2},
		{name: "remove unknown fingerprint", args: []string{"remove", "ffffffffffff"}, code: 2, wantErr: "no key matches", wantKeys: keys, wantActive: 2},
		{name: "remove without arg", args: []string{"remove"}, code: 2, wantErr: "key remove wants one key", wantKeys: keys, wantActive: 2},

		{name: "reset", args: []string{"reset"}, wantOut: "key 1/3 (" + keystore.Mask(k1) + ") is active; cleared 2 cooldowns\n",
			wantErr: "key 2/3 (" + keystore.Mask(k2) + ") still needs re-authentication", wantKeys: keys,
			check: func(t *testing.T, p *keystore.Pool) {
				assert.False(t, p.Rotated)
				for i := range p.Keys {
					assert.True(t, p.State(i).CooldownUntil.IsZero())
					assert.Empty(t, p.State(i).CooldownReason)
				}
				assert.True(t, p.State(1).NeedsReauth, "needs-reauth survives a reset")
				assert.Equal(t, "work", p.State(0).Label)
			}},
		{name: "reset with argument", args: []string{"reset", "1"}, code: 2, wantErr: "key reset takes no arguments", wantKeys: keys, wantActive: 2},
		{name: "unknown subcommand", args: []string{"frob"}, code: 2, wantErr: `unknown command "frob" for "key"`, wantKeys: keys, wantActive: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writePoolFile(t, dir, keys, state)
			r := piauthRun{dir: dir}.run(t, append([]string{"key"}, tt.args...)...)
			assert.Equal(t, tt.code, r.code, "stdout: %s stderr: %s", r.out, r.err)
			assert.Contains(t, r.out, tt.wantOut)
			assert.Contains(t, r.err, tt.wantErr)
			assertNoSecret(t, append(keys, testKey("oat01", 9)), r.out, r.err)
			p := readPool(t, dir)
			assert.Equal(t, tt.wantKeys, p.Keys)
			assert.Equal(t, tt.wantActive, p.Active)
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestKeyChangesOnEmptyPool(t *testing.T) {
	tests := []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{"key", "reset"}, 0, "the pool is empty"},
		{[]string{"key", "use", "1"}, 2, "no key 1: the pool is empty"},
		{[]string{"key", "remove", "1"}, 2, "no key 1: the pool is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.args[1], func(t *testing.T) {
			dir := t.TempDir()
			r := piauthRun{dir: dir}.run(t, tt.args...)
			assert.Equal(t, tt.code, r.code, r.err)
			assert.Contains(t, r.err, tt.wantErr)
			assert.NoFileExists(t, dir+"/"+keystore.PoolFileName)
		})
	}
}
