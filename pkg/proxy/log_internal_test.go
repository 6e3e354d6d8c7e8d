package proxy

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The text log prints a request's latency with when.Latency: a local
// answer reads in microseconds, not 0s.
func TestLogLatency(t *testing.T) {
	var log bytes.Buffer
	p := New(Options{Log: &log})
	p.log(&record{Time: time.Unix(0, 0), Method: "POST", Path: "/api/event_logging/batch", Status: 200, Latency: 45*time.Microsecond + 300})
	assert.Contains(t, log.String(), `POST "/api/event_logging/batch" 200 45µs `)
}
