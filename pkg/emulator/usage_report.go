package emulator

import (
	"errors"
	"fmt"
)

// UsageReport scripts the answer of GET /api/oauth/usage. Utilisations are
// PERCENT (0–100), unlike the headers' fractions. A nil window field takes
// its default: five_hour and seven_day from the Unified fractions × 100,
// seven_day_oauth_apps 0, and seven_day_opus/sonnet/fable null.
type UsageReport struct {
	FiveHour          *float64 `json:"five_hour,omitempty"`
	SevenDay          *float64 `json:"seven_day,omitempty"`
	SevenDayOpus      *float64 `json:"seven_day_opus,omitempty"`
	SevenDaySonnet    *float64 `json:"seven_day_sonnet,omitempty"`
	SevenDayFable     *float64 `json:"seven_day_fable,omitempty"`
	SevenDayOAuthApps *float64 `json:"seven_day_oauth_apps,omitempty"`
	// OmitWindows leaves the flat windows out, so that only limits[] carries
	// the utilisation (as the service does for some accounts).
	OmitWindows bool `json:"omit_windows,omitempty"`
	// Limits replace the default limits[] (a session and a weekly_all limit
	// derived from the windows); an empty non-nil list sends [].
	Limits     []Limit     `json:"limits,omitempty"`
	ExtraUsage *ExtraUsage `json:"extra_usage,omitempty"` // default: disabled, all null
}

// Limit is one entry of limits[].
type Limit struct {
	Kind     string  `json:"kind"`               // session | weekly_all | weekly_scoped
	Group    string  `json:"group,omitempty"`    // default: the kind
	Percent  float64 `json:"percent"`            // 0–100
	Severity string  `json:"severity,omitempty"` // default from percent: normal, warning (≥ 80), critical (≥ 100)
	ResetsAt string  `json:"resets_at,omitempty"`
	ResetsIn int     `json:"resets_in,omitempty"` // seconds from now, when resets_at is empty; default the window's reset
	Model    string  `json:"model,omitempty"`     // scope.model.id; display_name from the service's models
	IsActive *bool   `json:"is_active,omitempty"` // default true
}

// ExtraUsage is the extra_usage object (pay-as-you-go credits).
type ExtraUsage struct {
	IsEnabled    bool     `json:"is_enabled"`
	MonthlyLimit *float64 `json:"monthly_limit"`
	UsedCredits  *float64 `json:"used_credits"`
	Utilization  *float64 `json:"utilization"` // percent
}

func validLimitKind(k string) bool {
	switch k {
	case "session", "weekly_all", "weekly_scoped":
		return true
	}
	return false
}

func (u *UsageReport) validate() error {
	if u == nil {
		return nil
	}
	for _, p := range []*float64{u.FiveHour, u.SevenDay, u.SevenDayOpus, u.SevenDaySonnet, u.SevenDayFable, u.SevenDayOAuthApps} {
		if p != nil && *p < 0 {
			return errors.New("utilisation must not be negative")
		}
	}
	for i, l := range u.Limits {
		if !validLimitKind(l.Kind) {
			return fmt.Errorf("limits[%d]: kind %q is not session, weekly_all or weekly_scoped", i, l.Kind)
		}
		if l.Percent < 0 || l.ResetsIn < 0 {
			return fmt.Errorf("limits[%d]: percent and resets_in must not be negative", i)
		}
	}
	return nil
}
