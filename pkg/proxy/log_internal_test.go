package proxy

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The text log's latency: milliseconds, microseconds under one.
func TestLogLatency(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, " 200 0s "},
		{45*time.Microsecond + 300, " 200 45µs "},
		{812 * time.Microsecond, " 200 812µs "},
		{999*time.Microsecond + 600, " 200 1ms "},
		{45*time.Millisecond + 600*time.Microsecond, " 200 46ms "},
		{1234567 * time.Microsecond, " 200 1.235s "},
	}
	for _, tt := range tests {
		var log bytes.Buffer
		p := New(Options{Log: &log})
		p.log(&record{Time: time.Unix(0, 0), Method: "POST", Path: "/api/event_logging/batch", Status: 200, Latency: tt.d})
		assert.Contains(t, log.String(), tt.want, "%v", tt.d)
	}
}
