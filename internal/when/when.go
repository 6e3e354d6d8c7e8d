// Package when is the one place piauth turns times and durations into text
// for humans, and the one context-aware sleep. Every command, log line and
// error message that shows a cooldown, an expiry or a wait uses it, so one
// moment always reads the same way.
package when

import (
	"context"
	"fmt"
	"time"
)

// Duration renders d rounded up to the second (a cooldown never reads as
// over early), without zero tails: 45s, 10m, 9m55s, 2h, 2h13m, 3d4h. Seconds
// are dropped from an hour or more, minutes from a day or more. Negative
// durations read as 0s.
func Duration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	d = (d + time.Second - 1).Truncate(time.Second)
	days, h := int(d/(24*time.Hour)), int(d/time.Hour)%24
	m, s := int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case days > 0 && h > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case days > 0:
		return fmt.Sprintf("%dd", days)
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

// Latency renders a measured time, such as a request's in a log line: to
// the millisecond (46ms, 1.235s), and to the microsecond under one (45µs),
// so what is answered locally does not read as 0s.
func Latency(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// Clock renders t in now's location as a time of day ("15:04:05"), with the
// date in front ("Jan 2 15:04:05") when t is not on now's day.
func Clock(t, now time.Time) string {
	t = t.In(now.Location())
	if y, m, d := t.Date(); y != now.Year() || m != now.Month() || d != now.Day() {
		return t.Format("Jan 2 15:04:05")
	}
	return t.Format("15:04:05")
}

// Until renders a moment relative to now: "15:04:05 (in 9m55s)", or
// "15:04:05 (2h ago)" once it has passed.
func Until(t, now time.Time) string {
	if d := t.Sub(now); d < 0 {
		return fmt.Sprintf("%s (%s ago)", Clock(t, now), Duration(-d))
	}
	return fmt.Sprintf("%s (in %s)", Clock(t, now), Duration(t.Sub(now)))
}

// Sleep waits d or until ctx is done, whichever comes first; it returns
// ctx.Err() when ctx ended the wait.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
