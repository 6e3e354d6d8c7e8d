package usage

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/secret"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		want  []Window
		extra bool
	}{
		{"flat windows (percent)", `{"five_hour": {"utilization": 19.0, "resets_at": "2026-11-25T22:00:00.288792+00:00"},
			"seven_day": {"utilization": 41.0, "resets_at": "2026-11-30T10:00:00+00:00"}, "seven_day_opus": null,
			"extra_usage": {"is_enabled": true, "monthly_limit": null, "used_credits": null, "utilization": null}}`,
			[]Window{{"five_hour", "5h", 19, time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)},
				{"seven_day", "7d", 41, time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}}, true},
		{"limits[] only, inactive ones left out", `{"limits": [
			{"kind": "session", "percent": 100, "resets_at": "2026-11-25T22:00:00+00:00"},
			{"kind": "weekly_scoped", "percent": 85, "scope": {"model": {"id": "claude-opus-5-5", "display_name": "Claude Opus 5.5"}}},
			{"kind": "weekly_scoped", "percent": 5, "is_active": false, "scope": {"model": {"id": "claude-haiku-5-5"}}},
			{"kind": "weekly_all", "percent": 41}]}`,
			[]Window{{"five_hour", "5h", 100, time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)},
				{"seven_day", "7d", 41, time.Time{}}, {"seven_day:claude-opus-5-5", "7d Claude Opus 5.5", 85, time.Time{}}}, false},
		{"nothing reported", `{}`, []Window{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.body))
			require.NoError(t, err)
			assert.Equal(t, tt.want, r.Windows)
			assert.Equal(t, tt.extra, r.ExtraUsage != nil && r.ExtraUsage.IsEnabled)
		})
	}
	_, err := Parse([]byte(`{"five_hour": 3}`))
	assert.Error(t, err)
}

func TestRender(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 20, 0, 0, time.UTC)
	assert.Equal(t, "███████░░░", Bar(72, 10))
	assert.Equal(t, "██████████", Bar(130, 10), "over 100 % is a full bar")
	assert.Equal(t, "░░░░░░░░░░", Bar(-3, 10))
	lines := Lines([]Window{{Label: "5h", Utilization: 72, ResetsAt: now.Add(2*time.Hour + 10*time.Minute)},
		{Label: "7d opus", Utilization: 5}}, now, nil)
	assert.Equal(t, []string{"5h       ███████░░░   72%  resets 14:30:00 (in 2h10m)", "7d opus  █░░░░░░░░░    5%"}, lines)
	assert.Equal(t, "5h 72% · 7d 41%", Short(&Report{Windows: []Window{{Name: "five_hour", Label: "5h", Utilization: 72}, {Name: "seven_day", Label: "7d", Utilization: 41}}}))
	fifty, used, pct := 50.0, 12.5, 25.0
	assert.Equal(t, "extra usage: on, 12.5 of 50 used this month (25%)", ExtraText(&ExtraUsage{IsEnabled: true, MonthlyLimit: &fifty, UsedCredits: &used, Utilization: &pct}))
	assert.Equal(t, "extra usage: off", ExtraText(&ExtraUsage{}))
}

// server answers the usage endpoint with the scripted statuses in turn
// (then 200), checking the headers.
func server(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1) - 1
		assert.Equal(t, Path, r.URL.Path)
		assert.True(t, strings.HasPrefix(r.Header.Get("Authorization"), "Bearer tok-"), "the account's token")
		assert.Equal(t, OAuthBeta, r.Header.Get("anthropic-beta"))
		assert.Equal(t, "claude-code/2.1.300", r.UserAgent())
		if int(i) < len(statuses) && statuses[i] != 200 {
			w.Header().Set("retry-after", "1")
			w.WriteHeader(statuses[i])
			_, _ = w.Write([]byte(`{"type":"error","error":{"type":"rate_limit_error","message":"Rate limited."}}`))
			return
		}
		_, _ = w.Write([]byte(`{"five_hour": {"utilization": 19, "resets_at": "2026-12-01T14:00:00+00:00"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func newFetcher(t *testing.T, url string, now *time.Time) (*Fetcher, *[]time.Duration) {
	var slept []time.Duration
	var mu sync.Mutex
	return &Fetcher{
		Client: &Client{HTTP: http.DefaultClient, BaseURL: url, Version: "2.1.300", Now: func() time.Time { return *now }},
		Cache:  &Cache{Path: filepath.Join(t.TempDir(), "state", CacheFileName)},
		Now:    func() time.Time { return *now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			slept = append(slept, d)
			return ctx.Err()
		},
	}, &slept
}

// acct is an Account whose token is tok as stored.
func acct(tok string) Account {
	return Account{Fingerprint: secret.Fingerprint(tok), Token: func(context.Context) (string, error) { return tok, nil }}
}

func TestFetcherKeysARefreshedTokenByItsNewFingerprint(t *testing.T) {
	srv, calls := server(t)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	f, _ := newFetcher(t, srv.URL, &now)
	old := Account{Fingerprint: secret.Fingerprint("tok-old"), Token: func(context.Context) (string, error) { return "tok-new", nil }}
	require.NoError(t, f.Fetch(context.Background(), []Account{old}, false)[0].Err)
	res := f.Fetch(context.Background(), []Account{acct("tok-new")}, false)
	assert.True(t, res[0].Cached, "the pool now holds the new token: its answer is cached")
	assert.EqualValues(t, 1, calls.Load())
}

func TestFetcherCache(t *testing.T) {
	srv, calls := server(t)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	f, _ := newFetcher(t, srv.URL, &now)
	accts := []Account{acct("tok-a"), acct("tok-b")}

	res := f.Fetch(context.Background(), accts, false)
	require.Len(t, res, 2)
	for _, r := range res {
		require.NoError(t, r.Err)
		assert.False(t, r.Cached)
		assert.Equal(t, 19.0, r.Report.Windows[0].Utilization)
	}
	assert.EqualValues(t, 2, calls.Load(), "both asked, concurrently")

	now = now.Add(59 * time.Second)
	res = f.Fetch(context.Background(), accts, false)
	assert.True(t, res[0].Cached)
	assert.EqualValues(t, 2, calls.Load(), "fresh answers come from the cache")

	res = f.Fetch(context.Background(), accts[:1], true)
	assert.False(t, res[0].Cached, "fresh asks past the cache")
	assert.EqualValues(t, 3, calls.Load())

	fi, err := os.Stat(f.Cache.Path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	data, err := os.ReadFile(f.Cache.Path)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "tok-a", "never a token in the cache")
}

func TestFetcherRetryAfter(t *testing.T) {
	t.Run("a short retry-after is slept through, once", func(t *testing.T) {
		srv, calls := server(t, 429)
		now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		f, slept := newFetcher(t, srv.URL, &now)
		f.Jitter = func(max time.Duration) time.Duration { return max / 2 }
		res := f.Fetch(context.Background(), []Account{acct("tok-a")}, false)
		require.NoError(t, res[0].Err)
		assert.EqualValues(t, 2, calls.Load())
		assert.Equal(t, []time.Duration{125 * time.Millisecond, time.Second + 125*time.Millisecond}, *slept, "jitter before the request and on the retry")
	})
	t.Run("a long one is recorded and honoured", func(t *testing.T) {
		srv, calls := server(t, 429, 429)
		now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		f, _ := newFetcher(t, srv.URL, &now)
		f.MaxWait = time.Millisecond
		acct := []Account{acct("tok-a")}
		res := f.Fetch(context.Background(), acct, false)
		var ae *Error
		require.ErrorAs(t, res[0].Err, &ae)
		assert.Equal(t, 429, ae.Status)
		assert.Equal(t, time.Second, ae.RetryAfter)
		res = f.Fetch(context.Background(), acct, true)
		var we *WaitError
		require.ErrorAs(t, res[0].Err, &we)
		assert.EqualValues(t, 1, calls.Load(), "not asked again inside retry-after, even when fresh")
		now = now.Add(2 * time.Second)
		res = f.Fetch(context.Background(), acct, false)
		assert.EqualValues(t, 2, calls.Load())
	})
}

func TestRefused(t *testing.T) {
	srv, _ := server(t, 401)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	f, _ := newFetcher(t, srv.URL, &now)
	res := f.Fetch(context.Background(), []Account{acct("tok-a")}, false)
	assert.True(t, IsRefused(res[0].Err))
	assert.Nil(t, res[0].Report)
}
