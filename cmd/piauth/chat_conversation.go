package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/piauth/piauth/pkg/convo"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

// titleRunes bounds the first prompt kept as a conversation's title.
const titleRunes = 200

// maxStoredText bounds the text and thinking a --stream turn keeps for the
// store: such a turn prints as it goes and otherwise keeps nothing, so that
// memory stays flat however long the answer; one longer than this is not
// stored.
const maxStoredText = 4 << 20

// ConversationsPath is the conversation store in piauth's state dir, beside
// the ledger.
func (f *Factory) ConversationsPath() (string, error) {
	dir, err := keystore.ResolveStateDir(f.Getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, convo.FileName), nil
}

// errConversationsOff: PIAUTH_LOG=off, so no conversation is stored or continued.
var errConversationsOff = errors.New("conversations are not stored (PIAUTH_LOG=off)")

// Conversations returns the conversation store of chat. Unless PIAUTH_LOG
// is off (off, 0, false, no) it starts opening the store in the background,
// while the first request is under way.
func (f *Factory) Conversations(ctx context.Context) *convoStore {
	s := &convoStore{warn: f.warnf, opened: make(chan struct{})}
	s.path, s.off = f.ConversationsPath()
	if f.logOff() {
		s.off = errConversationsOff
	}
	if s.off != nil {
		close(s.opened)
		return s
	}
	go func() {
		defer close(s.opened)
		s.db, s.err = convo.Open(context.WithoutCancel(ctx), s.path, convo.Options{})
	}()
	return s
}

// convoStore is chat's handle on the conversation store.
type convoStore struct {
	path   string
	off    error // why nothing is stored (PIAUTH_LOG=off, no state dir); nil: storing
	warn   func(format string, a ...any)
	opened chan struct{} // closed when db/err are set
	db     *convo.DB
	err    error
	// save, when set, stores a turn instead of db (tests of the session
	// that keep SQLite out of the test process).
	save func(ctx context.Context, c *convo.Conversation, t *convo.Turn) error

	warnOnce sync.Once
}

// storing reports whether turns are meant to be stored (the store may still
// fail to open).
func (s *convoStore) storing() bool { return s != nil && s.off == nil }

// open waits for the store: an error when it is off or did not open (the
// path named), for -c and --cid, which cannot go on without it.
func (s *convoStore) open() (*convo.DB, error) {
	if s == nil {
		return nil, errConversationsOff
	}
	<-s.opened
	if s.off != nil {
		return nil, s.off
	}
	if s.err != nil {
		return nil, convoOpenError(s.err)
	}
	return s.db, nil
}

// manage opens the store for --list, --show and --delete, even with
// PIAUTH_LOG=off (the conversations stored before are still there to read
// or delete).
func (s *convoStore) manage(ctx context.Context) (*convo.DB, error) {
	if errors.Is(s.off, errConversationsOff) {
		db, err := convo.Open(ctx, s.path, convo.Options{})
		if err != nil {
			return nil, convoOpenError(err)
		}
		s.db = db // for Close
		return db, nil
	}
	return s.open()
}

// convoOpenError adds what to do about a store that cannot be read.
func convoOpenError(err error) error {
	if !errors.Is(err, convo.ErrNewerSchema) && strings.Contains(err.Error(), "not a database") {
		return fmt.Errorf("%w (move it away to start a new one)", err)
	}
	return err
}

// Close waits for the background open, so that nothing touches the store
// once chat returns. The store is left open for the process's exit to drop:
// a clean close checkpoints the WAL, which measured 3.7-5.2 ms on each
// chat's exit (and bench.sh's chat_vs_curl_ratio read 1.24 and 1.32 with
// it, 1.03 before). Every turn is committed already, and the WAL stays
// bounded: the store is opened sqlitedb.LeftOpen and Record trims it past
// convo.MaxWAL.
func (s *convoStore) Close() {
	if s != nil {
		<-s.opened
	}
}

// record stores one turn; a store that cannot be opened or written is
// warned about once and the answer goes on unstored.
func (s *convoStore) record(ctx context.Context, c *convo.Conversation, t *convo.Turn) {
	if !s.storing() {
		return
	}
	<-s.opened
	err := s.err
	switch {
	case s.save != nil:
		err = s.save(ctx, c, t)
	case err == nil:
		err = s.db.Record(context.WithoutCancel(ctx), c, t)
	}
	if err != nil {
		s.warnOnce.Do(func() {
			s.warn("%v; this conversation is not stored (PIAUTH_LOG=off turns storing off)", convoOpenError(err))
		})
	}
}

// resume loads the conversation -c (the last one) or --cid names: its
// messages become the history, its key the pin, and its model, system
// prompt and tools the defaults of this run (flags given again win).
func (s *chatSession) resume(ctx context.Context) error {
	o := s.opts
	db, err := o.Conversations.open()
	if err != nil {
		return fmt.Errorf("continue a conversation: %w", err)
	}
	var c *convo.Conversation
	if o.CID != "" {
		id, err := db.Resolve(ctx, o.CID)
		if err != nil {
			return usagef("--cid %w", err)
		}
		c, err = db.Get(ctx, id)
		if err != nil {
			return err
		}
	} else if c, err = db.Last(ctx); err != nil {
		return usagef("-c: %w: start one with 'piauth chat PROMPT'", err)
	}
	turns, err := db.Turns(ctx, c.ID)
	if err != nil {
		return err
	}
	s.conv, s.history, s.pinKey = c, convo.Messages(turns), c.Fingerprint
	if n := len(turns); n > 0 {
		s.pending = toolUseIDs(turns[n-1].Response)
		s.paused = turns[n-1].StopReason == "pause_turn"
	}
	if !o.ModelSet {
		o.Model = c.Model
	}
	if !o.SystemSet {
		o.System = c.System
	}
	if o.ToolsFile == "" {
		s.tools = c.Tools
	}
	return nil
}

// reset starts a new conversation: the history is cleared and the next
// turn is stored as a new conversation (the REPL's /clear).
func (s *chatSession) reset() {
	s.conv, s.history, s.pending, s.paused, s.pinKey = nil, nil, nil, false, ""
}

// record keeps a completed exchange: in the history, and in the store
// with the key that answered. user is nil for a resumed pause_turn. An
// answer with no content keeps nothing (the API refuses an empty assistant
// turn).
func (s *chatSession) record(ctx context.Context, prompt string, user json.RawMessage, msg *stream.Message, fp string) {
	if len(msg.Content) == 0 {
		return
	}
	resp, err := json.Marshal(struct {
		Role    string         `json:"role"`
		Content []stream.Block `json:"content"`
	}{"assistant", msg.Content})
	if err != nil {
		return
	}
	if user != nil {
		s.history = append(s.history, user)
	}
	s.history = append(s.history, resp)
	s.pending = toolUseIDs(resp)
	s.paused = msg.StopReason == "pause_turn"
	s.results, s.attachments = nil, nil
	s.pinKey = fp
	o := s.opts
	if !o.Conversations.storing() {
		return
	}
	s.ensureConv(prompt)
	c := s.conv
	c.Model, c.System, c.Tools, c.Fingerprint = msg.Model, o.System, s.tools, fp
	if o.ToolsFile != "" {
		if abs, err := filepath.Abs(o.ToolsFile); err == nil {
			c.ToolsFile = abs
		}
	}
	usage, _ := json.Marshal(msg.Usage)
	t := &convo.Turn{Model: msg.Model, Fingerprint: fp, Request: user, Response: resp,
		StopReason: msg.StopReason, Usage: usage}
	if usd, ok := o.Service.Cost(msg.Model, msg.Usage); ok {
		t.CostUSD = &usd
	}
	o.Conversations.record(ctx, c, t)
}

// toolUseIDs are the ids of the client tool calls in an assistant message
// (server tools are answered by the API itself).
func toolUseIDs(message json.RawMessage) []string {
	var m struct {
		Content []struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		} `json:"content"`
	}
	if json.Unmarshal(message, &m) != nil {
		return nil
	}
	var ids []string
	for _, b := range m.Content {
		if b.Type == "tool_use" {
			ids = append(ids, b.ID)
		}
	}
	return ids
}

// truncateRunes cuts s to n runes, with "…" when cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// nextUser builds the user message of the next turn from the prompt, the
// tool results and the attachments given (nil: the turn resumes a
// pause_turn answer, which the API continues from the history alone). Tool
// calls left waiting must be answered: with --tool-result, or, in the
// interactive loop, declined as not run.
func (s *chatSession) nextUser(prompt string) (json.RawMessage, error) {
	results := s.results
	switch {
	case len(results) > 0:
		if err := checkToolResults(s.pending, results); err != nil {
			return nil, err
		}
	case len(s.pending) > 0 && s.interactive:
		results = declinedResults(s.pending)
	case len(s.pending) > 0:
		return nil, usagef("conversation %s waits for the results of tool calls %s: give --tool-result ID=JSON (or --tool-error ID=TEXT) for each",
			s.convID(), strings.Join(s.pending, ", "))
	}
	if prompt == "" && len(results) == 0 && len(s.attachments) == 0 {
		if s.paused {
			return nil, nil
		}
		return nil, usagef("empty prompt: give it as arguments or on stdin")
	}
	return userMessage(results, s.attachments, prompt), nil
}

// ensureConv names the conversation a turn is stored in before its first
// request, so that --json can tell the id with the answer: a new
// conversation gets a fresh id and prompt as its title. Without storing it
// does nothing.
func (s *chatSession) ensureConv(prompt string) {
	if s.conv == nil && s.opts.Conversations.storing() {
		s.conv = &convo.Conversation{ID: convo.NewID(), Title: truncateRunes(prompt, titleRunes)}
	}
}

// convID is the id of the conversation turns are stored in, "" when none
// (not storing, or the REPL's first turn not sent yet).
func (s *chatSession) convID() string {
	if s.conv == nil {
		return ""
	}
	return s.conv.ID
}

// textKeeper copies the text and thinking deltas of a turn whose
// Accumulator discards them, up to limit bytes in all, for the store.
type textKeeper struct {
	limit int
	n     int
	over  bool
	text  map[int][]byte // by block index
}

// add keeps d's text or thinking (nil k keeps nothing).
func (k *textKeeper) add(d stream.Delta) {
	if k == nil || k.over {
		return
	}
	p := d.Text
	if len(p) == 0 {
		p = d.Thinking
	}
	if len(p) == 0 {
		return
	}
	if k.n += len(p); k.n > k.limit {
		k.over, k.text = true, nil // past the limit: keep nothing more
		return
	}
	if k.text == nil {
		k.text = map[int][]byte{}
	}
	k.text[d.Index] = append(k.text[d.Index], p...)
}

// fill puts the kept text back into msg's blocks; false when the answer
// was over the limit (msg then is not complete enough to store). A nil k
// has nothing to fill: true.
func (k *textKeeper) fill(msg *stream.Message) bool {
	if k == nil {
		return true
	}
	if k.over {
		return false
	}
	for i := range msg.Content {
		b := &msg.Content[i]
		switch b.Type {
		case "text":
			b.Text = string(k.text[i])
		case "thinking":
			b.Thinking = string(k.text[i])
		}
	}
	return true
}
