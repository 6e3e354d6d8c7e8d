package emulator

import (
	"net/http"
	"strings"
	"time"
)

// usageTimeFormat is the service's resets_at format (Python isoformat).
const usageTimeFormat = "2006-01-02T15:04:05.000000-07:00"

// handleUsage answers GET /api/oauth/usage in its 2026 shape. It needs a
// Bearer OAuth token, the oauth beta and a claude-code/<version>
// user-agent (else 429 without retry-after). Every call with a token is
// counted in Stats.UsageCalls; a scenario scripts errors (usage_outcomes)
// and the report (usage_report).
func (e *Emulator) handleUsage(w http.ResponseWriter, r *http.Request) {
	tok, ok := bearer(r)
	if !ok || !isOAuth(tok) {
		e.apiError(w, http.StatusUnauthorized, "authentication_error", "OAuth token required", nil)
		return
	}
	noteToken(w, tok)
	e.countToken(tok)
	e.mu.Lock()
	e.stats.UsageCalls[Fingerprint(tok)]++
	e.mu.Unlock()
	if !hasBeta(r, OAuthBeta) {
		e.apiError(w, http.StatusUnauthorized, "authentication_error", msgOAuthNotAllowed, nil)
		return
	}
	if f := e.checkMinted(tok); f != nil {
		e.fail(w, f)
		return
	}
	prefix := e.rules.UsageUserAgentPrefix
	if ua := r.UserAgent(); prefix != "" && (!strings.HasPrefix(ua, prefix) || len(ua) == len(prefix)) {
		e.apiError(w, http.StatusTooManyRequests, "rate_limit_error", e.rules.Messages.UsageUserAgent, nil)
		return
	}
	report := e.scenario.UsageReport
	if i := e.scenario.rule(tok); i >= 0 {
		rule := e.scenario.Tokens[i]
		if rule.UsageReport != nil {
			report = rule.UsageReport
		}
		if n := len(rule.UsageOutcomes); n > 0 {
			out := rule.UsageOutcomes[e.next(e.useq, i, n)]
			if out.DelayMS > 0 {
				if err := e.opts.Sleep(r.Context(), time.Duration(out.DelayMS)*time.Millisecond); err != nil {
					return
				}
			}
			if out.Status != http.StatusOK {
				out.NoLimitHeaders = true // the usage endpoint sends retry-after only
				e.fail(w, e.outcomeFailure(out))
				return
			}
		}
	}
	w.Header().Set("request-id", e.requestID())
	writeJSON(w, http.StatusOK, e.usageBody(tok, report))
}

// usageBody builds the usage answer from report (nil: defaults).
func (e *Emulator) usageBody(tok string, report *UsageReport) map[string]any {
	if report == nil {
		report = &UsageReport{}
	}
	now := e.opts.Now()
	r5, r7 := fiveHourReset(now), sevenDayReset(now)
	five, seven := e.unifiedFor(tok).values()
	five, seven = pct(report.FiveHour, five*100), pct(report.SevenDay, seven*100)
	window := func(util float64, reset time.Time) map[string]any {
		return map[string]any{"utilization": util, "resets_at": e.resetsAt(reset)}
	}
	optional := func(p *float64) any {
		if p == nil {
			return nil
		}
		return window(*p, r7)
	}
	out := map[string]any{"extra_usage": extraUsage(report.ExtraUsage), "limits": e.limits(report, five, seven, r5, r7)}
	if !report.OmitWindows {
		out["five_hour"] = window(five, r5)
		out["seven_day"] = window(seven, r7)
		out["seven_day_opus"] = optional(report.SevenDayOpus)
		out["seven_day_sonnet"] = optional(report.SevenDaySonnet)
		out["seven_day_fable"] = optional(report.SevenDayFable)
		out["seven_day_oauth_apps"] = window(pct(report.SevenDayOAuthApps, 0), r7)
	}
	return out
}

func pct(p *float64, def float64) float64 {
	if p == nil {
		return def
	}
	return *p
}

func extraUsage(x *ExtraUsage) map[string]any {
	if x == nil {
		x = &ExtraUsage{}
	}
	opt := func(p *float64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	return map[string]any{"is_enabled": x.IsEnabled, "monthly_limit": opt(x.MonthlyLimit),
		"used_credits": opt(x.UsedCredits), "utilization": opt(x.Utilization)}
}

// limits builds limits[]: the scripted ones, or a session and a weekly_all
// limit from the windows.
func (e *Emulator) limits(report *UsageReport, five, seven float64, r5, r7 time.Time) []map[string]any {
	ls := report.Limits
	if ls == nil {
		ls = []Limit{{Kind: "session", Percent: five}, {Kind: "weekly_all", Percent: seven}}
	}
	out := make([]map[string]any, 0, len(ls))
	for _, l := range ls {
		reset := r7
		if l.Kind == "session" {
			reset = r5
		}
		if l.ResetsIn > 0 {
			reset = e.opts.Now().Add(time.Duration(l.ResetsIn) * time.Second)
		}
		resetsAt := l.ResetsAt
		if resetsAt == "" {
			resetsAt = e.resetsAt(reset)
		}
		var scope any
		if l.Model != "" {
			name := l.Model
			if m, ok := e.rules.models[l.Model]; ok {
				name = m.DisplayName
			}
			scope = map[string]any{"model": map[string]string{"id": l.Model, "display_name": name}}
		}
		active := true
		if l.IsActive != nil {
			active = *l.IsActive
		}
		out = append(out, map[string]any{
			"kind": l.Kind, "group": cmpOr(l.Group, l.Kind), "percent": l.Percent,
			"severity": cmpOr(l.Severity, severity(l.Percent)), "resets_at": resetsAt,
			"scope": scope, "is_active": active,
		})
	}
	return out
}

func severity(percent float64) string {
	switch {
	case percent >= 100:
		return "critical"
	case percent >= 80:
		return "warning"
	}
	return "normal"
}

// resetsAt formats t the service's way, with its sub-second jitter (< 1 s).
func (e *Emulator) resetsAt(t time.Time) string {
	b := e.randString(3)
	micros := (int(b[0])*62*62 + int(b[1])*62 + int(b[2])) % 1_000_000
	return t.UTC().Add(time.Duration(micros) * time.Microsecond).Format(usageTimeFormat)
}
