package emulator

import (
	"net/http"
	"strconv"
	"time"
)

// plan picks the outcome, reply and utilisation for a request with tok,
// consuming one scripted outcome when a scenario rule matches; without a
// rule, a token the emulator did not mint may carry a marker.
func (e *Emulator) plan(tok string) (Outcome, Reply, Unified) {
	sc := e.scenario
	reply := sc.Reply
	unified := (*Unified)(nil).merged(sc.Unified)
	out := Outcome{Status: http.StatusOK}
	if i := sc.rule(tok); i >= 0 {
		rule := sc.Tokens[i]
		reply = reply.merged(rule.Reply)
		unified = unified.merged(rule.Unified)
		if n := len(rule.Outcomes); n > 0 {
			out = rule.Outcomes[e.next(e.seq, i, n)]
		}
		return out, reply, unified
	}
	if _, minted := e.mintedAccess(tok); !minted {
		if m, ok := e.rules.marker(tok, false); ok {
			out = m
		}
	}
	return out, reply, unified
}

// next returns the index of the outcome to use from a sequence of n and
// advances the counter of rule i; the last outcome repeats.
func (e *Emulator) next(seq []int, i, n int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := min(seq[i], n-1)
	seq[i]++
	return k
}

func (e *Emulator) mintedAccess(tok string) (*accessToken, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	at, ok := e.access[tok]
	return at, ok
}

// outcomeFailure turns a scripted error outcome into the answer: a 429
// carries retry-after (default 600) and the rejected unified headers unless
// NoLimitHeaders; UnifiedResetIn names a unified reset; Headers go last.
func (e *Emulator) outcomeFailure(out Outcome) *failure {
	now := e.opts.Now()
	h := http.Header{}
	epoch := func(secs int) string { return strconv.FormatInt(now.Add(time.Duration(secs)*time.Second).Unix(), 10) }
	switch {
	case out.Status == http.StatusTooManyRequests && !out.NoLimitHeaders:
		retry := out.RetryAfter
		if retry <= 0 {
			retry = 600
		}
		reset := epoch(retry)
		h.Set("retry-after", strconv.Itoa(retry))
		h.Set("anthropic-ratelimit-unified-status", "rejected")
		h.Set("anthropic-ratelimit-unified-5h-status", "rejected")
		h.Set("anthropic-ratelimit-unified-5h-utilization", "1.0")
		h.Set("anthropic-ratelimit-unified-5h-reset", reset)
		h.Set("anthropic-ratelimit-unified-reset", reset)
		h.Set("anthropic-ratelimit-unified-representative-claim", "five_hour")
	case out.RetryAfter > 0:
		h.Set("retry-after", strconv.Itoa(out.RetryAfter))
	}
	if out.UnifiedResetIn > 0 {
		reset := epoch(out.UnifiedResetIn)
		h.Set("anthropic-ratelimit-unified-reset", reset)
		h.Set("anthropic-ratelimit-unified-5h-reset", reset)
		if h.Get("anthropic-ratelimit-unified-status") == "" {
			h.Set("anthropic-ratelimit-unified-status", "allowed")
		}
	}
	for k, v := range out.Headers {
		h[http.CanonicalHeaderKey(k)] = []string{v} // "" removes the header
	}
	return &failure{status: out.Status, typ: out.Type, msg: out.Message, code: out.ErrorCode, header: h}
}
