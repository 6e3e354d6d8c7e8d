package spinner

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSpinner(t *testing.T) {
	var b syncBuffer
	s := Start(&b, "waiting")
	assert.True(t, strings.HasPrefix(b.String(), "\r⠋ waiting"), "the first frame is drawn at once: %q", b.String())
	s.Stop()
	out := b.String()
	assert.True(t, strings.HasSuffix(out, "\r\x1b[K"), "the line is erased: %q", out)
	s.Stop()
	assert.Equal(t, out, b.String(), "nothing is drawn after Stop")
}
