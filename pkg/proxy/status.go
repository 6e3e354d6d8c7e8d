package proxy

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/piauth/piauth/pkg/keystore"
)

// StatusPath is the route of the proxy's own status (proxy key required).
const StatusPath = "/_piauth/status"

// Status is the answer of GET /_piauth/status. Field names are stable:
// `piauth proxy status` reads them. It holds no secret: keys are named by
// fingerprint and label only.
type Status struct {
	Version       string         `json:"version"`
	PID           int            `json:"pid"`
	Listen        string         `json:"listen"` // http://HOST:PORT; "" when not served by ServeListener
	StartedAt     time.Time      `json:"started_at"`
	UptimeSeconds int64          `json:"uptime_seconds"`
	InFlight      int            `json:"in_flight"`
	Requests      RequestCounts  `json:"requests"`
	Rotations     int64          `json:"rotations"`
	Sessions      int            `json:"sessions_pinned"`
	BytesIn       int64          `json:"bytes_in"`
	BytesOut      int64          `json:"bytes_out"`
	Keys          []KeyStatusRow `json:"keys"`
}

// RequestCounts counts the requests answered since the start.
type RequestCounts struct {
	Total    int64            `json:"total"`
	ByStatus map[string]int64 `json:"by_status"` // HTTP status ("200", "429"; 499 = the client went away)
}

// KeyStatusRow is one pool key's state (keystore.Pool.Status).
type KeyStatusRow struct {
	Index         int        `json:"index"` // 1-based, as `piauth key list` numbers them
	Fingerprint   string     `json:"fingerprint"`
	Label         string     `json:"label"`
	State         string     `json:"state"` // active, ready, cooling, needs-reauth, disabled, revoked
	Reason        string     `json:"reason"`
	CooldownUntil *time.Time `json:"cooldown_until"` // null unless cooling
}

// keyStatuses is every pool key's state now (none without Options.Pool or
// when the pool cannot be read).
func (p *Proxy) keyStatuses(now time.Time) []KeyStatusRow {
	out := []KeyStatusRow{}
	if p.opts.Pool == nil {
		return out
	}
	pool, err := p.opts.Pool()
	if err != nil || pool == nil {
		return out
	}
	for i, tok := range pool.Keys {
		s := pool.Status(i, now)
		row := KeyStatusRow{Index: i + 1, Fingerprint: keystore.Fingerprint(tok), State: string(s.State), Reason: s.Reason}
		if st := pool.States[row.Fingerprint]; st != nil {
			row.Label = st.Label
		}
		if !s.Until.IsZero() {
			u := s.Until.UTC()
			row.CooldownUntil = &u
		}
		out = append(out, row)
	}
	return out
}

// Status is what GET /_piauth/status answers now.
func (p *Proxy) Status() Status {
	now := p.opts.Now()
	s := Status{
		Version:       p.opts.Version,
		PID:           os.Getpid(),
		Listen:        p.listen,
		StartedAt:     p.started.UTC().Truncate(time.Second),
		UptimeSeconds: int64(now.Sub(p.started) / time.Second),
		InFlight:      len(p.inFlight),
		Rotations:     p.stats.rotated.Load(),
		Sessions:      p.sessions.pinned(now),
		BytesIn:       p.stats.bytesIn.Load(),
		BytesOut:      p.stats.bytesOut.Load(),
		Keys:          p.keyStatuses(now),
		Requests:      RequestCounts{ByStatus: map[string]int64{}},
	}
	p.stats.mu.Lock()
	s.Requests.Total = p.stats.total
	for code, n := range p.stats.byStatus {
		s.Requests.ByStatus[strconv.Itoa(code)] = n
	}
	p.stats.mu.Unlock()
	return s
}

// serveStatus answers GET /_piauth/status.
func (p *Proxy) serveStatus(w http.ResponseWriter, rec *record) {
	body, err := json.MarshalIndent(p.Status(), "", "  ")
	if err != nil {
		p.fail(w, rec, http.StatusInternalServerError, "api_error", "piauth proxy: status: "+err.Error())
		return
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Cache-Control", "no-store")
	rec.Status = http.StatusOK
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
