package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// By is what a report groups by.
type By string

// Groupings of a report.
const (
	ByDay   By = "day"   // calendar day in ReportOptions.Location
	ByKey   By = "key"   // key fingerprint
	ByModel By = "model" // model id
)

// ParseBy checks a --by value.
func ParseBy(s string) (By, error) {
	switch b := By(s); b {
	case ByDay, ByKey, ByModel:
		return b, nil
	}
	return "", fmt.Errorf("unknown grouping %q (want day, key or model)", s)
}

// bucketMs is the span of a row of the buckets table: every time zone's
// offset is a multiple of 15 minutes, so a bucket never straddles a local
// midnight and days are folded from buckets exactly.
const bucketMs = 15 * 60 * 1000

// maxTime bounds an open-ended report.
const maxTime = int64(1) << 60

// ReportOptions select and group a report's rows.
type ReportOptions struct {
	Since, Until time.Time      // [Since, Until); zero: unbounded
	By           By             // ByDay when ""
	Location     *time.Location // days of ByDay (time.Local when nil)
}

// Row is one group of a report (or its totals).
type Row struct {
	Group    string // the day (YYYY-MM-DD), the fingerprint or the model
	Label    string // ByKey: the key's latest label
	Requests int64
	Tokens   Tokens
	Cost     float64 // USD, over the rows with known prices
}

// Report is the grouped rows, in ascending order of Group, and their totals.
type Report struct {
	By     By
	Rows   []Row
	Totals Row
}

// groupColumns are the grouping expressions over buckets and requests.
var groupColumns = map[By][2]string{
	ByDay:   {"bucket", "ts / " + strconv.Itoa(bucketMs)},
	ByKey:   {"fingerprint", "fingerprint"},
	ByModel: {"model", "model"},
}

// Report sums the ledger's rows in the time range, grouped as asked. Whole
// 15-minute buckets come from the buckets table, the range's two partial
// edges from the rows themselves, so the sums are exact and the cost does
// not grow with the rows in the range.
func (d *DB) Report(ctx context.Context, opts ReportOptions) (*Report, error) {
	if opts.By == "" {
		opts.By = ByDay
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	cols, ok := groupColumns[opts.By]
	if !ok {
		return nil, fmt.Errorf("ledger: report: unknown grouping %q", opts.By)
	}
	since, until := int64(0), maxTime
	if !opts.Since.IsZero() {
		since = max(opts.Since.UnixMilli(), 0)
	}
	if !opts.Until.IsZero() {
		until = min(opts.Until.UnixMilli(), maxTime)
	}
	lo, hi := (since+bucketMs-1)/bucketMs, until/bucketMs // whole buckets [lo, hi)
	if lo >= hi {
		lo, hi = 0, 0 // no whole bucket: all from the rows
	}
	edge1, edge2 := lo*bucketMs, hi*bucketMs
	if lo == hi {
		edge1, edge2 = until, until
	}
	// With max(last), SQLite takes the bare column label from the newest row.
	q := `SELECT g, label, max(last), sum(n), sum(i), sum(o), sum(w5), sum(w1), sum(r), total(c) FROM (
		SELECT ` + cols[0] + ` AS g, label, last_ts AS last, requests AS n, input_tokens AS i, output_tokens AS o,
			cache_write_5m_tokens AS w5, cache_write_1h_tokens AS w1, cache_read_tokens AS r, cost_usd AS c
			FROM buckets WHERE bucket >= ? AND bucket < ?
		UNION ALL
		SELECT ` + cols[1] + `, label, ts, 1, input_tokens, output_tokens, cache_write_5m_tokens,
			cache_write_1h_tokens, cache_read_tokens, cost_usd FROM requests WHERE ts >= ? AND ts < ?
		UNION ALL
		SELECT ` + cols[1] + `, label, ts, 1, input_tokens, output_tokens, cache_write_5m_tokens,
			cache_write_1h_tokens, cache_read_tokens, cost_usd FROM requests WHERE ts >= ? AND ts < ?
	) GROUP BY g`
	rows, err := d.db.QueryContext(ctx, q, lo, hi, since, edge1, edge2, until)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: report: %w", d.path, err)
	}
	defer rows.Close()
	rep := &Report{By: opts.By}
	idx := map[string]int{}
	for rows.Next() {
		r, err := scanRow(rows, opts)
		if err != nil {
			return nil, fmt.Errorf("ledger %s: report: %w", d.path, err)
		}
		i, ok := idx[r.Group]
		if !ok {
			idx[r.Group] = len(rep.Rows)
			rep.Rows = append(rep.Rows, r)
			continue
		}
		acc := &rep.Rows[i] // ByDay: the buckets of one day
		acc.Requests += r.Requests
		acc.Tokens.add(r.Tokens)
		acc.Cost += r.Cost
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger %s: report: %w", d.path, err)
	}
	slices.SortFunc(rep.Rows, func(a, b Row) int { return cmp.Compare(a.Group, b.Group) })
	for _, r := range rep.Rows {
		rep.Totals.Requests += r.Requests
		rep.Totals.Tokens.add(r.Tokens)
		rep.Totals.Cost += r.Cost
	}
	rep.Totals.Group = "Total"
	return rep, nil
}

// scanRow reads one result row of Report's query.
func scanRow(rows *sql.Rows, opts ReportOptions) (Row, error) {
	var (
		r      Row
		group  any
		newest int64
	)
	t := &r.Tokens
	if err := rows.Scan(&group, &r.Label, &newest, &r.Requests, &t.Input, &t.Output,
		&t.CacheWrite5m, &t.CacheWrite1h, &t.CacheRead, &r.Cost); err != nil {
		return r, err
	}
	switch opts.By {
	case ByDay:
		bucket, _ := group.(int64)
		r.Group = time.UnixMilli(bucket * bucketMs).In(opts.Location).Format(time.DateOnly)
		r.Label = ""
	case ByKey:
		r.Group = asString(group)
	default:
		r.Group, r.Label = asString(group), ""
	}
	return r, nil
}

// asString is a TEXT column scanned into an any.
func asString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return ""
}
