package rotate

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/piauth/piauth/internal/retryafter"
)

// Cooldown bounds.
const (
	// DefaultCooldown applies to a rate limit that names no reset time.
	DefaultCooldown = 60 * time.Second
	// OverloadedCooldown applies to an overloaded answer without retry-after.
	OverloadedCooldown = 30 * time.Second
	// MaxCooldown caps every cooldown.
	MaxCooldown = 24 * time.Hour
)

const unifiedPrefix = "anthropic-ratelimit-unified-"

// maxUtilization bounds a reported utilisation (a fraction that may exceed
// 1): a header saying Inf must not poison the stored state.
const maxUtilization = 100

// Cooldown returns when a key that failed with class and response headers h
// becomes usable again: retry-after (seconds or an HTTP date, or
// retry-after-ms) when present; for an overloaded answer at most 30 s;
// else the latest reset among the unified windows whose status is rejected;
// else anthropic-ratelimit-unified-reset; else now+60 s. The result is capped
// at now+24 h and in now's location. Times not after now are ignored.
func Cooldown(h http.Header, class Class, now time.Time) time.Time {
	limit := now.Add(MaxCooldown)
	capped := func(t time.Time) time.Time {
		if t.After(limit) {
			return limit
		}
		return t.In(now.Location())
	}
	if class == ClassOverloaded {
		// A busy service: short, whatever the headers say (a unified reset
		// on a 529 is the account's window, not the overload's).
		if d, ok := retryafter.Parse(h, now, OverloadedCooldown); ok {
			return now.Add(d)
		}
		return now.Add(OverloadedCooldown)
	}
	if d, ok := retryafter.Parse(h, now, MaxCooldown); ok {
		return capped(now.Add(d))
	}
	var latest time.Time
	for _, w := range unifiedWindows(h, "-status") {
		if !strings.EqualFold(h.Get(unifiedPrefix+w+"-status"), "rejected") {
			continue
		}
		if t, ok := epochHeader(h, unifiedPrefix+w+"-reset"); ok && t.After(latest) {
			latest = t
		}
	}
	if latest.After(now) {
		return capped(latest)
	}
	if t, ok := epochHeader(h, unifiedPrefix+"reset"); ok && t.After(now) {
		return capped(t)
	}
	return now.Add(DefaultCooldown)
}

// epochHeader parses a header holding epoch seconds (or an RFC 3339 time).
func epochHeader(h http.Header, name string) (time.Time, bool) {
	v := strings.TrimSpace(h.Get(name))
	if v == "" {
		return time.Time{}, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(s, 0), true
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// unifiedWindows lists the windows w (5h, 7d, 7d_opus…) that have an
// anthropic-ratelimit-unified-<w><suffix> header. "overage" is not a window.
func unifiedWindows(h http.Header, suffix string) []string {
	var ws []string
	for name := range h {
		rest, ok := strings.CutPrefix(strings.ToLower(name), unifiedPrefix)
		if !ok || !strings.HasSuffix(rest, suffix) {
			continue
		}
		w := strings.TrimSuffix(rest, suffix)
		if w == "" || w == "overage" {
			continue
		}
		ws = append(ws, w)
	}
	return ws
}

// Unified is the subscription rate-limit state an answer reported.
type Unified struct {
	Status      string    // allowed, allowed_warning or rejected
	Utilization float64   // highest window utilisation (a fraction, may exceed 1)
	FiveHour    float64   // the 5-hour window's utilisation (0 when not reported)
	Reset       time.Time // anthropic-ratelimit-unified-reset; zero when absent
}

// ParseUnified reads the anthropic-ratelimit-unified-* headers of an answer.
// ok is false when the answer carried no unified status (API keys).
func ParseUnified(h http.Header) (u Unified, ok bool) {
	u.Status = strings.TrimSpace(h.Get(unifiedPrefix + "status"))
	if u.Status == "" {
		return Unified{}, false
	}
	for _, w := range unifiedWindows(h, "-utilization") {
		v := strings.TrimSpace(h.Get(unifiedPrefix + w + "-utilization"))
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0) { // NaN and negatives say nothing
			continue
		}
		f = min(f, maxUtilization) // Inf is bounded
		u.Utilization = max(u.Utilization, f)
		if w == "5h" {
			u.FiveHour = f
		}
	}
	u.Reset, _ = epochHeader(h, unifiedPrefix+"reset")
	return u, true
}
