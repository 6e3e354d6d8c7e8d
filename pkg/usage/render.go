package usage

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/piauth/piauth/internal/when"
)

// BarWidth is the number of cells of a bar.
const BarWidth = 10

// Bar renders percent (0–100) as width cells: "███████░░░" for 72.
func Bar(percent float64, width int) string {
	if math.IsNaN(percent) {
		percent = 0
	}
	full := int(math.Round(math.Max(0, math.Min(percent, 100)) / 100 * float64(width)))
	return strings.Repeat("█", full) + strings.Repeat("░", width-full)
}

// Paint colours a bar by its percent; nil leaves it plain.
type Paint func(percent float64, s string) string

// Lines renders windows one per line, labels aligned:
// "5h  ███████░░░  72%  resets 14:30:00 (in 2h10m)".
func Lines(ws []Window, now time.Time, paint Paint) []string {
	width := 0
	for _, w := range ws {
		width = max(width, len([]rune(w.Label)))
	}
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		bar := Bar(w.Utilization, BarWidth)
		if paint != nil {
			bar = paint(w.Utilization, bar)
		}
		line := fmt.Sprintf("%-*s  %s  %3.0f%%", width+len(w.Label)-len([]rune(w.Label)), w.Label, bar, w.Utilization)
		if !w.ResetsAt.IsZero() {
			line += "  resets " + when.Until(w.ResetsAt, now)
		}
		out = append(out, line)
	}
	return out
}

// Short renders the 5-hour and weekly figures in one phrase: "5h 72% · 7d
// 41%"; "" when the report has neither.
func Short(r *Report) string {
	var parts []string
	for _, name := range []string{"five_hour", "seven_day"} {
		if w, ok := r.Window(name); ok {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", w.Label, w.Utilization))
		}
	}
	return strings.Join(parts, " · ")
}

// ExtraText renders the extra-usage status: "extra usage: off", "extra
// usage: on, 12.5 of 50 used (25%)"; "" when not reported.
func ExtraText(x *ExtraUsage) string {
	switch {
	case x == nil:
		return ""
	case !x.IsEnabled:
		return "extra usage: off"
	}
	s := "extra usage: on"
	if x.UsedCredits != nil && x.MonthlyLimit != nil {
		s += fmt.Sprintf(", %g of %g used this month", *x.UsedCredits, *x.MonthlyLimit)
	} else if x.UsedCredits != nil {
		s += fmt.Sprintf(", %g used this month", *x.UsedCredits)
	}
	if x.Utilization != nil {
		s += fmt.Sprintf(" (%.0f%%)", *x.Utilization)
	}
	return s
}
