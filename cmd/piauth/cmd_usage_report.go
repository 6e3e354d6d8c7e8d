package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/internal/termsafe"
	"github.com/piauth/piauth/pkg/ledger"
)

// usageReportOptions are the inputs of `piauth usage report`.
type usageReportOptions struct {
	IO         *IOStreams
	LedgerPath func() (string, error) // Factory.LedgerPath
	Now        func() time.Time
	Location   *time.Location // days and dates (time.Local when nil)

	Since, Until string // as given: 7d, 12h, 2026-11-01, RFC 3339; "" = unbounded
	By           string // day, key or model
	JSON         bool
}

// newUsageReportCmd is `piauth usage report`: tokens and cost from the
// local request ledger.
func newUsageReportCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "tokens, requests and cost from the local ledger",
		Description: `Sums the local ledger (every Messages answer piauth chat and piauth proxy
got: $PIAUTH_STATE_DIR/ledger.db, else ~/.local/state/piauth/ledger.db) by day,
key or model: requests, input, output, cache-write (5m, 1h) and cache-read
tokens, and the cost at list prices, with a totals row. --since and --until
take a duration back from now (7d, 36h, 90m), a date (2026-11-01, local
midnight) or an RFC 3339 time; the range is [since, until). Days are local.
PIAUTH_LEDGER=off stops recording; the ledger never holds prompt or answer text.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "since", Value: "7d", Usage: "from `WHEN` (7d, 36h, 2026-11-01, RFC 3339; \"\" = the beginning)"},
			&cli.StringFlag{Name: "until", Usage: "up to `WHEN` (same forms; default now)"},
			&cli.StringFlag{Name: "by", Value: "day", Usage: "group by `day|key|model`"},
			&cli.BoolFlag{Name: "json", Usage: "print {\"rows\": [...], \"totals\": {...}}"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("usage report takes no arguments")
			}
			return usageReportRun(c.Context, &usageReportOptions{
				IO:         f.IO,
				LedgerPath: f.LedgerPath,
				Now:        f.Now,
				Since:      c.String("since"),
				Until:      c.String("until"),
				By:         c.String("by"),
				JSON:       c.Bool("json"),
			})
		},
	}
}

// usageReportRun reads the ledger and prints the report.
func usageReportRun(ctx context.Context, opts *usageReportOptions) error {
	loc := opts.Location
	if loc == nil {
		loc = time.Local
	}
	now := opts.Now().In(loc)
	by, err := ledger.ParseBy(opts.By)
	if err != nil {
		return usagef("--by: %v", err)
	}
	since, err := parseWhen(opts.Since, now)
	if err != nil {
		return usagef("--since: %v", err)
	}
	until, err := parseWhen(opts.Until, now)
	if err != nil {
		return usagef("--until: %v", err)
	}
	path, err := opts.LedgerPath()
	if err != nil {
		return err
	}
	rep := &ledger.Report{By: by, Totals: ledger.Row{Group: "Total"}}
	db, err := ledger.Open(ctx, path, ledger.Options{ReadOnly: true})
	switch {
	case errors.Is(err, fs.ErrNotExist): // nothing recorded yet: an empty report
	case err != nil:
		return err
	default:
		defer db.Close()
		if rep, err = db.Report(ctx, ledger.ReportOptions{Since: since, Until: until, By: by, Location: loc}); err != nil {
			return err
		}
	}
	if opts.JSON {
		return writeReportJSON(opts.IO.Out, rep)
	}
	return writeReportTable(opts.IO.Out, rep)
}

// parseWhen reads a --since/--until value: "" (zero: unbounded), a
// duration back from now (Go syntax plus a d for days: 7d, 1d12h), a date
// (local midnight) or an RFC 3339 time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, now.Location()); err == nil {
		return t, nil
	}
	var days int
	rest := s
	if d, after, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("%q: want a duration (7d, 36h), a date (2026-11-01) or an RFC 3339 time", s)
		}
		days, rest = n, after
	}
	var dur time.Duration
	if rest != "" {
		var err error
		if dur, err = time.ParseDuration(rest); err != nil || dur < 0 {
			return time.Time{}, fmt.Errorf("%q: want a duration (7d, 36h), a date (2026-11-01) or an RFC 3339 time", s)
		}
	}
	return now.AddDate(0, 0, -days).Add(-dur), nil
}

// reportJSON is one row (or the totals) of --json; field names are stable.
type reportJSON struct {
	Day                string  `json:"day,omitempty"`
	Key                string  `json:"key,omitempty"`
	Label              *string `json:"label,omitempty"` // --by key only
	Model              *string `json:"model,omitempty"`
	Requests           int64   `json:"requests"`
	InputTokens        int64   `json:"input_tokens"`
	OutputTokens       int64   `json:"output_tokens"`
	CacheWrite5mTokens int64   `json:"cache_write_5m_tokens"`
	CacheWrite1hTokens int64   `json:"cache_write_1h_tokens"`
	CacheReadTokens    int64   `json:"cache_read_tokens"`
	CostUSD            float64 `json:"cost_usd"`
}

func toJSON(by ledger.By, r ledger.Row, total bool) reportJSON {
	j := reportJSON{Requests: r.Requests, InputTokens: r.Tokens.Input, OutputTokens: r.Tokens.Output,
		CacheWrite5mTokens: r.Tokens.CacheWrite5m, CacheWrite1hTokens: r.Tokens.CacheWrite1h,
		CacheReadTokens: r.Tokens.CacheRead, CostUSD: r.Cost}
	if total {
		return j
	}
	switch by {
	case ledger.ByDay:
		j.Day = r.Group
	case ledger.ByKey:
		j.Key, j.Label = r.Group, &r.Label
	case ledger.ByModel:
		j.Model = &r.Group
	}
	return j
}

// writeReportJSON prints {"rows": [...], "totals": {...}}.
func writeReportJSON(w io.Writer, rep *ledger.Report) error {
	out := struct {
		Rows   []reportJSON `json:"rows"`
		Totals reportJSON   `json:"totals"`
	}{Rows: []reportJSON{}, Totals: toJSON(rep.By, rep.Totals, true)}
	for _, r := range rep.Rows {
		out.Rows = append(out.Rows, toJSON(rep.By, r, false))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// writeReportTable prints the table: one line per group, a rule, the totals.
func writeReportTable(w io.Writer, rep *ledger.Report) error {
	head := []string{strings.ToUpper(string(rep.By[:1])) + string(rep.By[1:])}
	if rep.By == ledger.ByKey {
		head = append(head, "Label")
	}
	lead := len(head) // left-aligned columns
	head = append(head, "Requests", "Input", "Output", "Cache write 5m", "Cache write 1h", "Cache read", "Cost (USD)")
	cells := func(r ledger.Row, total bool) []string {
		row := []string{termsafe.String(dash(r.Group))}
		if rep.By == ledger.ByKey {
			label := ""
			if !total {
				label = termsafe.String(dash(r.Label))
			}
			row = append(row, label)
		}
		t := r.Tokens
		return append(row, groupInt(r.Requests), groupInt(t.Input), groupInt(t.Output), groupInt(t.CacheWrite5m),
			groupInt(t.CacheWrite1h), groupInt(t.CacheRead), "$"+strconv.FormatFloat(r.Cost, 'f', 4, 64))
	}
	table := [][]string{head}
	for _, r := range rep.Rows {
		table = append(table, cells(r, false))
	}
	total := cells(rep.Totals, true)
	widths := make([]int, len(head))
	for _, row := range append(table, total) {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < lead {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		b.WriteString("\n")
	}
	for _, row := range table {
		line(row)
	}
	sum := len(widths)*2 - 2
	for _, w := range widths {
		sum += w
	}
	b.WriteString(strings.Repeat("─", sum) + "\n")
	line(total)
	_, err := io.WriteString(w, b.String())
	return err
}

// dash is s, or "-" when empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupInt formats n with comma thousands separators.
func groupInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
