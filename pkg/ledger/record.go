package ledger

import (
	"context"
	"database/sql"
	"fmt"
)

// insertSQL is the one statement of the request path.
const insertSQL = `INSERT INTO requests (ts, fingerprint, label, model, status, error_type, stream, latency_ms,
	input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens,
	cost_usd, client, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertSpooledSQL imports a spooled row; one imported before is ignored.
const insertSpooledSQL = `INSERT OR IGNORE INTO requests (ts, fingerprint, label, model, status, error_type, stream, latency_ms,
	input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens,
	cost_usd, client, request_id, spool_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// Record writes e as one row (one prepared INSERT).
func (d *DB) Record(ctx context.Context, e Entry) error {
	ins, err := d.insert(ctx)
	if err != nil {
		return err
	}
	if _, err := ins.ExecContext(ctx, args(e)...); err != nil {
		return fmt.Errorf("ledger %s: record: %w", d.path, err)
	}
	return nil
}

// RecordAll writes entries in one transaction: all rows or none.
func (d *DB) RecordAll(ctx context.Context, entries []Entry) error {
	ins, err := d.insert(ctx)
	if err != nil {
		return err
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ledger %s: record: %w", d.path, err)
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, ins)
	for _, e := range entries {
		if _, err := st.ExecContext(ctx, args(e)...); err != nil {
			return fmt.Errorf("ledger %s: record: %w", d.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ledger %s: record: %w", d.path, err)
	}
	return nil
}

// insert prepares the INSERT once.
func (d *DB) insert(ctx context.Context) (*sql.Stmt, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ins == nil {
		st, err := d.db.PrepareContext(ctx, insertSQL)
		if err != nil {
			return nil, fmt.Errorf("ledger %s: prepare: %w", d.path, err)
		}
		d.ins = st
	}
	return d.ins, nil
}

// args are e's values in insertSQL's order.
func args(e Entry) []any {
	var cost any // NULL without a known price
	if e.Priced {
		cost = e.Cost
	}
	return []any{
		e.Time.UnixMilli(), e.Fingerprint, e.Label, e.Model, e.Status, e.ErrorType, e.Stream,
		float64(e.Latency.Microseconds()) / 1000,
		e.Tokens.Input, e.Tokens.Output, e.Tokens.CacheWrite5m, e.Tokens.CacheWrite1h, e.Tokens.CacheRead,
		cost, e.Client, e.RequestID,
	}
}
