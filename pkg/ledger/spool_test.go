package ledger

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// totals is the ledger's report totals over all time.
func totals(t *testing.T, db *DB) Row {
	t.Helper()
	rep, err := db.Report(context.Background(), ReportOptions{By: ByModel})
	require.NoError(t, err)
	return rep.Totals
}

// openPath opens the ledger at path (importing its spool).
func openPath(t *testing.T, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(context.Background(), path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSpoolIsImportedByOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", FileName)
	now := time.Now()
	for i := range 3 {
		size, err := Spool(path, entry(now.Add(time.Duration(i)*time.Second), "fp1", "claude-x", 10, 2))
		require.NoError(t, err)
		assert.Positive(t, size)
	}
	fi, err := os.Stat(path + spoolSuffix)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "spooling never creates the database")
	assert.True(t, HasSpool(path))

	// A report (read-only) counts the spooled rows: it imports them.
	db := openPath(t, path, Options{ReadOnly: true})
	tot := totals(t, db)
	assert.Equal(t, int64(3), tot.Requests)
	assert.Equal(t, Tokens{Input: 30, Output: 6, CacheWrite5m: 9, CacheWrite1h: 6, CacheRead: 21}, tot.Tokens)
	assert.InDelta(t, 3*12/1e6, tot.Cost, 1e-12)
	assert.False(t, HasSpool(path))
	for _, s := range []string{spoolSuffix, importingSuffix} {
		_, err := os.Stat(path + s)
		assert.ErrorIs(t, err, os.ErrNotExist, s)
	}
	require.NoError(t, db.Close())

	// Opening again adds nothing; a row spooled now is added once.
	_, err = Spool(path, entry(now, "fp2", "claude-y", 1, 1))
	require.NoError(t, err)
	db = openPath(t, path, Options{})
	assert.Equal(t, int64(4), totals(t, db).Requests)
	db.Close()
	db = openPath(t, path, Options{})
	assert.Equal(t, int64(4), totals(t, db).Requests)
}

// A crash after the import's commit and before it removed its file leaves
// .spool.importing behind: the next import finds every row already there.
func TestImportAfterCrashAddsNothingTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	for range 5 {
		_, err := Spool(path, entry(time.Now(), "fp", "m", 1, 1))
		require.NoError(t, err)
	}
	spooled, err := os.ReadFile(path + spoolSuffix)
	require.NoError(t, err)
	db := openPath(t, path, Options{})
	require.Equal(t, int64(5), totals(t, db).Requests)

	require.NoError(t, os.WriteFile(path+importingSuffix, spooled, 0o600)) // the crashed import's file
	_, err = Spool(path, entry(time.Now(), "fp", "m", 1, 1))               // and a new row
	require.NoError(t, err)
	res, err := db.Import(context.Background())
	require.NoError(t, err)
	assert.Equal(t, ImportResult{Rows: 1}, res)
	assert.Equal(t, int64(6), totals(t, db).Requests)
	assert.False(t, HasSpool(path))
}

// A line torn by a crash mid-append (or of a newer format) is skipped and
// counted; the rows around it are imported.
func TestImportSkipsTornLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	_, err := Spool(path, entry(time.Now(), "fp", "m", 1, 1))
	require.NoError(t, err)
	f, err := os.OpenFile(path+spoolSuffix, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"v":1,"id":"abc","ts":17` + "\n" + `{"v":99,"id":"future"}` + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = Spool(path, entry(time.Now(), "fp", "m", 1, 1))
	require.NoError(t, err)

	db, err := Open(context.Background(), path, Options{NoImport: true})
	require.NoError(t, err)
	defer db.Close()
	assert.True(t, HasSpool(path), "NoImport leaves the spool")
	res, err := db.Import(context.Background())
	require.NoError(t, err)
	assert.Equal(t, ImportResult{Rows: 2, Skipped: 2}, res)
	assert.Equal(t, int64(2), totals(t, db).Requests)
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	valid := filepath.Join(dir, "valid.db")
	db := openPath(t, valid, Options{})
	require.NoError(t, db.Record(context.Background(), entry(time.Now(), "fp", "m", 1, 1)))
	require.NoError(t, db.Close())
	newer := filepath.Join(dir, "newer.db")
	db = openPath(t, newer, Options{})
	_, err := db.db.Exec("PRAGMA user_version = 99")
	require.NoError(t, err)
	require.NoError(t, db.Close()) // the last close checkpoints the header into the file
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	tests := []struct {
		name, path, err string
	}{
		{"missing", filepath.Join(dir, "none.db"), ""},
		{"empty", write("empty.db", nil), ""},
		{"a ledger", valid, ""},
		{"garbage", write("garbage.db", []byte("garbage, not SQLite, but long enough to fill a header ........................................")), "file is not a database"},
		{"short", write("short.db", []byte("SQLite format 3\x00")), "file is not a database"},
		{"newer schema", newer, "schema is newer than this piauth (version 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckFile(tt.path)
			if tt.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.err)
			assert.ErrorContains(t, err, tt.path)
		})
	}
	assert.ErrorIs(t, CheckFile(newer), ErrNewerSchema)
}

// The spooler processes of TestSpoolConcurrentProcesses: PIAUTH_TEST_SPOOL
// is the ledger path, PIAUTH_TEST_SPOOL_N the rows to spool.
func TestMain(m *testing.M) {
	if path := os.Getenv("PIAUTH_TEST_SPOOL"); path != "" {
		n, _ := strconv.Atoi(os.Getenv("PIAUTH_TEST_SPOOL_N"))
		for i := range n {
			if _, err := Spool(path, entry(time.Now(), "proc", "m", int64(i%7), 1)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Real processes spool while others import over and over: every row ends
// up in the database exactly once.
func TestSpoolConcurrentProcesses(t *testing.T) {
	procs, rows := 6, 300
	if testing.Short() {
		rows = 100
	}
	path := filepath.Join(t.TempDir(), FileName)
	var wg sync.WaitGroup
	errs := make(chan error, procs+2)
	for range procs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "PIAUTH_TEST_SPOOL="+path, "PIAUTH_TEST_SPOOL_N="+strconv.Itoa(rows))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("spooler: %v: %s", err, out)
			}
		})
	}
	stop := make(chan struct{})
	var importers sync.WaitGroup
	for range 2 {
		importers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				db, err := Open(context.Background(), path, Options{})
				if err != nil {
					errs <- err
					return
				}
				db.Close()
			}
		})
	}
	wg.Wait()
	close(stop)
	importers.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	db := openPath(t, path, Options{})
	tot := totals(t, db)
	assert.Equal(t, int64(procs*rows), tot.Requests)
	var want int64
	for i := range rows {
		want += int64(i % 7)
	}
	assert.Equal(t, int64(procs)*want, tot.Tokens.Input)
	assert.False(t, HasSpool(path))
}
