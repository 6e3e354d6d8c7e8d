// Package usage reads the subscription windows of a Claude account from
// Anthropic's usage endpoint (GET /api/oauth/usage, 2026 shape), caches the
// answers in piauth's state dir and renders them as bars. It never marks or
// cools a key: a refusal of the usage endpoint says nothing about a key's
// use for requests.
package usage

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Window is one rate-limit window an account reported.
type Window struct {
	// Name is the window's stable name: "five_hour", "seven_day",
	// "seven_day_opus" (a flat per-model window), or "seven_day:MODEL-ID"
	// for a per-model weekly cap of limits[].
	Name string `json:"name"`
	// Label is the short name shown before the bar: "5h", "7d", "7d Opus 5.5".
	Label string `json:"label"`
	// Utilization is a PERCENT (0–100, may exceed 100), as the endpoint
	// reports it (the unified headers carry a fraction).
	Utilization float64 `json:"utilization"`
	// ResetsAt is when the window resets; zero when not reported.
	ResetsAt time.Time `json:"resets_at"`
}

// ExtraUsage is the account's pay-as-you-go credit status.
// The pointers are nil where the endpoint sends null.
type ExtraUsage struct {
	IsEnabled    bool     `json:"is_enabled"`    // extra usage is switched on
	MonthlyLimit *float64 `json:"monthly_limit"` // the month's spending limit
	UsedCredits  *float64 `json:"used_credits"`  // spent this month
	Utilization  *float64 `json:"utilization"`   // percent of the limit spent
}

// Report is one answer of the usage endpoint, reduced to what piauth shows.
type Report struct {
	Windows    []Window    `json:"windows"`
	ExtraUsage *ExtraUsage `json:"extra_usage"`
}

// Window returns the window called name, and whether the report has it.
func (r *Report) Window(name string) (Window, bool) {
	if r != nil {
		for _, w := range r.Windows {
			if w.Name == name {
				return w, true
			}
		}
	}
	return Window{}, false
}

type rawWindow struct {
	Utilization *float64 `json:"utilization"`
	ResetsAt    string   `json:"resets_at"`
}

type rawLimit struct {
	Kind     string   `json:"kind"`
	Percent  *float64 `json:"percent"`
	ResetsAt string   `json:"resets_at"`
	IsActive *bool    `json:"is_active"`
	Scope    *struct {
		Model *struct {
			ID          string `json:"id"`
			DisplayName string `json:"display_name"`
		} `json:"model"`
	} `json:"scope"`
}

// flatWindows are the flat windows shown, in order, with their labels.
func flatWindows() []struct{ name, label string } {
	return []struct{ name, label string }{
		{"five_hour", "5h"}, {"seven_day", "7d"},
		{"seven_day_opus", "7d opus"}, {"seven_day_sonnet", "7d sonnet"}, {"seven_day_fable", "7d fable"},
	}
}

// Parse reads an answer of the usage endpoint. The flat windows come first
// (five_hour, seven_day, then any non-null per-model one); when a flat
// five_hour or seven_day is absent, limits[]'s session or weekly_all limit
// stands in; then each per-model weekly cap of limits[] (weekly_scoped with
// a model scope). An inactive limit is left out.
func Parse(data []byte) (*Report, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("usage answer: %w", err)
	}
	var limits []rawLimit
	if raw, ok := doc["limits"]; ok {
		if err := json.Unmarshal(raw, &limits); err != nil {
			return nil, fmt.Errorf("usage answer: limits: %w", err)
		}
	}
	r := &Report{Windows: []Window{}}
	for _, fw := range flatWindows() {
		var w *rawWindow
		if raw, ok := doc[fw.name]; ok {
			if err := json.Unmarshal(raw, &w); err != nil {
				return nil, fmt.Errorf("usage answer: %s: %w", fw.name, err)
			}
		}
		if w != nil && w.Utilization != nil {
			r.Windows = append(r.Windows, Window{Name: fw.name, Label: fw.label, Utilization: *w.Utilization, ResetsAt: parseTime(w.ResetsAt)})
			continue
		}
		kind := map[string]string{"five_hour": "session", "seven_day": "weekly_all"}[fw.name]
		for _, l := range limits {
			if kind != "" && l.Kind == kind && active(l) && l.Percent != nil {
				r.Windows = append(r.Windows, Window{Name: fw.name, Label: fw.label, Utilization: *l.Percent, ResetsAt: parseTime(l.ResetsAt)})
				break
			}
		}
	}
	for _, l := range limits {
		if l.Kind != "weekly_scoped" || !active(l) || l.Percent == nil || l.Scope == nil || l.Scope.Model == nil || l.Scope.Model.ID == "" {
			continue
		}
		m := l.Scope.Model
		r.Windows = append(r.Windows, Window{Name: "seven_day:" + m.ID, Label: "7d " + cmpOr(m.DisplayName, m.ID),
			Utilization: *l.Percent, ResetsAt: parseTime(l.ResetsAt)})
	}
	if raw, ok := doc["extra_usage"]; ok {
		if err := json.Unmarshal(raw, &r.ExtraUsage); err != nil {
			return nil, fmt.Errorf("usage answer: extra_usage: %w", err)
		}
	}
	return r, nil
}

func active(l rawLimit) bool { return l.IsActive == nil || *l.IsActive }

// parseTime reads the endpoint's resets_at (Python isoformat, with or
// without fractional seconds); zero when absent or unreadable.
func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Second) // the service jitters it by < 2 s
		}
	}
	return time.Time{}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
