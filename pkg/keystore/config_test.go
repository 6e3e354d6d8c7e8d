package keystore

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveConfigDir(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{name: "XDG_CONFIG_HOME", env: map[string]string{"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/home/me"}, want: "/x/cfg/piauth"},
		{name: "relative XDG_CONFIG_HOME ignored", env: map[string]string{"XDG_CONFIG_HOME": "cfg", "HOME": "/home/me"}, want: "/home/me/.config/piauth"},
		{name: "HOME", env: map[string]string{"HOME": "/home/me"}, want: "/home/me/.config/piauth"},
		{name: "nothing", env: map[string]string{}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveConfigDir(func(k string) string { return tt.env[k] })
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReadConfig(t *testing.T) {
	tests := []struct {
		name     string
		content  *string // nil = no file
		want     string
		wantMode KeyringMode
		wantSet  bool
		wantErr  string // exact MalformedError text after the path
	}{
		{name: "missing file"},
		{name: "off", content: ptr(`{"keyring": "off"}`), want: "off", wantMode: ModeOff, wantSet: true},
		{name: "on with unknown fields", content: ptr(`{"future": [1], "keyring": "on"}`), want: "on", wantMode: ModeOn, wantSet: true},
		{name: "empty object", content: ptr(`{}`)},
		{name: "bad JSON", content: ptr("{\n  \"keyring\": \"off\",\n}"), wantErr: ":3:1: "},
		{name: "wrong type", content: ptr("{\n  \"keyring\": false\n}"), wantErr: ":2:14: "},
		{name: "unknown mode", content: ptr(`{"keyring": "maybe"}`), wantErr: `:1:13: "keyring": "maybe" is not a keyring mode`},
		{name: "duplicate key", content: ptr(`{"keyring": "on", "keyring": "off"}`), wantErr: ":1:"},
		{name: "not an object", content: ptr(`["off"]`), wantErr: ":1:1: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ConfigFileName)
			if tt.content != nil {
				writeFile(t, path, *tt.content, 0o600)
			}
			c, err := ReadConfig(path)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrMalformed)
				var merr *MalformedError
				require.ErrorAs(t, err, &merr)
				assert.NotZero(t, merr.Line, "positioned")
				assert.Contains(t, err.Error(), path+tt.wantErr)
				data, rerr := os.ReadFile(path)
				require.NoError(t, rerr)
				assert.Equal(t, *tt.content, string(data), "file untouched")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.Keyring)
			m, ok := c.KeyringMode()
			assert.Equal(t, tt.wantSet, ok)
			assert.Equal(t, tt.wantMode, m)
		})
	}
}

func TestReadConfigStore(t *testing.T) {
	tests := []struct {
		content, want, wantErr string
	}{
		{`{"store": "redis://:pw@10.0.0.5:6379/2"}`, "redis://:pw@10.0.0.5:6379/2", ""},
		{`{"store": "rediss://h:6380"}`, "rediss://h:6380", ""},
		{`{"store": "file", "keyring": "off"}`, "file", ""},
		{`{}`, "", ""},
		{`{"store": "postgres://x"}`, "", `:1:11: "store": "postgres://x" is not a store`},
		{`{"store": 6379}`, "", ":1:11: "},
	}
	for _, tt := range tests {
		t.Run(tt.content, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ConfigFileName)
			writeFile(t, path, tt.content, 0o600)
			c, err := ReadConfig(path)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, path+tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.Store)
		})
	}
}
