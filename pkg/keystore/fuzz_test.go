package keystore

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

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

// FuzzDupScanner checks the one-pass duplicate-key scanner against the
// token walk of encoding/json's Decoder on every valid JSON input.
func FuzzDupScanner(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `[{"x":1},{"x":1}]`, `{"k\u0065y":1,"key":2}`,
		`{"a\"b":1,"a\"b":2}`, ` {"keys": ["x", "y"], "piauth": {"states": {}}} `, `"s"`, `1.5e3`, `[]`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) || !utf8.Valid(data) { // parseDoc rejects both before scanning
			return
		}
		sc := dupScanner{data: data}
		got := sc.value()
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber() // numbers beyond float64 are valid JSON
		want := (&doc{data: data}).walk(dec, "", false)
		var wantDup *MalformedError
		if errors.As(want, &wantDup) {
			require.Error(t, got, "walk found %v", want)
			assert.Equal(t, wantDup.Msg, got.Error())
			assert.Equal(t, wantDup.Col, got.(*dupKeyError).off, "offset of the duplicate key")
			return
		}
		require.NoError(t, want)
		assert.NoError(t, got)
	})
}
