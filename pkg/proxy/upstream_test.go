package proxy_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/piauth/piauth/pkg/proxy"
)

func TestTuneTransport(t *testing.T) {
	tests := []struct {
		name                      string
		idle, maxInFlight         int
		wantIdle, wantIdlePerHost int
	}{
		{"the default transport's bound grows", 100, 0, proxy.DefaultMaxInFlight, proxy.DefaultMaxInFlight},
		{"no bound stays none", 0, 300, 0, 300},
		{"a larger bound is kept", 1000, 50, 1000, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &http.Transport{MaxIdleConns: tt.idle}
			proxy.TuneTransport(tr, tt.maxInFlight)
			assert.Equal(t, tt.wantIdle, tr.MaxIdleConns)
			assert.Equal(t, tt.wantIdlePerHost, tr.MaxIdleConnsPerHost)
			assert.Equal(t, 1<<10, tr.WriteBufferSize)
			assert.Zero(t, tr.ReadBufferSize, "the read buffer keeps net/http's default")
		})
	}
}
