package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/ledger"
	"github.com/piauth/piauth/pkg/stream"
)

var updateReportGolden = flag.Bool("update-report", false, "rewrite testdata/report golden files")

// ledgerScenario scripts different usage for two pooled keys.
const ledgerScenario = `{"tokens": [
  {"contains": "ledger-one", "reply": {"text": "one", "usage": {"input_tokens": 1200, "output_tokens": 345,
    "cache_read_input_tokens": 2000, "cache_creation_5m": 100, "cache_creation_1h": 50}}},
  {"contains": "ledger-two", "reply": {"text": "two", "usage": {"input_tokens": 7, "output_tokens": 11,
    "cache_read_input_tokens": 13, "cache_creation_5m": 17}}}
]}`

// reportJSONOut is the --json of usage report.
type reportJSONOut struct {
	Rows   []map[string]any `json:"rows"`
	Totals map[string]any   `json:"totals"`
}

// runLedger runs piauth ARGS in-process with the harness's emulator and
// stateDir as PIAUTH_STATE_DIR (plus env).
func (h *chatHarness) runLedger(stateDir string, env map[string]string, args ...string) chatResult {
	h.t.Helper()
	e := map[string]string{
		"PIAUTH_BASE_URL":  h.srv.URL,
		"PIAUTH_TOKEN_URL": h.srv.URL + "/v1/oauth/token",
		"PIAUTH_STATE_DIR": stateDir,
	}
	for k, v := range env {
		e[k] = v
	}
	f, bufs := newTestFactory("", e)
	argv := append([]string{"piauth", "--dir", h.dir, "--keyring", "off"}, args...)
	res := chatResult{code: run(context.Background(), f, argv), out: bufs.Out.String(), err: bufs.Err.String()}
	for _, tok := range h.tokens {
		assert.NotContains(h.t, res.out+res.err, tok, "a whole token was printed")
	}
	return res
}

// Chats on two pooled keys with scripted usage: the report's totals are the
// sums of what the emulator sent, by key, by model and by day, and the
// ledger holds fingerprints and labels, never a token or the prompt.
func TestLedgerReportTotalsMatchEmulator(t *testing.T) {
	h := newChatHarness(t, ledgerScenario)
	one, two := chatToken("ledger-one"), chatToken("ledger-two")
	h.pool(0, one, two)
	store, err := keystore.Open(keystore.Options{Dir: h.dir, Mode: keystore.ModeOff})
	require.NoError(t, err)
	_, err = store.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		p.State(0).Label, p.State(1).Label = "work", "personal"
		return nil
	})
	require.NoError(t, err)
	state := t.TempDir()

	const nOne, nTwo = 3, 2
	for i := range nOne + nTwo {
		if i == nOne {
			require.Equal(t, 0, h.runLedger(state, nil, "key", "use", "2").code)
		}
		res := h.runLedger(state, nil, "chat", "--stream", "secret prompt words")
		require.Equal(t, 0, res.code, res.err)
	}
	uOne := stream.Usage{InputTokens: 1200, OutputTokens: 345, CacheReadInputTokens: 2000,
		CacheCreationInputTokens: 150, CacheCreation5m: 100, CacheCreation1h: 50}
	uTwo := stream.Usage{InputTokens: 7, OutputTokens: 11, CacheReadInputTokens: 13,
		CacheCreationInputTokens: 17, CacheCreation5m: 17}
	model, err := stream.Builtin().Resolve(stream.Builtin().DefaultModel())
	require.NoError(t, err)
	cOne, known := stream.Cost(model.ID, uOne)
	require.True(t, known)
	cTwo, _ := stream.Cost(model.ID, uTwo)
	wantTotals := map[string]any{
		"requests": float64(nOne + nTwo), "input_tokens": float64(nOne*1200 + nTwo*7),
		"output_tokens": float64(nOne*345 + nTwo*11), "cache_write_5m_tokens": float64(nOne*100 + nTwo*17),
		"cache_write_1h_tokens": float64(nOne * 50), "cache_read_tokens": float64(nOne*2000 + nTwo*13),
	}
	for _, by := range []string{"day", "key", "model"} {
		t.Run(by, func(t *testing.T) {
			res := h.runLedger(state, nil, "usage", "report", "--by", by, "--json")
			require.Equal(t, 0, res.code, res.err)
			var out reportJSONOut
			require.NoError(t, json.Unmarshal([]byte(res.out), &out), res.out)
			cost := out.Totals["cost_usd"]
			delete(out.Totals, "cost_usd")
			assert.Equal(t, wantTotals, out.Totals)
			assert.InDelta(t, nOne*cOne+nTwo*cTwo, cost, 1e-9)
			switch by {
			case "key":
				require.Len(t, out.Rows, 2)
				byFP := map[string]map[string]any{}
				for _, r := range out.Rows {
					byFP[r["key"].(string)] = r
				}
				assert.Equal(t, "work", byFP[keystore.Fingerprint(one)]["label"])
				assert.Equal(t, float64(nOne), byFP[keystore.Fingerprint(one)]["requests"])
				assert.Equal(t, "personal", byFP[keystore.Fingerprint(two)]["label"])
				assert.Equal(t, float64(nTwo*7), byFP[keystore.Fingerprint(two)]["input_tokens"])
			case "model":
				require.Len(t, out.Rows, 1)
				assert.Equal(t, model.ID, out.Rows[0]["model"])
			case "day":
				require.NotEmpty(t, out.Rows)
				assert.Equal(t, time.Now().Format(time.DateOnly), out.Rows[len(out.Rows)-1]["day"])
			}
		})
	}
	// The table says the same.
	res := h.runLedger(state, nil, "usage", "report", "--by", "key")
	require.Equal(t, 0, res.code, res.err)
	assert.Contains(t, res.out, "work")
	assert.Regexp(t, `Total\s.*\s5\s+3,614\s+1,057\s+334\s+150\s+6,026\s+\$`, res.out)

	// What the file holds: no token, no prompt, the request ids, 0600.
	path := filepath.Join(state, ledger.FileName)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	for _, p := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		for _, secret := range []string{one, two, "secret prompt words", "sk-ant-"} {
			assert.NotContains(t, string(data), secret, p)
		}
	}
}

// A corrupt ledger never fails a chat: it is warned about once per
// process, the answer is printed, and the file is left as it was.
func TestLedgerCorruptDatabaseWarnsAndAnswers(t *testing.T) {
	h := newChatHarness(t, ledgerScenario)
	h.login(chatToken("ledger-one"))
	state := t.TempDir()
	path := filepath.Join(state, ledger.FileName)
	garbage := []byte(strings.Repeat("not a database, just bytes\n", 100))
	require.NoError(t, os.WriteFile(path, garbage, 0o600))

	res := h.runLedger(state, nil, "chat", "hello")
	require.Equal(t, 0, res.code, res.err)
	assert.Equal(t, "one\n", res.out)
	assert.Equal(t, 1, strings.Count(res.err, "piauth: warning: ledger"), res.err)
	assert.Contains(t, res.err, "not a database")
	assert.Contains(t, res.err, "move it away")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, garbage, data)

	// Interactive: two turns, still one warning.
	f, bufs := newTestFactory("first\nsecond\n", map[string]string{
		"PIAUTH_BASE_URL": h.srv.URL, "PIAUTH_STATE_DIR": state,
	})
	code := run(context.Background(), f, []string{"piauth", "--dir", h.dir, "--keyring", "off", "chat", "-i"})
	require.Equal(t, 0, code, bufs.Err.String())
	assert.Equal(t, "one\none\n", bufs.Out.String())
	assert.Equal(t, 1, strings.Count(bufs.Err.String(), "piauth: warning: ledger"), bufs.Err.String())

	// The report says what is wrong (exit 1).
	res = h.runLedger(state, nil, "usage", "report")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.err, "not a database")
}

// PIAUTH_LEDGER=off records nothing (no file is created); with it on, the
// state dir and the file are created 0700/0600.
func TestLedgerOffAndOn(t *testing.T) {
	h := newChatHarness(t, ledgerScenario)
	h.login(chatToken("ledger-two"))
	state := filepath.Join(t.TempDir(), "state")
	res := h.runLedger(state, map[string]string{"PIAUTH_LEDGER": "off"}, "chat", "hello")
	require.Equal(t, 0, res.code, res.err)
	assert.NoFileExists(t, filepath.Join(state, ledger.FileName))
	assert.NoFileExists(t, filepath.Join(state, ledger.FileName+".spool"))

	res = h.runLedger(state, nil, "chat", "hello")
	require.Equal(t, 0, res.code, res.err)
	assert.Empty(t, res.err[:strings.LastIndex(strings.TrimRight(res.err, "\n"), "\n")+1], "no warning")
	fi, err := os.Stat(state)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	fi, err = os.Stat(filepath.Join(state, ledger.FileName+".spool")) // chat spools its row
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	res = h.runLedger(state, nil, "usage", "report", "--json")
	require.Equal(t, 0, res.code, res.err)
	assert.Contains(t, res.out, `"requests": 1`)
}

// A failed answer is a ledger row too (status and error type, no tokens).
func TestLedgerRecordsErrors(t *testing.T) {
	h := newChatHarness(t, "")
	h.login(chatToken("overloaded"))
	state := t.TempDir()
	res := h.runLedger(state, nil, "chat", "hello")
	require.NotEqual(t, 0, res.code)
	db, err := ledger.Open(context.Background(), filepath.Join(state, ledger.FileName), ledger.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	rep, err := db.Report(context.Background(), ledger.ReportOptions{By: ledger.ByModel})
	require.NoError(t, err)
	assert.EqualValues(t, 1, rep.Totals.Requests)
	assert.Equal(t, ledger.Tokens{}, rep.Totals.Tokens)
	var status int
	var errType string
	raw, err := sql.Open("sqlite", filepath.Join(state, ledger.FileName))
	require.NoError(t, err)
	defer raw.Close()
	require.NoError(t, raw.QueryRow("SELECT status, error_type FROM requests").Scan(&status, &errType))
	assert.Equal(t, 529, status)
	assert.Equal(t, "overloaded_error", errType)
}

func TestUsageReportFlags(t *testing.T) {
	state := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		out  string
		err  string
	}{
		{"no ledger yet, json", []string{"--json"}, 0, `"rows": []`, ""},
		{"no ledger yet, table", nil, 0, "Total", ""},
		{"bad by", []string{"--by", "week"}, 2, "", "--by"},
		{"bad since", []string{"--since", "yesterday"}, 2, "", "--since"},
		{"bad until", []string{"--until", "-3h"}, 2, "", "--until"},
		{"argument", []string{"extra"}, 2, "", "no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, bufs := newTestFactory("", map[string]string{"PIAUTH_STATE_DIR": state})
			code := run(context.Background(), f, append([]string{"piauth", "usage", "report"}, tt.args...))
			assert.Equal(t, tt.code, code, bufs.Err.String())
			assert.Contains(t, bufs.Out.String(), tt.out)
			assert.Contains(t, bufs.Err.String(), tt.err)
		})
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 28, 15, 0, 0, 0, time.UTC)
	tests := map[string]time.Time{
		"":                     {},
		"7d":                   now.AddDate(0, 0, -7),
		"1d12h":                now.Add(-36 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"2026-11-01":           time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T10:00:00Z": time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
	}
	for in, want := range tests {
		got, err := parseWhen(in, now)
		require.NoError(t, err, in)
		assert.True(t, want.Equal(got), "%s: %s", in, got)
	}
	for _, bad := range []string{"d", "xd", "7x", "-1d", "tomorrow"} {
		_, err := parseWhen(bad, now)
		assert.Error(t, err, bad)
	}
}

// The table and the JSON of a fixed ledger, by day, key and model (golden
// files; -update-report rewrites them).
func TestUsageReportGolden(t *testing.T) {
	state := t.TempDir()
	db, err := ledger.Open(context.Background(), filepath.Join(state, ledger.FileName), ledger.Options{})
	require.NoError(t, err)
	base := time.Date(2026, 11, 27, 22, 30, 0, 0, time.UTC)
	rows := []ledger.Entry{
		{Time: base, Fingerprint: "2e55ed807f08", Label: "work", Model: "claude-sonnet-4-5", Status: 200,
			Tokens: ledger.Tokens{Input: 1234, Output: 567, CacheWrite5m: 100, CacheWrite1h: 50, CacheRead: 2048}, Cost: 0.0123, Priced: true},
		{Time: base.Add(2 * time.Hour), Fingerprint: "2e55ed807f08", Label: "work", Model: "claude-opus-4-5", Status: 200,
			Tokens: ledger.Tokens{Input: 10, Output: 1_000_000}, Cost: 25, Priced: true},
		{Time: base.Add(26 * time.Hour), Fingerprint: "9c01aa22bb33", Model: "claude-sonnet-4-5", Status: 429, ErrorType: "rate_limit_error"},
		{Time: base.Add(27 * time.Hour), Fingerprint: "9c01aa22bb33", Label: "\x1b[31mred", Model: "claude-haiku-4-5", Status: 200,
			Tokens: ledger.Tokens{Input: 5, Output: 5}, Cost: 0.00003, Priced: true},
		{Time: base.AddDate(0, 0, -30), Fingerprint: "old000000000", Model: "claude-sonnet-4-5", Status: 200,
			Tokens: ledger.Tokens{Input: 999}, Cost: 1, Priced: true}, // before --since
	}
	require.NoError(t, db.RecordAll(context.Background(), rows))
	require.NoError(t, db.Close())
	now := base.Add(30 * time.Hour)
	for _, by := range []string{"day", "key", "model"} {
		for _, asJSON := range []bool{false, true} {
			name := "by_" + by + ".txt"
			if asJSON {
				name = "by_" + by + ".json"
			}
			t.Run(name, func(t *testing.T) {
				ios, out, errOut := testIO("")
				err := usageReportRun(context.Background(), &usageReportOptions{
					IO: ios, Now: func() time.Time { return now }, Location: time.UTC,
					LedgerPath: func() (string, error) { return filepath.Join(state, ledger.FileName), nil },
					Since:      "7d", By: by, JSON: asJSON,
				})
				require.NoError(t, err, errOut.String())
				golden := filepath.Join("testdata", "report", name)
				if *updateReportGolden {
					require.NoError(t, os.WriteFile(golden, out.Bytes(), 0o644))
				}
				want, err := os.ReadFile(golden)
				require.NoError(t, err, "run with -update-report to create it")
				assert.Equal(t, string(want), out.String())
			})
		}
	}
}

// A chat whose spool has grown past ledger.SpoolImportSize imports it into
// the database: the spool stays small without any other command running.
func TestLedgerChatImportsALargeSpool(t *testing.T) {
	h := newChatHarness(t, ledgerScenario)
	h.login(chatToken("ledger-spool"))
	state := t.TempDir()
	path := filepath.Join(state, ledger.FileName)
	rows := 0
	for size := int64(0); size <= ledger.SpoolImportSize; rows++ {
		var err error
		size, err = ledger.Spool(path, ledger.Entry{Time: time.Now(), Model: "claude-sonnet-5-5", Client: "earlier",
			Tokens: ledger.Tokens{Input: 1}, RequestID: strings.Repeat("r", 200)})
		require.NoError(t, err)
	}
	res := h.runLedger(state, nil, "chat", "hello")
	require.Equal(t, 0, res.code, res.err)
	assert.False(t, ledger.HasSpool(path), "imported by the chat that found it past the mark")
	db, err := ledger.Open(context.Background(), path, ledger.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	rep, err := db.Report(context.Background(), ledger.ReportOptions{By: ledger.ByModel})
	require.NoError(t, err)
	assert.Equal(t, int64(rows+1), rep.Totals.Requests)
}
