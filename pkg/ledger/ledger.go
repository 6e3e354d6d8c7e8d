// Package ledger is piauth's local record of every Messages answer chat and
// the proxy got: when, which key (by fingerprint, never the token), which
// model, the outcome, the tokens by kind and their cost. It never holds
// prompt or answer text.
//
// The ledger is a SQLite database (modernc.org/sqlite, pure Go) in WAL mode,
// shared by every piauth process: Open it, Record rows (one prepared INSERT
// each), or hand the DB to a Writer, which records off the request path, and
// Report over a time range.
package ledger

import (
	"time"

	"github.com/piauth/piauth/pkg/stream"
)

// FileName is the ledger's file name in piauth's state dir.
const FileName = "ledger.db"

// Entry is one Messages answer (or failure) as the ledger keeps it.
type Entry struct {
	Time        time.Time     // when the request started
	Fingerprint string        // secret.Fingerprint of the key that answered; "" when none did
	Label       string        // the pool label of that key, "" when none
	Model       string        // model id (the answer's, else the request's)
	Status      int           // HTTP status the caller got (0: no answer)
	ErrorType   string        // the API's error type, or truncated, client_closed…; "" when fine
	Stream      bool          // a streamed answer
	Latency     time.Duration // request start to the answer's end
	Tokens      Tokens        // usage the answer reported
	Cost        float64       // USD at list prices; meaningful when Priced
	Priced      bool          // the model has known prices
	Client      string        // "piauth-chat", or the proxy client's user-agent family
	RequestID   string        // the API's request-id header
}

// Tokens are the token counts of one answer by kind. The cache writes are
// split by TTL; their sum is the API's cache_creation_input_tokens.
type Tokens struct {
	Input        int64
	Output       int64
	CacheWrite5m int64
	CacheWrite1h int64
	CacheRead    int64
}

// TokensOf splits a stream.Usage the way Service.Cost prices it: the 1-hour
// cache writes, and the rest of the cache writes at the 5-minute rate.
func TokensOf(u stream.Usage) Tokens {
	total := max(u.CacheCreationInputTokens, u.CacheCreation5m+u.CacheCreation1h)
	w1h := min(max(u.CacheCreation1h, 0), total)
	return Tokens{
		Input:        u.InputTokens,
		Output:       u.OutputTokens,
		CacheWrite5m: total - w1h,
		CacheWrite1h: w1h,
		CacheRead:    u.CacheReadInputTokens,
	}
}

// Usage is t as a stream.Usage (for Service.Cost).
func (t Tokens) Usage() stream.Usage {
	return stream.Usage{
		InputTokens:              t.Input,
		OutputTokens:             t.Output,
		CacheCreationInputTokens: t.CacheWrite5m + t.CacheWrite1h,
		CacheCreation5m:          t.CacheWrite5m,
		CacheCreation1h:          t.CacheWrite1h,
		CacheReadInputTokens:     t.CacheRead,
	}
}

// add adds u to t.
func (t *Tokens) add(u Tokens) {
	t.Input += u.Input
	t.Output += u.Output
	t.CacheWrite5m += u.CacheWrite5m
	t.CacheWrite1h += u.CacheWrite1h
	t.CacheRead += u.CacheRead
}
