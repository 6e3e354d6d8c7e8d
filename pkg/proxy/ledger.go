package proxy

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/piauth/piauth/pkg/ledger"
	"github.com/piauth/piauth/pkg/stream"
)

// Ledger records one answer per Messages request that went upstream
// (*ledger.Writer, or the CLI's wrapper that adds labels and prices). Record
// must not wait on the disk: it runs before the handler returns.
type Ledger interface {
	Record(ctx context.Context, e ledger.Entry)
}

// ledgerFields are the parts of a record only the ledger keeps. None is a
// secret: the key is its fingerprint.
type ledgerFields struct {
	upstream    bool   // the request was forwarded (body read, client key accepted)
	body        []byte // the client's request body, for its model when the answer has none
	model       string // the answer's model
	fingerprint string // of the upstream key
	requestID   string // upstream request-id
	cacheRead   int64
	cacheWrite  int64 // cache_creation_input_tokens
	cache5m     int64 // cache_creation.ephemeral_5m_input_tokens
	cache1h     int64 // cache_creation.ephemeral_1h_input_tokens
}

// cacheFields are the cache token counts of a usage object; nil = absent.
type cacheFields struct {
	CacheRead     *int64 `json:"cache_read_input_tokens"`
	CacheCreation *int64 `json:"cache_creation_input_tokens"`
	Split         *struct {
		E5m *int64 `json:"ephemeral_5m_input_tokens"`
		E1h *int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
}

// setCache takes the cache counts of u (cumulative: values overwrite).
func (rec *record) setCache(u cacheFields) {
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&rec.cacheRead, u.CacheRead)
	set(&rec.cacheWrite, u.CacheCreation)
	if u.Split != nil {
		set(&rec.cache5m, u.Split.E5m)
		set(&rec.cache1h, u.Split.E1h)
	}
}

// setModel keeps the first model an answer names.
func (rec *record) setModel(m string) {
	if rec.model == "" {
		rec.model = m
	}
}

// record hands rec to Options.Ledger when it was a Messages request that
// went upstream.
func (p *Proxy) record(r *http.Request, rec *record) {
	if p.opts.Ledger == nil || !rec.upstream || rec.Path != messagesPath {
		return
	}
	model := rec.model
	if model == "" {
		var req struct {
			Model string `json:"model"`
		}
		_ = json.Unmarshal(rec.body, &req)
		model = req.Model
	}
	rec.body = nil
	tokens := ledger.TokensOf(usageOf(rec))
	p.opts.Ledger.Record(context.Background(), ledger.Entry{
		Time:        rec.Time,
		Fingerprint: rec.fingerprint,
		Model:       model,
		Status:      rec.Status,
		ErrorType:   rec.Error,
		Stream:      rec.Stream,
		Latency:     rec.Latency,
		Tokens:      tokens,
		Client:      ledger.ClientFamily(r.UserAgent()),
		RequestID:   rec.requestID,
	})
}

// usageOf is the usage rec saw.
func usageOf(rec *record) stream.Usage {
	return stream.Usage{
		InputTokens:              rec.In,
		OutputTokens:             rec.Out,
		CacheCreationInputTokens: rec.cacheWrite,
		CacheCreation5m:          rec.cache5m,
		CacheCreation1h:          rec.cache1h,
		CacheReadInputTokens:     rec.cacheRead,
	}
}
