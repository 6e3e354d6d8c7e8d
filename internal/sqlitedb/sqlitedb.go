// Package sqlitedb opens piauth's local SQLite databases — the request
// ledger and the conversation store — the one way they are opened: the
// pure-Go driver (modernc.org/sqlite, so the static build stays), WAL with a
// short autocheckpoint (or none, and TrimWAL, for a database processes exit
// without closing: LeftOpen), synchronous=NORMAL, a busy timeout, BEGIN
// IMMEDIATE transactions, one connection, the file 0600 in a 0700
// directory, and schema migrations counted in PRAGMA user_version.
package sqlitedb

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

// DefaultBusyTimeout is how long a statement waits for another process's
// write lock before it fails with "database is locked".
const DefaultBusyTimeout = 5 * time.Second

// walCheckpointPages is the WAL size (in pages) that triggers a checkpoint
// after a commit (not for LeftOpen databases).
const walCheckpointPages = 256

// ErrNewerSchema means the database was written by a newer piauth whose
// schema this one does not know; it is neither read nor written.
var ErrNewerSchema = errors.New("schema is newer than this piauth")

// Options tune Open.
type Options struct {
	// Name prefixes errors ("ledger", "conversations").
	Name string
	// Migrations take the schema from version i to i+1; append only.
	Migrations []string
	// BusyTimeout bounds the wait for another writer (DefaultBusyTimeout
	// when 0).
	BusyTimeout time.Duration
	// ReadOnly opens an existing database without creating or migrating
	// it; an older schema is then an error that says OlderHint.
	ReadOnly  bool
	OlderHint string // e.g. "run a chat to migrate it"
	// LeftOpen is for a database that processes exit without closing (a
	// chat: a clean close checkpoints the WAL, whose fsyncs measured 4-5 ms
	// on each chat's exit). Each such process is the database's only opener,
	// so SQLite rebuilds the WAL index from the whole WAL on open, never
	// restarts the WAL, and the checkpoint after a commit copies the whole
	// WAL into the database again each time. LeftOpen turns that checkpoint
	// off; the caller bounds the WAL with TrimWAL instead.
	LeftOpen bool
}

// Open opens (creating it 0600, its directory 0700) and migrates the
// database at path. A file that is not a SQLite database, or a schema newer
// than len(o.Migrations) (ErrNewerSchema), is an error; the file is left as
// it is. A missing file with ReadOnly is an error wrapping fs.ErrNotExist.
func Open(ctx context.Context, path string, o Options) (*sql.DB, error) {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if !o.ReadOnly {
		if err := createFile(path); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Name, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10)+")")
	if !o.ReadOnly {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	q.Add("_pragma", "synchronous(NORMAL)")
	autoCheckpoint := walCheckpointPages
	if o.LeftOpen {
		autoCheckpoint = 0
	}
	q.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(autoCheckpoint)+")")
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: path}).String() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", o.Name, path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := migrate(ctx, db, o); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s %s: %w", o.Name, path, err)
	}
	return db, nil
}

// TrimWAL checkpoints the WAL of the database at path into the database and
// truncates it when it is larger than max bytes: the bound of a LeftOpen
// database's WAL. It is best effort: a reader in another process keeps the
// WAL as it is until a later call.
func TrimWAL(ctx context.Context, db *sql.DB, path string, max int64) error {
	fi, err := os.Stat(path + "-wal")
	if err != nil || fi.Size() <= max {
		return nil
	}
	var busy, logFrames, done int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return nil
}

// createFile makes path's directory (0700) and the file itself (0600) when
// missing, and narrows a wider mode to 0600: SQLite gives its -wal and -shm
// files the database file's mode.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Mode().Perm() != 0o600 {
		return f.Chmod(0o600)
	}
	return nil
}

// migrate brings the schema to len(o.Migrations) under the write lock
// (another process may be migrating at the same time).
func migrate(ctx context.Context, db *sql.DB, o Options) error {
	want := len(o.Migrations)
	v, err := version(ctx, db)
	if err != nil {
		return err
	}
	if v > want {
		return fmt.Errorf("%w (version %d, this piauth knows %d)", ErrNewerSchema, v, want)
	}
	if v == want {
		return nil
	}
	if o.ReadOnly {
		return fmt.Errorf("schema version %d is older than %d: %s", v, want, o.OlderHint)
	}
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if v, err = version(ctx, tx); err != nil || v >= want {
		return err // migrated meanwhile by another process
	}
	for i := v; i < want; i++ {
		if _, err := tx.ExecContext(ctx, o.Migrations[i]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(want)); err != nil {
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
