package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/piauth/piauth/internal/sqlitedb"
)

// DefaultBusyTimeout is how long a statement waits for another process's
// write lock before it fails with "database is locked".
const DefaultBusyTimeout = sqlitedb.DefaultBusyTimeout

// ErrNewerSchema means the ledger was written by a newer piauth whose schema
// this one does not know; it is neither read nor written.
var ErrNewerSchema = sqlitedb.ErrNewerSchema

// migrations take the schema from version i to i+1 (PRAGMA user_version).
// Append only: a released migration never changes.
var migrations = []string{
	// 1: one row per Messages answer; no prompt or answer text, ever.
	`CREATE TABLE requests (
		id                    INTEGER PRIMARY KEY,
		ts                    INTEGER NOT NULL, -- request start, unix ms
		fingerprint           TEXT    NOT NULL DEFAULT '',
		label                 TEXT    NOT NULL DEFAULT '',
		model                 TEXT    NOT NULL DEFAULT '',
		status                INTEGER NOT NULL DEFAULT 0,
		error_type            TEXT    NOT NULL DEFAULT '',
		stream                INTEGER NOT NULL DEFAULT 0,
		latency_ms            REAL    NOT NULL DEFAULT 0,
		input_tokens          INTEGER NOT NULL DEFAULT 0,
		output_tokens         INTEGER NOT NULL DEFAULT 0,
		cache_write_5m_tokens INTEGER NOT NULL DEFAULT 0,
		cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
		cache_read_tokens     INTEGER NOT NULL DEFAULT 0,
		cost_usd              REAL, -- NULL: no known price
		client                TEXT    NOT NULL DEFAULT '',
		request_id            TEXT    NOT NULL DEFAULT ''
	);
	CREATE INDEX requests_ts ON requests (ts);
	-- Sums per 15-minute bucket, key and model, kept by the trigger, so a
	-- report reads whole buckets here and only its two edges from requests.
	CREATE TABLE buckets (
		bucket                INTEGER NOT NULL, -- ts / 900000
		fingerprint           TEXT    NOT NULL,
		model                 TEXT    NOT NULL,
		label                 TEXT    NOT NULL, -- of the newest row
		last_ts               INTEGER NOT NULL,
		requests              INTEGER NOT NULL,
		input_tokens          INTEGER NOT NULL,
		output_tokens         INTEGER NOT NULL,
		cache_write_5m_tokens INTEGER NOT NULL,
		cache_write_1h_tokens INTEGER NOT NULL,
		cache_read_tokens     INTEGER NOT NULL,
		cost_usd              REAL    NOT NULL, -- over the rows with a known price
		PRIMARY KEY (bucket, fingerprint, model)
	) WITHOUT ROWID;
	CREATE TRIGGER requests_buckets AFTER INSERT ON requests BEGIN
		INSERT INTO buckets VALUES (NEW.ts / 900000, NEW.fingerprint, NEW.model, NEW.label, NEW.ts, 1,
			NEW.input_tokens, NEW.output_tokens, NEW.cache_write_5m_tokens, NEW.cache_write_1h_tokens,
			NEW.cache_read_tokens, coalesce(NEW.cost_usd, 0))
		ON CONFLICT (bucket, fingerprint, model) DO UPDATE SET
			label = CASE WHEN excluded.last_ts >= last_ts THEN excluded.label ELSE label END,
			last_ts = max(last_ts, excluded.last_ts),
			requests = requests + 1,
			input_tokens = input_tokens + excluded.input_tokens,
			output_tokens = output_tokens + excluded.output_tokens,
			cache_write_5m_tokens = cache_write_5m_tokens + excluded.cache_write_5m_tokens,
			cache_write_1h_tokens = cache_write_1h_tokens + excluded.cache_write_1h_tokens,
			cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
			cost_usd = cost_usd + excluded.cost_usd;
	END;`,
	// 2: the id of a row imported from the spool (see spool.go), so that
	// an import repeated after a crash adds nothing.
	`ALTER TABLE requests ADD COLUMN spool_id TEXT;
	CREATE UNIQUE INDEX requests_spool_id ON requests (spool_id) WHERE spool_id IS NOT NULL;`,
}

// SchemaVersion is the schema version this piauth writes.
var SchemaVersion = len(migrations)

// Options tune Open.
type Options struct {
	// BusyTimeout bounds the wait for another writer (DefaultBusyTimeout
	// when 0).
	BusyTimeout time.Duration
	// ReadOnly opens an existing ledger for reports only: nothing is
	// created or migrated. A ledger with spooled rows is opened for writing
	// all the same, to import them: a report counts every row.
	ReadOnly bool
	// NoImport leaves spooled rows in the spool (see Import).
	NoImport bool
}

// DB is an open ledger. It is safe for concurrent use; statements run one
// at a time on a single connection.
type DB struct {
	path string
	db   *sql.DB

	mu  sync.Mutex
	ins *sql.Stmt // the INSERT, prepared on first use
}

// Open opens (creating it 0600, its directory 0700) and migrates the ledger
// at path (internal/sqlitedb), prepares the INSERT and imports the spool
// (Spool, Import). A file that is not a SQLite database, or a schema newer
// than SchemaVersion, is an error; the file is left as it is.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if opts.ReadOnly && !opts.NoImport && HasSpool(path) {
		opts.ReadOnly = false
	}
	sdb, err := sqlitedb.Open(ctx, path, sqlitedb.Options{Name: "ledger", Migrations: migrations,
		BusyTimeout: opts.BusyTimeout, ReadOnly: opts.ReadOnly, OlderHint: "run a command that records to migrate it"})
	if err != nil {
		return nil, err
	}
	d := &DB{path: path, db: sdb}
	if !opts.ReadOnly {
		if _, err := d.insert(ctx); err != nil { // prepared now: Record only runs it
			sdb.Close()
			return nil, err
		}
		if !opts.NoImport {
			if _, err := d.Import(ctx); err != nil {
				sdb.Close()
				return nil, err
			}
		}
	}
	return d, nil
}

// Path is the ledger's file.
func (d *DB) Path() string { return d.path }

// Close closes the ledger.
func (d *DB) Close() error {
	d.mu.Lock()
	if d.ins != nil {
		d.ins.Close()
		d.ins = nil
	}
	d.mu.Unlock()
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("ledger %s: close: %w", d.path, err)
	}
	return nil
}
