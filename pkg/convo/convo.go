// Package convo is piauth's store of chat conversations: every turn of
// `piauth chat` with the messages exactly as the Messages API took and gave
// them (content blocks as JSON, thinking signatures and tool calls
// included), so that a conversation can be continued as it was, on the key
// that answered it.
//
// The store is a SQLite database (modernc.org/sqlite) in the state dir, next
// to the ledger, opened like the ledger (see Open).
package convo

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/piauth/piauth/internal/sqlitedb"
)

// FileName is the store's file name in piauth's state dir.
const FileName = "conversations.db"

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no conversation has the id (or prefix), or there is none yet.
	ErrNotFound = errors.New("no such conversation")
	// ErrAmbiguous: an id prefix matches more than one conversation.
	ErrAmbiguous = errors.New("conversation id prefix is ambiguous")
)

// Conversation is one conversation's header.
type Conversation struct {
	ID          string          // IDLength characters of lowercase Crockford base32
	Created     time.Time       // first turn
	Updated     time.Time       // last turn
	Model       string          // the last turn's model
	System      string          // system prompt
	Tools       json.RawMessage // JSON array of tool definitions, nil for none
	ToolsFile   string          // the file Tools were read from
	Fingerprint string          // the key that answered the last turn ("" the login)
	Title       string          // the first prompt

	// Filled by List (and Get): the number of turns and their summed cost
	// over the turns with a known price.
	Turns   int
	CostUSD float64
}

// Turn is one request and its answer.
type Turn struct {
	Seq         int       // 1-based position in the conversation (set by Record)
	Time        time.Time // when the answer completed
	Model       string
	Fingerprint string          // the key that answered
	Request     json.RawMessage // the user message ({"role":"user","content":…}); nil when the turn resumed a paused one
	Response    json.RawMessage // the assistant message ({"role":"assistant","content":[…]})
	StopReason  string
	Usage       json.RawMessage // the API's usage object
	CostUSD     *float64        // nil: no known price
}

// IDLength is the length of a new conversation id.
const IDLength = 10

// idAlphabet is Crockford's base32 in lower case (no i, l, o, u): ids are
// typed by hand.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// NewID returns a random conversation id (50 bits).
func NewID() string {
	var b [IDLength]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	for i := range b {
		b[i] = idAlphabet[b[i]&31]
	}
	return string(b[:])
}

// Record stores t as the next turn of c. A c not stored yet is created
// first, with c.ID (a NewID when empty) and c.Created (t's time when zero);
// a c.ID given ahead lets a caller name the conversation before its first
// answer. The conversation's header takes c's model, system, tools and
// fingerprint and t's time as its update time. t.Seq is set.
func (d *DB) Record(ctx context.Context, c *Conversation, t *Turn) error {
	if t.Time.IsZero() {
		t.Time = d.now()
	}
	if c.ID == "" {
		c.ID = NewID()
	}
	if c.Created.IsZero() {
		c.Created = t.Time
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("conversations: record: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, created, updated, title) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, c.ID, c.Created.UnixMilli(), t.Time.UnixMilli(), c.Title); err != nil {
		return fmt.Errorf("conversations: record: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE conversations SET updated = ?, model = ?, system = ?, tools = ?,
		tools_file = ?, fingerprint = ? WHERE id = ?`, t.Time.UnixMilli(), c.Model, c.System, string(c.Tools),
		c.ToolsFile, c.Fingerprint, c.ID); err != nil {
		return fmt.Errorf("conversations: record: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM turns WHERE conversation = ?`, c.ID).Scan(&t.Seq); err != nil {
		return fmt.Errorf("conversations: record: %w", err)
	}
	usage := string(t.Usage)
	if usage == "" {
		usage = "{}"
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO turns (conversation, seq, ts, model, fingerprint, request, response,
		stop_reason, usage, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, t.Seq, t.Time.UnixMilli(), t.Model,
		t.Fingerprint, string(t.Request), string(t.Response), t.StopReason, usage, t.CostUSD); err != nil {
		return fmt.Errorf("conversations: record: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("conversations: record: %w", err)
	}
	c.Updated = t.Time
	// Best effort: the turn is stored, and a WAL another process's reader
	// holds now is trimmed by a later turn.
	_ = sqlitedb.TrimWAL(ctx, d.db, d.path, MaxWAL)
	return nil
}

// Resolve returns the id of the conversation whose id starts with prefix
// (case-insensitive): ErrNotFound when none does, ErrAmbiguous (naming the
// matches) when several do.
func (d *DB) Resolve(ctx context.Context, prefix string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(prefix))
	if p == "" || strings.Trim(p, idAlphabet) != "" {
		return "", fmt.Errorf("%q: %w", prefix, ErrNotFound)
	}
	rows, err := d.db.QueryContext(ctx, `SELECT id FROM conversations WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 6`, len(p), p)
	if err != nil {
		return "", fmt.Errorf("conversations: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return "", fmt.Errorf("conversations: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("conversations: %w", err)
	}
	switch {
	case len(ids) == 0:
		return "", fmt.Errorf("%q: %w", prefix, ErrNotFound)
	case len(ids) > 1:
		return "", fmt.Errorf("%q: %w: %s", prefix, ErrAmbiguous, strings.Join(ids, ", "))
	}
	return ids[0], nil
}

// Last returns the most recently updated conversation (ErrNotFound when
// there is none).
func (d *DB) Last(ctx context.Context) (*Conversation, error) {
	cs, err := d.list(ctx, "", 1)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("conversations: %w yet", ErrNotFound)
	}
	return &cs[0], nil
}

// Get returns the conversation with exactly id.
func (d *DB) Get(ctx context.Context, id string) (*Conversation, error) {
	cs, err := d.list(ctx, id, 1)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("%q: %w", id, ErrNotFound)
	}
	return &cs[0], nil
}

// List returns up to limit conversations (all when limit ≤ 0), the most
// recently updated first.
func (d *DB) List(ctx context.Context, limit int) ([]Conversation, error) {
	return d.list(ctx, "", limit)
}

func (d *DB) list(ctx context.Context, id string, limit int) ([]Conversation, error) {
	q := `SELECT c.id, c.created, c.updated, c.model, c.system, c.tools, c.tools_file, c.fingerprint, c.title,
		(SELECT count(*) FROM turns t WHERE t.conversation = c.id),
		(SELECT coalesce(sum(cost_usd), 0) FROM turns t WHERE t.conversation = c.id)
		FROM conversations c WHERE ? = '' OR c.id = ? ORDER BY c.updated DESC, c.id`
	args := []any{id, id}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	defer rows.Close()
	var out []Conversation
	for rows.Next() {
		var c Conversation
		var created, updated int64
		var tools string
		if err := rows.Scan(&c.ID, &created, &updated, &c.Model, &c.System, &tools, &c.ToolsFile,
			&c.Fingerprint, &c.Title, &c.Turns, &c.CostUSD); err != nil {
			return nil, fmt.Errorf("conversations: %w", err)
		}
		c.Created, c.Updated = time.UnixMilli(created), time.UnixMilli(updated)
		if tools != "" {
			c.Tools = json.RawMessage(tools)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	return out, nil
}

// Turns returns the turns of conversation id, in order.
func (d *DB) Turns(ctx context.Context, id string) ([]Turn, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT seq, ts, model, fingerprint, request, response, stop_reason, usage, cost_usd
		FROM turns WHERE conversation = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	defer rows.Close()
	var out []Turn
	for rows.Next() {
		var t Turn
		var ts int64
		var req, resp, usage string
		var cost sql.NullFloat64
		if err := rows.Scan(&t.Seq, &ts, &t.Model, &t.Fingerprint, &req, &resp, &t.StopReason, &usage, &cost); err != nil {
			return nil, fmt.Errorf("conversations: %w", err)
		}
		t.Time, t.Response, t.Usage = time.UnixMilli(ts), json.RawMessage(resp), json.RawMessage(usage)
		if req != "" {
			t.Request = json.RawMessage(req)
		}
		if cost.Valid {
			t.CostUSD = &cost.Float64
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	return out, nil
}

// Messages returns the messages of turns in the order the API takes them.
func Messages(turns []Turn) []json.RawMessage {
	out := make([]json.RawMessage, 0, 2*len(turns))
	for _, t := range turns {
		if t.Request != nil {
			out = append(out, t.Request)
		}
		out = append(out, t.Response)
	}
	return out
}

// Delete removes conversation id and its turns.
func (d *DB) Delete(ctx context.Context, id string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("conversations: delete: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM conversations WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("conversations: delete: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%q: %w", id, ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM turns WHERE conversation = ?`, id); err != nil {
		return fmt.Errorf("conversations: delete: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("conversations: delete: %w", err)
	}
	return nil
}
