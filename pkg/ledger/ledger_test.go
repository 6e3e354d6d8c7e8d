package ledger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/stream"
)

// openTemp opens a fresh ledger in a temp dir.
func openTemp(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "state", FileName), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// entry is a priced row at ts.
func entry(ts time.Time, fp, model string, in, out int64) Entry {
	return Entry{Time: ts, Fingerprint: fp, Label: "work", Model: model, Status: 200, Stream: true,
		Latency: 1500 * time.Microsecond, Tokens: Tokens{Input: in, Output: out, CacheWrite5m: 3, CacheWrite1h: 2, CacheRead: 7},
		Cost: float64(in+out) / 1e6, Priced: true, Client: "piauth-chat", RequestID: "req_1"}
}

func TestOpenCreatesPrivateFilesAndMigrates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, FileName)
	db, err := Open(context.Background(), path, Options{})
	require.NoError(t, err)
	require.NoError(t, db.Record(context.Background(), entry(time.Now(), "fp", "m", 1, 1)))
	var v int
	require.NoError(t, db.db.QueryRow("PRAGMA user_version").Scan(&v))
	assert.Equal(t, SchemaVersion, v)
	var mode string
	require.NoError(t, db.db.QueryRow("PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "wal", mode)
	require.NoError(t, db.Close())

	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if p != path && os.IsNotExist(err) {
			continue // removed at close
		}
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
	}

	// Reopening finds the schema current and the row kept.
	db, err = Open(context.Background(), path, Options{})
	require.NoError(t, err)
	defer db.Close()
	rep, err := db.Report(context.Background(), ReportOptions{By: ByModel})
	require.NoError(t, err)
	assert.EqualValues(t, 1, rep.Totals.Requests)
}

func TestOpenNarrowsWideMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	db, err := Open(context.Background(), path, Options{})
	require.NoError(t, err)
	db.Close()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		want    string
	}{
		{"not a database", []byte("this is not a SQLite file, just text that is long enough to have a header.........."), "not a database"},
		{"garbage header", append([]byte("SQLite format 3\x00"), make([]byte, 200)...), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			require.NoError(t, os.WriteFile(path, tt.content, 0o600))
			db, err := Open(context.Background(), path, Options{})
			if err == nil {
				err = db.Record(context.Background(), entry(time.Now(), "fp", "m", 1, 1))
				db.Close()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), tt.want)
			after, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			assert.Equal(t, tt.content, after, "the file is left as it was")
		})
	}
}

func TestOpenNewerSchema(t *testing.T) {
	db := openTemp(t)
	_, err := db.db.Exec("PRAGMA user_version = 99")
	require.NoError(t, err)
	db.Close()
	_, err = Open(context.Background(), db.Path(), Options{})
	assert.ErrorIs(t, err, ErrNewerSchema)
}

func TestOpenReadOnlyMissing(t *testing.T) {
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), FileName), Options{ReadOnly: true})
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestTokensOf(t *testing.T) {
	tests := []struct {
		name string
		u    stream.Usage
		want Tokens
	}{
		{"no split", stream.Usage{InputTokens: 1, OutputTokens: 2, CacheCreationInputTokens: 10, CacheReadInputTokens: 4},
			Tokens{Input: 1, Output: 2, CacheWrite5m: 10, CacheRead: 4}},
		{"split", stream.Usage{CacheCreationInputTokens: 10, CacheCreation5m: 4, CacheCreation1h: 6},
			Tokens{CacheWrite5m: 4, CacheWrite1h: 6}},
		{"split only", stream.Usage{CacheCreation5m: 4, CacheCreation1h: 6}, Tokens{CacheWrite5m: 4, CacheWrite1h: 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TokensOf(tt.u)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, got, TokensOf(got.Usage()), "round trip")
			c1, _ := stream.Cost("claude-sonnet-4-5", tt.u)
			c2, _ := stream.Cost("claude-sonnet-4-5", got.Usage())
			assert.InDelta(t, c1, c2, 1e-12, "priced alike")
		})
	}
}

func TestClientFamily(t *testing.T) {
	tests := map[string]string{
		"claude-cli/2.1.3 (external, cli)": "claude-cli",
		"curl/8.5.0":                       "curl",
		"Anthropic/Python 0.49.0":          "anthropic/python",
		"Go-http-client/1.1":               "go-http-client",
		"":                                 "unknown",
		"\x1b[31m<script>":                 "31mscript",
		"pi":                               "pi",
	}
	for ua, want := range tests {
		assert.Equal(t, want, ClientFamily(ua), ua)
	}
}

func TestReport(t *testing.T) {
	db := openTemp(t)
	ctx := context.Background()
	loc := time.FixedZone("IST", 5*3600+1800)
	day1 := time.Date(2026, 11, 27, 23, 50, 0, 0, loc) // two rows at 23:50 and 00:10 local
	rows := []Entry{
		entry(day1, "aaaaaaaaaaaa", "claude-sonnet-4-5", 100, 10),
		entry(day1.Add(20*time.Minute), "aaaaaaaaaaaa", "claude-opus-4-5", 200, 20),
		entry(day1.Add(24*time.Hour), "bbbbbbbbbbbb", "claude-sonnet-4-5", 300, 30),
	}
	rows[2].Label = "personal"
	unpriced := entry(day1.Add(25*time.Hour), "bbbbbbbbbbbb", "mystery", 1, 1)
	unpriced.Priced, unpriced.Label = false, "renamed"
	rows = append(rows, unpriced)
	require.NoError(t, db.RecordAll(ctx, rows))

	tests := []struct {
		name   string
		opts   ReportOptions
		groups []string
		labels []string
		reqs   []int64
	}{
		{"by day", ReportOptions{By: ByDay, Location: loc}, []string{"2026-11-27", "2026-11-28", "2026-11-29"}, []string{"", "", ""}, []int64{1, 2, 1}},
		{"by day UTC", ReportOptions{By: ByDay, Location: time.UTC}, []string{"2026-11-27", "2026-11-28"}, []string{"", ""}, []int64{2, 2}},
		{"by key", ReportOptions{By: ByKey}, []string{"aaaaaaaaaaaa", "bbbbbbbbbbbb"}, []string{"work", "renamed"}, []int64{2, 2}},
		{"by model", ReportOptions{By: ByModel}, []string{"claude-opus-4-5", "claude-sonnet-4-5", "mystery"}, []string{"", "", ""}, []int64{1, 2, 1}},
		{"since", ReportOptions{By: ByModel, Since: day1.Add(time.Minute)}, []string{"claude-opus-4-5", "claude-sonnet-4-5", "mystery"}, []string{"", "", ""}, []int64{1, 1, 1}},
		{"until", ReportOptions{By: ByModel, Until: day1.Add(time.Minute)}, []string{"claude-sonnet-4-5"}, []string{""}, []int64{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := db.Report(ctx, tt.opts)
			require.NoError(t, err)
			var groups, labels []string
			var reqs []int64
			var sum Row
			for _, r := range rep.Rows {
				groups, labels, reqs = append(groups, r.Group), append(labels, r.Label), append(reqs, r.Requests)
				sum.Requests += r.Requests
				sum.Tokens.add(r.Tokens)
				sum.Cost += r.Cost
			}
			assert.Equal(t, tt.groups, groups)
			assert.Equal(t, tt.labels, labels)
			assert.Equal(t, tt.reqs, reqs)
			assert.Equal(t, sum.Requests, rep.Totals.Requests)
			assert.Equal(t, sum.Tokens, rep.Totals.Tokens)
			assert.InDelta(t, sum.Cost, rep.Totals.Cost, 1e-12)
		})
	}
	rep, err := db.Report(ctx, ReportOptions{By: ByModel})
	require.NoError(t, err)
	assert.Equal(t, Tokens{Input: 601, Output: 61, CacheWrite5m: 12, CacheWrite1h: 8, CacheRead: 28}, rep.Totals.Tokens)
	assert.InDelta(t, 660e-6, rep.Totals.Cost, 1e-12, "the unpriced row adds no cost")
	_, err = ParseBy("week")
	assert.Error(t, err)
}

// fill writes n rows spread over a week.
func fill(t testing.TB, db *DB, n int) {
	t.Helper()
	models := []string{"claude-sonnet-4-5", "claude-opus-4-5", "claude-haiku-4-5"}
	now := time.Now()
	batch := make([]Entry, 0, 1000)
	for i := range n {
		e := entry(now.Add(-time.Duration(i)*6*time.Second), fmt.Sprintf("%012d", i%5), models[i%3], int64(i%100), 5)
		if batch = append(batch, e); len(batch) == cap(batch) {
			require.NoError(t, db.RecordAll(context.Background(), batch))
			batch = batch[:0]
		}
	}
	require.NoError(t, db.RecordAll(context.Background(), batch))
}

func TestReport100k(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	// PIAUTH_BENCH_LEDGER names the file to fill (scripts/bench.sh times
	// `piauth usage report` on it); else a temp file.
	path := os.Getenv("PIAUTH_BENCH_LEDGER")
	if path == "" {
		path = filepath.Join(t.TempDir(), FileName)
	}
	db, err := Open(context.Background(), path, Options{})
	require.NoError(t, err)
	defer db.Close()
	fill(t, db, n)
	for _, by := range []By{ByModel, ByDay, ByKey} {
		start := time.Now()
		rep, err := db.Report(context.Background(), ReportOptions{By: by, Since: time.Now().Add(-30 * 24 * time.Hour)})
		require.NoError(t, err)
		t.Logf("report by %s over %d rows: %s", by, n, time.Since(start))
		assert.EqualValues(t, n, rep.Totals.Requests)
	}
}

func BenchmarkRecord(b *testing.B) {
	db := openTemp(b)
	e := entry(time.Now(), "fp", "claude-sonnet-4-5", 1, 1)
	for b.Loop() {
		if err := db.Record(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReportByModel100k(b *testing.B) {
	db := openTemp(b)
	fill(b, db, 100_000)
	for b.Loop() {
		if _, err := db.Report(context.Background(), ReportOptions{By: ByModel}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReportRangesExact checks that whole buckets plus the two edges sum
// exactly what the rows in the range hold, for ranges cut anywhere.
func TestReportRangesExact(t *testing.T) {
	db := openTemp(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var rows []Entry
	for i := range 500 {
		rows = append(rows, entry(base.Add(time.Duration(i*i%7919)*37*time.Second), fmt.Sprint(i%3), fmt.Sprint("m", i%4), int64(i), 1))
	}
	require.NoError(t, db.RecordAll(ctx, rows))
	for k := range 40 {
		since := base.Add(time.Duration(k*k*977) * time.Second)
		until := since.Add(time.Duration(k*5417+1) * time.Second)
		var want Tokens
		var n int64
		for _, e := range rows {
			if !e.Time.Before(since) && e.Time.Before(until) {
				want.add(e.Tokens)
				n++
			}
		}
		for _, by := range []By{ByDay, ByKey, ByModel} {
			rep, err := db.Report(ctx, ReportOptions{Since: since, Until: until, By: by})
			require.NoError(t, err)
			assert.Equal(t, n, rep.Totals.Requests, "%s %s..%s", by, since, until)
			assert.Equal(t, want, rep.Totals.Tokens, "%s %s..%s", by, since, until)
		}
	}
}
