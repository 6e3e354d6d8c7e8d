package rotate

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrAllKeysLimited is matched (errors.Is) by *AllLimitedError: every
	// usable key of the pool is cooling down.
	ErrAllKeysLimited = errors.New("all keys are rate-limited")
	// ErrNoUsableKey means the pool has no key left to try that is not
	// cooling down: it is empty, or its keys need a new login or failed.
	ErrNoUsableKey = errors.New("no usable key")
)

// AllLimitedError reports that every usable key is cooling down.
type AllLimitedError struct {
	N      int       // keys cooling down
	FreeAt time.Time // when the first of them becomes usable again
	// At is when the error was made; the "(in …)" of Error is FreeAt-At
	// (time.Now when zero).
	At time.Time
}

// Error reads "all N keys are rate-limited; first one frees at 18:04:05 (in 9m55s)".
func (e *AllLimitedError) Error() string {
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	when := clock(e.FreeAt, at, "15:04:05")
	if e.N == 1 {
		return fmt.Sprintf("the only usable key is rate-limited; it frees at %s (in %s)", when, FormatDuration(e.FreeAt.Sub(at)))
	}
	return fmt.Sprintf("all %d keys are rate-limited; first one frees at %s (in %s)", e.N, when, FormatDuration(e.FreeAt.Sub(at)))
}

// Is makes errors.Is(err, ErrAllKeysLimited) true.
func (e *AllLimitedError) Is(target error) bool { return target == ErrAllKeysLimited }

// clock formats t with layout, prefixed with the date when t is not on the
// same day as now.
func clock(t, now time.Time, layout string) string {
	if y, m, d := t.Date(); y != now.Year() || m != now.Month() || d != now.Day() {
		return t.Format("Jan 2 " + layout)
	}
	return t.Format(layout)
}

// FormatDuration renders d rounded to the second without zero tails:
// 30s, 10m, 9m55s, 2h, 2h13m (seconds are dropped from an hour or more).
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case h > 0 && m > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case h > 0:
		return fmt.Sprintf("%dh", h)
	case m > 0 && s > 0:
		return fmt.Sprintf("%dm%ds", m, s)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%ds", s)
}
