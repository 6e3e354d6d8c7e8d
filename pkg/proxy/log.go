package proxy

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/piauth/piauth/internal/when"
)

// record is what the log says about one request. It never holds a whole
// credential: Key is masked (or a pool label) and the client's key is never
// stored.
type record struct {
	Time    time.Time
	Method  string
	Path    string
	Query   string // the raw query ("beta=true"), masked
	Session string // the session's short id ("" when none)
	Key     string // masked upstream key, else the pool label
	Status  int
	Latency time.Duration
	Stream  bool
	In, Out int64  // input/output tokens
	Error   string // error type, client_closed or truncated; "" when fine

	route        string // the route served, for /metrics ("other" when none)
	errorCounted bool   // Error went into the metrics

	ledgerFields // what only the ledger keeps (ledger.go)
}

// logLine is the NDJSON form of a record; field names are stable.
type logLine struct {
	Time         string  `json:"time"`
	Method       string  `json:"method"`
	Path         string  `json:"path"`
	Query        string  `json:"query,omitempty"`
	Session      string  `json:"session,omitempty"`
	Key          string  `json:"key,omitempty"`
	Status       int     `json:"status"`
	LatencyMS    float64 `json:"latency_ms"`
	Stream       bool    `json:"stream"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	Error        string  `json:"error,omitempty"`
}

// log writes rec as one line (text or NDJSON) on Options.Log.
func (p *Proxy) log(rec *record) {
	if p.opts.Log == nil {
		return
	}
	var line []byte
	if p.opts.JSONLog {
		line, _ = json.Marshal(logLine{
			Time:         rec.Time.UTC().Format(time.RFC3339Nano),
			Method:       rec.Method,
			Path:         rec.Path,
			Query:        rec.Query,
			Session:      rec.Session,
			Key:          rec.Key,
			Status:       rec.Status,
			LatencyMS:    float64(rec.Latency.Microseconds()) / 1000,
			Stream:       rec.Stream,
			InputTokens:  rec.In,
			OutputTokens: rec.Out,
			Error:        rec.Error,
		})
		line = append(line, '\n')
	} else {
		var b strings.Builder
		target := rec.Path
		if rec.Query != "" {
			target += "?" + rec.Query
		}
		fmt.Fprintf(&b, "%s %s %q %d %s", rec.Time.UTC().Format("2006-01-02T15:04:05.000Z"), rec.Method, target,
			rec.Status, when.Latency(rec.Latency))
		if rec.Session != "" {
			fmt.Fprintf(&b, " session=%s", rec.Session)
		}
		if rec.Key != "" {
			fmt.Fprintf(&b, " key=%s", rec.Key)
		}
		if rec.Stream {
			b.WriteString(" stream")
		}
		fmt.Fprintf(&b, " in=%d out=%d", rec.In, rec.Out)
		if rec.Error != "" {
			fmt.Fprintf(&b, " error=%s", rec.Error)
		}
		b.WriteByte('\n')
		line = []byte(b.String())
	}
	p.logMu.Lock()
	defer p.logMu.Unlock()
	_, _ = p.opts.Log.Write(line)
}

// usageFields are the token counts of a usage object; nil = absent.
type usageFields struct {
	InputTokens  *int64 `json:"input_tokens"`
	OutputTokens *int64 `json:"output_tokens"`
	cacheFields
}

func (rec *record) setUsage(u usageFields) {
	if u.InputTokens != nil {
		rec.In = *u.InputTokens
	}
	if u.OutputTokens != nil {
		rec.Out = *u.OutputTokens
	}
	rec.setCache(u.cacheFields)
}

// eventUsage takes the usage of a message_start or message_delta event
// (cumulative: values overwrite).
func (rec *record) eventUsage(data []byte) {
	var ev struct {
		Message struct {
			Model string      `json:"model"`
			Usage usageFields `json:"usage"`
		} `json:"message"`
		Usage usageFields `json:"usage"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return
	}
	rec.setModel(ev.Message.Model)
	rec.setUsage(ev.Message.Usage)
	rec.setUsage(ev.Usage)
}

// jsonUsage takes the usage of a message, or the input_tokens of a
// count_tokens answer.
func (rec *record) jsonUsage(data []byte) {
	var msg struct {
		Model       string      `json:"model"`
		Usage       usageFields `json:"usage"`
		InputTokens *int64      `json:"input_tokens"`
	}
	if json.Unmarshal(data, &msg) != nil {
		return
	}
	rec.setModel(msg.Model)
	rec.setUsage(msg.Usage)
	rec.setUsage(usageFields{InputTokens: msg.InputTokens})
}
