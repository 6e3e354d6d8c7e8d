package emulator

import (
	"net/http"
	"strconv"
	"time"
)

// unifiedFor returns the utilisation configured for tok.
func (e *Emulator) unifiedFor(tok string) Unified {
	u := (*Unified)(nil).merged(e.scenario.Unified)
	if i := e.scenario.rule(tok); i >= 0 {
		u = u.merged(e.scenario.Tokens[i].Unified)
	}
	return u
}

func (u Unified) values() (five, seven float64) {
	five, seven = 0.12, 0.31
	if u.FiveHour != nil {
		five = *u.FiveHour
	}
	if u.SevenDay != nil {
		seven = *u.SevenDay
	}
	return five, seven
}

func fiveHourReset(now time.Time) time.Time { return now.Add(5 * time.Hour).Truncate(time.Hour) }
func sevenDayReset(now time.Time) time.Time { return now.Add(7 * 24 * time.Hour).Truncate(time.Hour) }

// setUnified writes the subscription rate-limit headers of a healthy answer.
func setUnified(h http.Header, u Unified, now time.Time) {
	five, seven := u.values()
	status := u.Status
	if status == "" {
		status = "allowed"
	}
	r5 := strconv.FormatInt(fiveHourReset(now).Unix(), 10)
	r7 := strconv.FormatInt(sevenDayReset(now).Unix(), 10)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	h.Set("anthropic-ratelimit-unified-status", status)
	h.Set("anthropic-ratelimit-unified-5h-status", status)
	h.Set("anthropic-ratelimit-unified-5h-utilization", f(five))
	h.Set("anthropic-ratelimit-unified-5h-reset", r5)
	h.Set("anthropic-ratelimit-unified-7d-status", "allowed")
	h.Set("anthropic-ratelimit-unified-7d-utilization", f(seven))
	h.Set("anthropic-ratelimit-unified-7d-reset", r7)
	h.Set("anthropic-ratelimit-unified-reset", r5)
	h.Set("anthropic-ratelimit-unified-representative-claim", "five_hour")
	h.Set("anthropic-ratelimit-unified-fallback-percentage", "0.5")
	h.Set("anthropic-ratelimit-unified-overage-status", "rejected")
}
