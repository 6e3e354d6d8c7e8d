package convo

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openTemp(t *testing.T) *DB {
	t.Helper()
	d, err := Open(context.Background(), filepath.Join(t.TempDir(), "state", FileName), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

func turnOf(user, answer string, cost *float64) *Turn {
	req, _ := json.Marshal(map[string]any{"role": "user", "content": user})
	resp, _ := json.Marshal(map[string]any{"role": "assistant", "content": []any{map[string]any{"type": "text", "text": answer}}})
	return &Turn{Model: "claude-sonnet-5-5", Request: req, Response: resp, StopReason: "end_turn",
		Usage: json.RawMessage(`{"input_tokens":3}`), CostUSD: cost}
}

func TestRecordListTurns(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	cost := 0.25
	c := &Conversation{Model: "claude-sonnet-5-5", System: "be brief", Title: "first", Fingerprint: "aaaa",
		Tools: json.RawMessage(`[{"name":"x"}]`), ToolsFile: "/t.json"}
	require.NoError(t, d.Record(ctx, c, turnOf("first", "one", &cost)))
	require.Len(t, c.ID, IDLength)
	second := turnOf("second", "two", &cost)
	second.Time = c.Updated.Add(time.Second)
	c.Fingerprint = "bbbb"
	require.NoError(t, d.Record(ctx, c, second))
	assert.Equal(t, 2, second.Seq)

	other := &Conversation{Model: "m", Title: "other"}
	later := turnOf("other", "x", nil)
	later.Time = second.Time.Add(time.Second)
	require.NoError(t, d.Record(ctx, other, later))

	list, err := d.List(ctx, 0)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, other.ID, list[0].ID, "most recently updated first")
	got := list[1]
	assert.Equal(t, []any{c.ID, 2, 0.5, "bbbb", "be brief", "first", `[{"name":"x"}]`, "/t.json"},
		[]any{got.ID, got.Turns, got.CostUSD, got.Fingerprint, got.System, got.Title, string(got.Tools), got.ToolsFile})
	last, err := d.Last(ctx)
	require.NoError(t, err)
	assert.Equal(t, other.ID, last.ID)

	turns, err := d.Turns(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, turns, 2)
	msgs := Messages(turns)
	require.Len(t, msgs, 4)
	assert.JSONEq(t, `{"role":"user","content":"second"}`, string(msgs[2]))
	require.NotNil(t, turns[0].CostUSD, "cost kept")
	assert.Equal(t, 0.25, *turns[0].CostUSD)

	require.NoError(t, d.Delete(ctx, c.ID))
	_, err = d.Get(ctx, c.ID)
	assert.ErrorIs(t, err, ErrNotFound)
	turns, err = d.Turns(ctx, c.ID)
	require.NoError(t, err)
	assert.Empty(t, turns)
	assert.ErrorIs(t, d.Delete(ctx, c.ID), ErrNotFound)
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	ids := []string{"abcd000001", "abcd000002", "zzzz000001"}
	for _, id := range ids {
		_, err := d.db.Exec(`INSERT INTO conversations (id, created, updated) VALUES (?, 1, 1)`, id)
		require.NoError(t, err)
	}
	tests := []struct {
		prefix, want string
		err          error
	}{
		{"zzzz", "zzzz000001", nil},
		{"ZZZZ0", "zzzz000001", nil},
		{"abcd000002", "abcd000002", nil},
		{"abcd", "", ErrAmbiguous},
		{"q", "", ErrNotFound},
		{"", "", ErrNotFound},
		{"ab%", "", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			got, err := d.Resolve(ctx, tt.prefix)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				if tt.err == ErrAmbiguous {
					assert.Contains(t, err.Error(), "abcd000001, abcd000002")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestOpenModesAndBadFiles(t *testing.T) {
	ctx := context.Background()
	t.Run("modes", func(t *testing.T) {
		d := openTemp(t)
		fi, err := os.Stat(d.Path())
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		di, err := os.Stat(filepath.Dir(d.Path()))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	})
	tests := []struct {
		name    string
		content func(path string)
		want    string
		is      error
	}{
		{"not a database", func(p string) {
			require.NoError(t, os.WriteFile(p, []byte(strings.Repeat("not sqlite ", 20)), 0o600))
		}, "not a database", nil},
		{"newer schema", func(p string) {
			d, err := Open(ctx, p, Options{})
			require.NoError(t, err)
			_, err = d.db.Exec("PRAGMA user_version = 99")
			require.NoError(t, err)
			require.NoError(t, d.Close())
		}, "newer", ErrNewerSchema},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), FileName)
			tt.content(p)
			before, _ := os.ReadFile(p)
			_, err := Open(ctx, p, Options{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), p, "the error names the file")
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
			after, _ := os.ReadFile(p)
			assert.Equal(t, before, after, "the file is left as it is")
		})
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		require.Len(t, id, IDLength)
		require.Empty(t, strings.Trim(id, idAlphabet))
		require.False(t, seen[id])
		seen[id] = true
	}
}
