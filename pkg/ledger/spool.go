package ledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// The spool is how a short-lived process (one `piauth chat`) records its
// answer without opening SQLite: it appends one JSON line to
// ledger.db.spool beside the ledger, under an exclusive lock of that file —
// tens of microseconds, where opening the database costs a millisecond or
// more. Open imports spooled rows into the database, so every reader sees
// them: a report, the proxy at start, or a chat once the spool grows past
// SpoolImportSize.
//
// An import is crash-safe and never counts a row twice: under its own lock
// (ledger.db.spool.lock) it renames the spool to ledger.db.spool.importing
// while holding the spool's lock (a writer that locked the old file after
// the rename sees that its file is gone from the path, and reopens), inserts
// the rows in one transaction keyed by each line's random id (INSERT OR
// IGNORE on a unique index, so a re-import after a crash between the commit
// and the file's removal adds nothing), then removes the file.
const (
	spoolSuffix     = ".spool"
	importingSuffix = ".spool.importing"
	importLockSufx  = ".spool.lock"
	// SpoolImportSize is the spool size past which Spool's caller should
	// import it (Spool reports it): about 3,000 rows.
	SpoolImportSize = 1 << 20
	spoolVersion    = 1
)

// ErrSpoolUnsupported means this platform has no file locks the spool can
// use; record through an open DB instead.
var ErrSpoolUnsupported = errors.New("ledger: spool not supported on this platform")

// spoolLine is one spooled Entry; v is the line format's version.
type spoolLine struct {
	V           int     `json:"v"`
	ID          string  `json:"id"`
	Time        int64   `json:"ts"` // unix ms
	Fingerprint string  `json:"fp,omitempty"`
	Label       string  `json:"label,omitempty"`
	Model       string  `json:"model,omitempty"`
	Status      int     `json:"status,omitempty"`
	ErrorType   string  `json:"error_type,omitempty"`
	Stream      bool    `json:"stream,omitempty"`
	LatencyUs   int64   `json:"latency_us,omitempty"`
	Input       int64   `json:"in,omitempty"`
	Output      int64   `json:"out,omitempty"`
	Write5m     int64   `json:"cw5m,omitempty"`
	Write1h     int64   `json:"cw1h,omitempty"`
	Read        int64   `json:"cr,omitempty"`
	Cost        float64 `json:"cost,omitempty"`
	Priced      bool    `json:"priced,omitempty"`
	Client      string  `json:"client,omitempty"`
	RequestID   string  `json:"request_id,omitempty"`
}

func lineOf(e Entry) (spoolLine, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return spoolLine{}, err
	}
	return spoolLine{
		V: spoolVersion, ID: hex.EncodeToString(id[:]), Time: e.Time.UnixMilli(),
		Fingerprint: e.Fingerprint, Label: e.Label, Model: e.Model, Status: e.Status, ErrorType: e.ErrorType,
		Stream: e.Stream, LatencyUs: e.Latency.Microseconds(),
		Input: e.Tokens.Input, Output: e.Tokens.Output, Write5m: e.Tokens.CacheWrite5m,
		Write1h: e.Tokens.CacheWrite1h, Read: e.Tokens.CacheRead,
		Cost: e.Cost, Priced: e.Priced, Client: e.Client, RequestID: e.RequestID,
	}, nil
}

func (l spoolLine) entry() Entry {
	return Entry{
		Time: time.UnixMilli(l.Time), Fingerprint: l.Fingerprint, Label: l.Label, Model: l.Model,
		Status: l.Status, ErrorType: l.ErrorType, Stream: l.Stream, Latency: time.Duration(l.LatencyUs) * time.Microsecond,
		Tokens: Tokens{Input: l.Input, Output: l.Output, CacheWrite5m: l.Write5m, CacheWrite1h: l.Write1h, CacheRead: l.Read},
		Cost:   l.Cost, Priced: l.Priced, Client: l.Client, RequestID: l.RequestID,
	}
}

// Spool appends e to the spool of the ledger at path (creating the spool
// 0600 and its directory 0700), for the next Open to import. It returns the
// spool's size after the append; past SpoolImportSize the caller should
// Open the ledger (which imports) when it can spare the time.
func Spool(path string, e Entry) (size int64, err error) {
	l, err := lineOf(e)
	if err != nil {
		return 0, fmt.Errorf("ledger: spool: %w", err)
	}
	b, err := json.Marshal(l)
	if err != nil {
		return 0, fmt.Errorf("ledger: spool: %w", err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	sp := path + spoolSuffix
	for range 16 {
		f, err := os.OpenFile(sp, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return 0, fmt.Errorf("ledger: spool: %w", err)
		}
		size, again, err := appendLocked(f, sp, b)
		f.Close() // releases the lock
		if err != nil || !again {
			return size, err
		}
	}
	return 0, fmt.Errorf("ledger: spool %s: replaced under every attempt", sp)
}

// appendLocked writes b to f under f's lock, unless an import renamed f
// away between the open and the lock (again: reopen the path).
func appendLocked(f *os.File, path string, b []byte) (size int64, again bool, err error) {
	if err := lockFile(f); err != nil {
		return 0, false, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, false, fmt.Errorf("ledger: spool: %w", err)
	}
	if pi, err := os.Stat(path); err != nil || !os.SameFile(fi, pi) {
		return 0, true, nil
	}
	if _, err := f.Write(b); err != nil {
		return 0, false, fmt.Errorf("ledger: spool %s: %w", path, err)
	}
	return fi.Size() + int64(len(b)), false, nil
}

// HasSpool reports whether the ledger at path has spooled rows to import.
func HasSpool(path string) bool {
	for _, s := range []string{spoolSuffix, importingSuffix} {
		if fi, err := os.Stat(path + s); err == nil && fi.Size() > 0 {
			return true
		}
	}
	return false
}

// ImportResult counts what an import did.
type ImportResult struct {
	Rows    int // rows added to the database
	Skipped int // lines that were not a spooled row (torn by a crash, a newer format)
}

// Import moves the spooled rows into the database (see the spool's comment
// above for how it stays exact across crashes and concurrent writers).
func (d *DB) Import(ctx context.Context) (ImportResult, error) {
	var res ImportResult
	if !HasSpool(d.path) {
		return res, nil
	}
	unlock, err := lockPath(ctx, d.path+importLockSufx)
	if err != nil {
		return res, fmt.Errorf("ledger: import: %w", err)
	}
	defer unlock()
	importing := d.path + importingSuffix
	// A previous import that crashed before removing its file.
	if err := d.importFile(ctx, importing, &res); err != nil {
		return res, err
	}
	if err := takeSpool(d.path+spoolSuffix, importing); err != nil {
		return res, err
	}
	return res, d.importFile(ctx, importing, &res)
}

// takeSpool renames the spool to importing under the spool's lock, so no
// append is under way or lost.
func takeSpool(spool, importing string) error {
	f, err := os.OpenFile(spool, os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: import: %w", err)
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		return err
	}
	if err := os.Rename(spool, importing); err != nil {
		return fmt.Errorf("ledger: import: %w", err)
	}
	return nil
}

// importFile inserts the rows of the spool file at path in one
// transaction and removes the file; a missing file is nothing to do.
func (d *DB) importFile(ctx context.Context, path string, res *ImportResult) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: import: %w", err)
	}
	var lines []spoolLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var l spoolLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.V != spoolVersion || l.ID == "" {
			res.Skipped++
			continue
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("ledger: import %s: %w", path, err)
	}
	n, err := d.insertSpooled(ctx, lines)
	if err != nil {
		return err
	}
	res.Rows += n
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("ledger: import: %w", err)
	}
	return nil
}

// insertSpooled inserts lines in one transaction; a line already imported
// (same id) is ignored. It returns the rows added.
func (d *DB) insertSpooled(ctx context.Context, lines []spoolLine) (int, error) {
	if len(lines) == 0 {
		return 0, nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("ledger %s: import: %w", d.path, err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, insertSpooledSQL)
	if err != nil {
		return 0, fmt.Errorf("ledger %s: import: %w", d.path, err)
	}
	defer st.Close()
	added := 0
	for _, l := range lines {
		r, err := st.ExecContext(ctx, append(args(l.entry()), l.ID)...)
		if err != nil {
			return 0, fmt.Errorf("ledger %s: import: %w", d.path, err)
		}
		if n, _ := r.RowsAffected(); n > 0 {
			added++
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("ledger %s: import: %w", d.path, err)
	}
	return added, nil
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// CheckFile is the cheap check of the ledger file a process that only
// spools makes (it never opens the database): nil when the file is missing,
// empty or a SQLite database of a schema this piauth knows; otherwise the
// error Open would give — the file is not a database, or ErrNewerSchema
// (read from the header's user_version, which a WAL not yet checkpointed
// may hold newer: then Open finds out).
func CheckFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer f.Close()
	var h [100]byte
	n, err := io.ReadFull(f, h[:])
	switch {
	case n == 0:
		return nil // created, not yet written
	case err != nil || string(h[:len(sqliteHeader)]) != sqliteHeader:
		return fmt.Errorf("ledger %s: file is not a database", path)
	}
	if v := int(binary.BigEndian.Uint32(h[60:64])); v > SchemaVersion {
		return fmt.Errorf("ledger %s: %w (version %d, this piauth knows %d)", path, ErrNewerSchema, v, SchemaVersion)
	}
	return nil
}
