package retryafter

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		h     map[string]string
		limit time.Duration
		want  time.Duration
		ok    bool
	}{
		{"none", nil, 0, 0, false},
		{"seconds", map[string]string{"retry-after": "12"}, 0, 12 * time.Second, true},
		{"fractional seconds", map[string]string{"retry-after": "1.5"}, 0, 1500 * time.Millisecond, true},
		{"ms wins", map[string]string{"retry-after-ms": "250", "retry-after": "9"}, 0, 250 * time.Millisecond, true},
		{"bad ms falls back", map[string]string{"retry-after-ms": "x", "retry-after": "9"}, 0, 9 * time.Second, true},
		{"http date", map[string]string{"retry-after": now.Add(90 * time.Second).Format(http.TimeFormat)}, 0, 90 * time.Second, true},
		{"past date", map[string]string{"retry-after": now.Add(-time.Minute).Format(http.TimeFormat)}, 0, 0, false},
		{"capped", map[string]string{"retry-after": "7999"}, 30 * time.Second, 30 * time.Second, true},
		{"huge without limit", map[string]string{"retry-after": "1e12"}, 0, 24 * time.Hour, true},
		{"NaN", map[string]string{"retry-after": "NaN"}, 0, 0, false},
		{"ms NaN", map[string]string{"retry-after-ms": "NaN"}, 0, 0, false},
		{"+Inf", map[string]string{"retry-after": "+Inf"}, time.Minute, time.Minute, true},
		{"ms 1e30", map[string]string{"retry-after-ms": "1e30"}, time.Hour, time.Hour, true},
		{"ms 1e400 overflows", map[string]string{"retry-after-ms": "1e400"}, time.Hour, time.Hour, true},
		{"zero", map[string]string{"retry-after": "0"}, 0, 0, false},
		{"negative", map[string]string{"retry-after": "-5"}, 0, 0, false},
		{"garbage", map[string]string{"retry-after": "soon"}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.h {
				h.Set(k, v)
			}
			d, ok := Parse(h, now, tt.limit)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, d)
		})
	}
}
