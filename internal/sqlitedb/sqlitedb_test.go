package sqlitedb

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testMigrations = []string{
	`CREATE TABLE a (x INTEGER)`,
	`ALTER TABLE a ADD COLUMN y TEXT`,
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state", "t.db")

	// Missing and read-only: not created.
	_, err := Open(ctx, path, Options{Name: "test", Migrations: testMigrations, ReadOnly: true})
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.NoFileExists(t, path)

	// First version only, then the second migration on the next open.
	db, err := Open(ctx, path, Options{Name: "test", Migrations: testMigrations[:1]})
	require.NoError(t, err)
	var mode string
	require.NoError(t, db.QueryRow("PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "wal", mode)
	require.NoError(t, db.Close())
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, want, fi.Mode().Perm(), p)
	}
	_, err = Open(ctx, path, Options{Name: "test", Migrations: testMigrations, ReadOnly: true, OlderHint: "run x"})
	assert.ErrorContains(t, err, "schema version 1 is older than 2: run x")
	db, err = Open(ctx, path, Options{Name: "test", Migrations: testMigrations})
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO a (x, y) VALUES (1, 'two')`)
	require.NoError(t, err, "the second migration ran")
	require.NoError(t, db.Close())

	// A newer piauth's database is refused, and left as it is.
	_, err = Open(ctx, path, Options{Name: "test", Migrations: testMigrations[:1]})
	assert.ErrorIs(t, err, ErrNewerSchema)
	assert.ErrorContains(t, err, "test "+path+": schema is newer than this piauth (version 2, this piauth knows 1)")

	// Not a database: refused, untouched.
	junk := filepath.Join(t.TempDir(), "junk.db")
	data := []byte("this is not a SQLite database, only some text long enough to look like one.......")
	require.NoError(t, os.WriteFile(junk, data, 0o644))
	_, err = Open(ctx, junk, Options{Name: "test", Migrations: testMigrations})
	assert.ErrorContains(t, err, "not a database")
	after, err := os.ReadFile(junk)
	require.NoError(t, err)
	assert.Equal(t, data, after)
}

func TestLeftOpenAndTrimWAL(t *testing.T) {
	ctx := context.Background()
	for _, leftOpen := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "t.db")
		db, err := Open(ctx, path, Options{Name: "test", Migrations: testMigrations, LeftOpen: leftOpen})
		require.NoError(t, err)
		var pages int
		require.NoError(t, db.QueryRow("PRAGMA wal_autocheckpoint").Scan(&pages))
		if !leftOpen {
			assert.Equal(t, walCheckpointPages, pages)
			require.NoError(t, db.Close())
			continue
		}
		assert.Zero(t, pages, "LeftOpen: no checkpoint after commits")
		for i := range 40 { // some 400 KB of WAL
			_, err := db.Exec(`INSERT INTO a (x, y) VALUES (?, ?)`, i, string(make([]byte, 10<<10)))
			require.NoError(t, err)
		}
		wal := path + "-wal"
		before, err := os.Stat(wal)
		require.NoError(t, err)
		require.Greater(t, before.Size(), int64(400<<10))

		require.NoError(t, TrimWAL(ctx, db, path, before.Size()))
		fi, err := os.Stat(wal)
		require.NoError(t, err)
		assert.Equal(t, before.Size(), fi.Size(), "within the bound: left alone")

		require.NoError(t, TrimWAL(ctx, db, path, 100<<10))
		fi, err = os.Stat(wal)
		require.NoError(t, err)
		assert.Zero(t, fi.Size(), "past the bound: checkpointed and truncated")
		var n int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM a`).Scan(&n))
		assert.Equal(t, 40, n, "every row is in the database")
		require.NoError(t, db.Close())
	}
}
