package main

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/ledger"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

// chatClient is the ledger's client column for `piauth chat`.
const chatClient = "piauth-chat"

// LedgerPath is the ledger in piauth's state dir ($PIAUTH_STATE_DIR, else
// $XDG_STATE_HOME/piauth, else ~/.local/state/piauth).
func (f *Factory) LedgerPath() (string, error) {
	dir, err := keystore.ResolveStateDir(f.Getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, ledger.FileName), nil
}

// ledgerOff reports whether PIAUTH_LEDGER turns the ledger off.
func (f *Factory) ledgerOff() bool { return f.envOff("PIAUTH_LEDGER") }

// logOff reports whether PIAUTH_LOG turns off what chat keeps of a
// conversation: the stored conversations and the REPL's line history.
func (f *Factory) logOff() bool { return f.envOff("PIAUTH_LOG") }

// envOff is the one reading of an on/off variable: off, 0, false or no
// (any case) turn it off.
func (f *Factory) envOff(name string) bool {
	switch strings.ToLower(f.Getenv(name)) {
	case "off", "0", "false", "no":
		return true
	}
	return false
}

// Ledger is the ledger sink of a command that records answers. It is nil
// when PIAUTH_LEDGER=off or there is no state dir (then nothing is recorded
// and nothing said). chat spools each entry (ledger.Spool: one appended
// line, no SQLite open on the request path); the proxy opens the database
// and writes through a ledger.Writer (Async). A ledger that cannot be
// opened or written (locked, corrupt, newer) is warned about once; requests
// go on unrecorded.
func (f *Factory) Ledger(_ context.Context) *ledgerSink {
	if f.ledgerOff() {
		return nil
	}
	path, err := f.LedgerPath()
	if err != nil {
		return nil
	}
	svc, err := f.Service()
	if err != nil {
		svc = stream.Builtin()
	}
	var warnMu sync.Mutex // the proxy's writer goroutine warns too
	warn := func(format string, a ...any) {
		warnMu.Lock()
		defer warnMu.Unlock()
		f.warnf(format, a...)
	}
	return &ledgerSink{path: path, svc: svc, store: f.Store, warn: warn}
}

// ledgerSink adds the key's label and the price to an entry and writes it:
// to the spool (chat), or through a ledger.Writer (the proxy, see Async).
type ledgerSink struct {
	path   string
	svc    *stream.Service
	store  func() (*keystore.Store, error)
	warn   func(format string, a ...any)
	db     *ledger.DB     // open (the proxy, or a chat importing its spool)
	writer *ledger.Writer // set by Async

	checkOnce sync.Once
	checkErr  error // the ledger file's state, checked once (chat)
	warnOnce  sync.Once
	labelsMu  sync.Mutex
	labels    map[string]string // fingerprint → pool label
	loadedAt  time.Time
}

// warnf says once that the ledger is not recording, and why.
func (s *ledgerSink) warnf(err error) {
	s.warnOnce.Do(func() {
		hint := ""
		if !errors.Is(err, ledger.ErrNewerSchema) && strings.Contains(err.Error(), "not a database") {
			hint = " (move it away to start a new one)"
		}
		s.warn("ledger: %v%s; not recording (PIAUTH_LEDGER=off turns it off)", err, hint)
	})
}

// Record completes e (label, cost) and writes it; a failure is warned about
// once and otherwise ignored.
func (s *ledgerSink) Record(ctx context.Context, e ledger.Entry) {
	if s == nil {
		return
	}
	e.Label = s.label(e.Fingerprint)
	e.Cost, e.Priced = s.svc.Cost(e.Model, e.Tokens.Usage())
	if s.writer != nil {
		s.writer.Record(ctx, e)
		return
	}
	if s.checkOnce.Do(func() { s.checkErr = ledger.CheckFile(s.path) }); s.checkErr != nil {
		s.warnf(s.checkErr)
		return
	}
	size, err := ledger.Spool(s.path, e)
	switch {
	case errors.Is(err, ledger.ErrSpoolUnsupported):
		s.recordDirect(ctx, e)
	case err != nil:
		s.warnf(err)
	case size > ledger.SpoolImportSize:
		s.importSpool(ctx) // now and then, so the spool stays small
	}
}

// recordDirect writes e through the database (where the spool cannot be
// used).
func (s *ledgerSink) recordDirect(ctx context.Context, e ledger.Entry) {
	if s.db == nil {
		db, err := ledger.Open(context.WithoutCancel(ctx), s.path, ledger.Options{})
		if err != nil {
			s.warnf(err)
			return
		}
		s.db = db
	}
	if err := s.db.Record(context.WithoutCancel(ctx), e); err != nil {
		s.warnf(err)
	}
}

// importSpool opens the ledger, which imports the spool, and closes it.
func (s *ledgerSink) importSpool(ctx context.Context) {
	db, err := ledger.Open(context.WithoutCancel(ctx), s.path, ledger.Options{})
	if err != nil {
		s.warnf(err)
		return
	}
	if err := db.Close(); err != nil {
		s.warnf(err)
	}
}

// label is the pool label of the key with fingerprint fp. The pool is read
// once, and again (at most every 5 s) when a key not seen yet answers.
func (s *ledgerSink) label(fp string) string {
	if fp == "" {
		return ""
	}
	s.labelsMu.Lock()
	defer s.labelsMu.Unlock()
	if l, ok := s.labels[fp]; ok || time.Since(s.loadedAt) < 5*time.Second {
		return l
	}
	s.labels, s.loadedAt = map[string]string{fp: ""}, time.Now() // a miss is not looked up again
	store, err := s.store()
	if err != nil {
		return ""
	}
	p, err := store.Pool()
	if err != nil {
		return ""
	}
	for fp, st := range p.States {
		if st != nil && st.Label != "" {
			s.labels[fp] = st.Label
		}
	}
	return s.labels[fp]
}

// Async opens the ledger (importing what chats spooled) and makes Record
// queue entries for one writer goroutine (the proxy: no response waits on
// the disk). It returns what to hand proxy.Options (nil when the ledger is
// off or did not open, which is warned about).
func (s *ledgerSink) Async() proxy.Ledger {
	if s == nil {
		return nil
	}
	db, err := ledger.Open(context.Background(), s.path, ledger.Options{})
	if err != nil {
		s.warnf(err)
		return nil
	}
	s.db, s.writer = db, ledger.NewWriter(db, ledger.WriterOptions{Warn: s.warn})
	return s
}

// Close flushes queued entries (within 10 s), says how many were lost if
// any, and closes the ledger. A ledger opened only to record directly is
// left open for the process's exit to drop: a clean close of the last
// connection checkpoints the WAL (an fsync) that a short-lived process need
// not wait for; every row is already committed, and the next opener reads
// the short WAL back.
func (s *ledgerSink) Close() {
	if s == nil || s.writer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.writer.Close(ctx); err != nil {
		s.warn("%v", err)
	}
	if err := s.db.Close(); err != nil {
		s.warn("%v", err)
	}
}

// chatEntry is the ledger entry of one chat turn: resp is the answer (nil
// when none came), msg what arrived of it, err the turn's error as chat
// reports it.
func chatEntry(start time.Time, model string, resp *http.Response, msg *stream.Message, err error) ledger.Entry {
	e := ledger.Entry{Time: start, Model: model, Stream: true, Latency: time.Since(start), Client: chatClient}
	if resp != nil {
		e.Status, e.RequestID = resp.StatusCode, resp.Header.Get("Request-Id")
		e.Fingerprint = requestFingerprint(resp.Request)
	}
	if msg != nil {
		e.Tokens = ledger.TokensOf(msg.Usage)
		if msg.Model != "" {
			e.Model = msg.Model
		}
	}
	var apiErr *stream.APIError
	var streamErr *stream.StreamError
	switch {
	case err == nil:
	case errors.As(err, &apiErr):
		e.Status, e.ErrorType = apiErr.Status, apiErr.Type
	case errors.As(err, &streamErr):
		e.ErrorType = streamErr.Type
	case errors.Is(err, stream.ErrTruncated):
		e.ErrorType = "truncated"
	case errors.Is(err, context.Canceled), exitCode(err) == exitInterrupted:
		e.ErrorType = "interrupted"
	default:
		e.ErrorType = "error"
	}
	return e
}

// requestFingerprint is the fingerprint of the credential a request carried.
func requestFingerprint(req *http.Request) string {
	if req == nil {
		return ""
	}
	tok := req.Header.Get("X-Api-Key")
	if tok == "" {
		if scheme, t, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
			tok = strings.TrimSpace(t)
		}
	}
	if tok == "" {
		return ""
	}
	return secret.Fingerprint(tok)
}

// ledger starts the ledger entry of a turn: the returned func records the
// answer (resp, msg, err as turn has them) and returns err unchanged.
func (s *chatSession) ledger() func(ctx context.Context, resp *http.Response, msg *stream.Message, err error) error {
	start, model := time.Now(), s.opts.Model
	return func(ctx context.Context, resp *http.Response, msg *stream.Message, err error) error {
		if s.opts.Ledger != nil {
			s.opts.Ledger.Record(ctx, chatEntry(start, model, resp, msg, err))
		}
		return err
	}
}
