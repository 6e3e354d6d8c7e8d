package when

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{time.Millisecond, "1s"}, // rounded up: never "over" early
		{45 * time.Second, "45s"},
		{59*time.Second + time.Millisecond, "1m"},
		{10 * time.Minute, "10m"},
		{9*time.Minute + 55*time.Second, "9m55s"},
		{2 * time.Hour, "2h"},
		{2*time.Hour + 13*time.Minute + 40*time.Second, "2h13m"},
		{24 * time.Hour, "1d"},
		{3*24*time.Hour + 4*time.Hour + 5*time.Minute, "3d4h"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, Duration(tt.d))
		})
	}
}

func TestLatency(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{45*time.Microsecond + 300, "45µs"},
		{812 * time.Microsecond, "812µs"},
		{999*time.Microsecond + 600, "1ms"},
		{45*time.Millisecond + 600*time.Microsecond, "46ms"},
		{1234567 * time.Microsecond, "1.235s"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Latency(tt.d), "%v", tt.d)
	}
}

func TestClockAndUntil(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, loc)
	tests := []struct {
		name       string
		t          time.Time
		clock, rel string
	}{
		{"same day", now.Add(17*time.Minute + 20*time.Second), "08:17:20", "08:17:20 (in 17m20s)"},
		{"other zone same instant", now.Add(time.Hour).UTC(), "09:00:00", "09:00:00 (in 1h)"},
		{"next day", now.Add(20 * time.Hour), "Dec 2 04:00:00", "Dec 2 04:00:00 (in 20h)"},
		{"past", now.Add(-2 * time.Hour), "06:00:00", "06:00:00 (2h ago)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.clock, Clock(tt.t, now))
			assert.Equal(t, tt.rel, Until(tt.t, now))
		})
	}
}

func TestSleep(t *testing.T) {
	assert.NoError(t, Sleep(context.Background(), time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled)
	assert.ErrorIs(t, Sleep(ctx, 0), context.Canceled)
}
