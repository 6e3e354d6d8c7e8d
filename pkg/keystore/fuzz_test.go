package keystore

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzParsePool: parsePool never panics, and whatever it accepts re-marshals
// to a file that parses again to the same keys (and is then stable), and that
// the seed extension reads as the same "keys" list.
// Seed corpus: testdata/fuzz/FuzzParsePool. Run: go test -fuzz FuzzParsePool -fuzztime 60s ./pkg/keystore
func FuzzParsePool(f *testing.F) {
	f.Add([]byte(`{"keys": ["a", "b"], "piauth": {"version": 1, "active": 1, "states": {"x": {"label": "l"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePool("f.json", data)
		if err != nil {
			assert.ErrorIs(t, err, ErrMalformed)
			return
		}
		out, err := p.marshal()
		require.NoError(t, err)
		again, err := parsePool("f.json", out)
		require.NoError(t, err, "re-marshalled file must parse:\n%s", out)
		want := p.Keys
		if want == nil {
			want = []string{}
		}
		got := again.Keys
		if got == nil {
			got = []string{}
		}
		assert.Equal(t, want, got)

		// The seed (JavaScript) matches "keys" case-sensitively.
		var top map[string]json.RawMessage
		var seedKeys []string
		if json.Unmarshal(data, &top) == nil && json.Unmarshal(top["keys"], &seedKeys) == nil && seedKeys != nil {
			assert.Equal(t, seedKeys, p.Keys, "we read keys exactly as the seed does")
		}
		out2, err := again.marshal()
		require.NoError(t, err)
		assert.Equal(t, string(out), string(out2), "marshal is stable")
	})
}
