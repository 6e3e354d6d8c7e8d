package convo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver ("sqlite")
)

// The database is opened the way pkg/ledger opens its own (WAL, a busy
// timeout, PRAGMA user_version migrations, 0600 in a 0700 directory), in a
// separate file: a conversation store holds prompt and answer text, which
// the ledger never does.

// DefaultBusyTimeout is how long a statement waits for another process's
// write lock before it fails with "database is locked".
const DefaultBusyTimeout = 5 * time.Second

// walCheckpointPages is the WAL size (in pages) that triggers a checkpoint.
const walCheckpointPages = 256

// ErrNewerSchema means the store was written by a newer piauth whose schema
// this one does not know; it is neither read nor written.
var ErrNewerSchema = errors.New("conversation store schema is newer than this piauth")

// migrations take the schema from version i to i+1 (PRAGMA user_version).
// Append only: a released migration never changes.
var migrations = []string{
	// 1: conversations and their turns, the messages as the API takes them.
	`CREATE TABLE conversations (
		id          TEXT    PRIMARY KEY,
		created     INTEGER NOT NULL, -- unix ms
		updated     INTEGER NOT NULL, -- unix ms of the last turn
		model       TEXT    NOT NULL DEFAULT '', -- of the last turn
		system      TEXT    NOT NULL DEFAULT '',
		tools       TEXT    NOT NULL DEFAULT '', -- JSON array of tool definitions, '' for none
		tools_file  TEXT    NOT NULL DEFAULT '', -- where the tools were read from
		fingerprint TEXT    NOT NULL DEFAULT '', -- the key that answered last
		title       TEXT    NOT NULL DEFAULT ''  -- the first prompt
	);
	CREATE INDEX conversations_updated ON conversations (updated);
	CREATE TABLE turns (
		conversation TEXT    NOT NULL,
		seq          INTEGER NOT NULL, -- 1, 2, … within the conversation
		ts           INTEGER NOT NULL, -- unix ms
		model        TEXT    NOT NULL DEFAULT '',
		fingerprint  TEXT    NOT NULL DEFAULT '',
		request      TEXT    NOT NULL DEFAULT '', -- the user message JSON, '' when the turn resumed a pause
		response     TEXT    NOT NULL,            -- the assistant message JSON
		stop_reason  TEXT    NOT NULL DEFAULT '',
		usage        TEXT    NOT NULL DEFAULT '{}',
		cost_usd     REAL,                        -- NULL: no known price
		PRIMARY KEY (conversation, seq)
	) WITHOUT ROWID;`,
}

// SchemaVersion is the schema version this piauth writes.
var SchemaVersion = len(migrations)

// Options tune Open.
type Options struct {
	// BusyTimeout bounds the wait for another writer (DefaultBusyTimeout
	// when 0).
	BusyTimeout time.Duration
	// ReadOnly opens an existing store for reading only: nothing is created
	// or migrated.
	ReadOnly bool
}

// DB is an open conversation store, safe for concurrent use; statements run
// one at a time on a single connection.
type DB struct {
	path string
	db   *sql.DB
	now  func() time.Time
}

// Open opens (creating it 0600, its directory 0700) and migrates the store
// at path. A file that is not a SQLite database, or a schema newer than
// SchemaVersion, is an error; the file is left as it is.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	if !opts.ReadOnly {
		if err := createFile(path); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)+")")
	if !opts.ReadOnly {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(walCheckpointPages)+")")
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: path}).String() + "?" + q.Encode()
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("conversations %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(1)
	sdb.SetMaxIdleConns(1)
	sdb.SetConnMaxLifetime(0)
	sdb.SetConnMaxIdleTime(0)
	d := &DB{path: path, db: sdb, now: time.Now}
	if err := d.migrate(ctx, opts.ReadOnly); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("conversations %s: %w", path, err)
	}
	return d, nil
}

// createFile makes path's directory (0700) and the file itself (0600) when
// missing, and narrows a wider mode to 0600: SQLite gives its -wal and -shm
// files the database file's mode.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("conversations: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("conversations: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("conversations: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("conversations: %s is not a regular file", path)
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("conversations: %w", err)
		}
	}
	return nil
}

// migrate brings the schema to SchemaVersion under the write lock (another
// process may be migrating at the same time).
func (d *DB) migrate(ctx context.Context, readOnly bool) error {
	v, err := version(ctx, d.db)
	if err != nil {
		return err
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w (version %d, this piauth knows %d)", ErrNewerSchema, v, SchemaVersion)
	}
	if v == SchemaVersion {
		return nil
	}
	if readOnly {
		return fmt.Errorf("schema version %d is older than %d: run a chat to migrate it", v, SchemaVersion)
	}
	tx, err := d.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if v, err = version(ctx, tx); err != nil || v >= SchemaVersion {
		return err // migrated meanwhile by another process
	}
	for i := v; i < SchemaVersion; i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(SchemaVersion)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// version is the schema version (PRAGMA user_version); reading it also
// checks that the file is a database.
func version(ctx context.Context, q querier) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Path is the store's file.
func (d *DB) Path() string { return d.path }

// Close closes the store.
func (d *DB) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("conversations %s: close: %w", d.path, err)
	}
	return nil
}
