package convo

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/piauth/piauth/internal/sqlitedb"
)

// The database is opened as the ledger's is (internal/sqlitedb: WAL, a busy
// timeout, PRAGMA user_version migrations, 0600 in a 0700 directory), in a
// separate file: a conversation store holds prompt and answer text, which
// the ledger never does.

// DefaultBusyTimeout is how long a statement waits for another process's
// write lock before it fails with "database is locked".
const DefaultBusyTimeout = sqlitedb.DefaultBusyTimeout

// ErrNewerSchema means the store was written by a newer piauth whose schema
// this one does not know; it is neither read nor written.
var ErrNewerSchema = sqlitedb.ErrNewerSchema

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
	sdb, err := sqlitedb.Open(ctx, path, sqlitedb.Options{Name: "conversations", Migrations: migrations,
		BusyTimeout: opts.BusyTimeout, ReadOnly: opts.ReadOnly, OlderHint: "run a chat to migrate it", LeftOpen: true})
	if err != nil {
		return nil, err
	}
	return &DB{path: path, db: sdb, now: time.Now}, nil
}

// MaxWAL bounds the store's WAL: chat processes exit without closing the
// store (sqlitedb.LeftOpen), and Record checkpoints and truncates the WAL
// once it has grown past this (some ten turns of 100 KB answers, a hundred
// of common ones).
const MaxWAL = 1 << 20

// Path is the store's file.
func (d *DB) Path() string { return d.path }

// Close closes the store.
func (d *DB) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("conversations %s: close: %w", d.path, err)
	}
	return nil
}
