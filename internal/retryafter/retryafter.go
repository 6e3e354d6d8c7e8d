// Package retryafter reads how long a server asks a client to wait:
// retry-after-ms, then retry-after (seconds or an HTTP date). It is the one
// parser of those headers for the token endpoint and the Messages API, and it
// never returns a wait that is negative, NaN or infinite.
package retryafter

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Parse returns the wait the headers ask for, measured from now, capped at
// limit (limit ≤ 0 means no cap). ok is false when neither header holds a
// usable value: absent, unparseable, NaN, zero or negative, or an HTTP date
// not after now. An infinite or absurdly large value is a wait of limit (of
// 24 h when there is no limit), never a failure: the server did ask to wait.
func Parse(h http.Header, now time.Time, limit time.Duration) (d time.Duration, ok bool) {
	ceiling := limit
	if ceiling <= 0 {
		ceiling = 24 * time.Hour
	}
	if v := strings.TrimSpace(h.Get("retry-after-ms")); v != "" {
		if d, ok := seconds(v, 1e-3, ceiling); ok {
			return d, true
		}
	}
	v := strings.TrimSpace(h.Get("retry-after"))
	if v == "" {
		return 0, false
	}
	if d, ok := seconds(v, 1, ceiling); ok {
		return d, true
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return 0, false // a number, but not a usable one
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), ceiling), true
	}
	return 0, false
}

// seconds parses v as a number of units (unit in seconds) and bounds it.
func seconds(v string, unit float64, ceiling time.Duration) (time.Duration, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	if math.IsNaN(f) || f <= 0 {
		return 0, false
	}
	if s := f * unit; s < ceiling.Seconds() {
		return time.Duration(s * float64(time.Second)), true
	}
	return ceiling, true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}
