package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/stream"
)

// maxErrorBody caps an upstream error answer passed to the client.
const maxErrorBody = 1 << 20

// streamReadSize is the most one read from upstream takes, as
// httputil.ReverseProxy's copy buffer: each read ends with a write to the
// client, so a stream the proxy fell behind on is caught up in few writes.
// Only the pages a read fills are resident: a stream that keeps up (events
// arrive one at a time) or waits touches one.
const streamReadSize = 32 << 10

// keepRequestHeader reports whether a client request header goes upstream.
// Credentials, hop-by-hop and all other headers are dropped; the transport
// adds its own credentials and merges anthropic-beta with the OAuth betas.
func keepRequestHeader(canonical string) bool {
	switch canonical {
	case "Anthropic-Version", "Anthropic-Beta", "Content-Type", "Accept":
		return true
	}
	return false
}

// keepResponseHeader reports whether an upstream response header goes back
// to the client: the request id, retry hints and rate-limit headers.
func keepResponseHeader(canonical string) bool {
	switch canonical {
	case "Request-Id", "Retry-After", "Retry-After-Ms", "X-Should-Retry":
		return true
	}
	return strings.HasPrefix(canonical, "Anthropic-Ratelimit-")
}

// forward sends the client's request upstream through the credentialed
// client and passes the answer back.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, rec *record) {
	body, ok := p.readBody(w, r, rec)
	if !ok {
		return
	}
	defer body.release()
	rec.upstream, rec.body = true, body.data
	target := p.opts.Upstream + r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	// A session stays on the key it is on while that key is usable
	// (rotate.Pin); a new one starts where any new request would.
	ctx := r.Context()
	sid := sessionID(r, body.data)
	var pin *rotate.Pin
	if sid != "" {
		rec.Session = shortSession(sid)
		pin = &rotate.Pin{Key: p.sessionKey(ctx, sid)}
		ctx = rotate.WithPin(ctx, pin)
	}
	tr := &trail{}
	ctx = withTrail(ctx, tr)
	// The body is a bytes.Reader, so GetBody is set: a rotating transport
	// replays it for each key.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body.data))
	if err != nil {
		p.fail(w, rec, http.StatusBadGateway, "api_error", "piauth proxy: build upstream request: "+err.Error())
		return
	}
	for name, vs := range r.Header {
		if keepRequestHeader(name) {
			req.Header[name] = vs
		}
	}
	if p.addHop {
		req.Header.Set(HopHeader, "1")
	}
	resp, err := p.opts.Client.Do(req)
	p.countRotations(tr.rotations())
	if pin != nil {
		if fp, _, _ := pin.Used(); fp != "" {
			p.setSessionKey(ctx, sid, fp)
		}
	}
	if err != nil {
		p.transportFailed(w, r, rec, err)
		return
	}
	defer resp.Body.Close()
	rec.Key, rec.fingerprint = upstreamKey(resp.Request)
	rec.requestID = resp.Header.Get("Request-Id")
	for name, vs := range resp.Header {
		if keepResponseHeader(name) {
			w.Header()[name] = vs
		}
	}
	p.capRetryAfter(w.Header())
	var tools *stream.ToolNames
	toolNames := func() *stream.ToolNames { // parsed only when a mapped name shows up
		if tools == nil {
			tools = stream.ToolNamesFor(body.data)
		}
		return tools
	}
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		p.passError(w, resp, rec)
	case isEventStream(resp.Header.Get("Content-Type")):
		p.passStream(w, r, resp, toolNames, rec)
	default:
		p.passJSON(w, r, resp, toolNames, rec)
	}
}

// upstreamKey is the masked credential the transport sent, and its
// fingerprint, read from the request it attached to the response ("" when
// unknown).
func upstreamKey(req *http.Request) (masked, fingerprint string) {
	if req == nil {
		return "", ""
	}
	tok := req.Header.Get("X-Api-Key")
	if tok == "" {
		tok = bearer(req.Header.Get("Authorization"))
	}
	if tok == "" {
		return "", ""
	}
	return keystore.Mask(tok), keystore.Fingerprint(tok)
}

// passError passes an upstream error answer (status, body and the useful
// headers already copied) to the client.
func (p *Proxy) passError(w http.ResponseWriter, resp *http.Response, rec *record) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	rec.Status, rec.Error = resp.StatusCode, errorType(data)
	p.countError(rec)
	if err != nil && len(data) == 0 {
		data = errorJSON(rec.Error, "piauth proxy: read upstream error: "+err.Error())
	}
	// Verbatim but for tokens: clients substring-match error bodies.
	data = maskAll(data)
	writeAnswer(w, resp, data)
}

// writeAnswer writes a whole (non-streamed) answer: upstream's status and
// content type (JSON when it named none) with data as the body.
func writeAnswer(w http.ResponseWriter, resp *http.Response, data []byte) {
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(data)
}

// errorType is error.type of an Anthropic error body, "api_error" otherwise.
func errorType(data []byte) string {
	var e apiErrorBody
	if json.Unmarshal(data, &e) == nil && e.Error.Type != "" {
		return e.Error.Type
	}
	return "api_error"
}

// passJSON passes a non-streamed answer, with tool names mapped back.
func (p *Proxy) passJSON(w http.ResponseWriter, r *http.Request, resp *http.Response, tools func() *stream.ToolNames, rec *record) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMessageBody+1))
	if err == nil && len(data) > maxMessageBody {
		p.fail(w, rec, http.StatusBadGateway, "api_error", "piauth proxy: upstream answer exceeds "+mib(maxMessageBody)+", the proxy's limit")
		return
	}
	if err != nil {
		if r.Context().Err() != nil {
			rec.Status, rec.Error = statusClientClosed, "client_closed"
			return
		}
		p.fail(w, rec, http.StatusBadGateway, "api_error", "piauth proxy: read upstream answer: "+err.Error())
		return
	}
	if bytes.Contains(data, []byte(stream.ToolPrefix)) {
		data = stream.MapMessageToolNames(data, tools())
	}
	rec.jsonUsage(data)
	rec.Status = resp.StatusCode
	writeAnswer(w, resp, data)
}

// passStream passes a streamed answer event by event. Tool names in
// content_block_start are mapped back; usage is peeked for the log. A broken
// upstream stream ends with an `event: error`.
//
// Events are flushed to the client whenever the proxy has no further
// complete event in hand, i.e. before every read from upstream that could
// wait: no event ever sits in the proxy while it waits for upstream, and
// a client that is behind gets the events already received in one write.
func (p *Proxy) passStream(w http.ResponseWriter, r *http.Request, resp *http.Response, tools func() *stream.ToolNames, rec *record) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(resp.StatusCode)
	rec.Status, rec.Stream = resp.StatusCode, true

	out := newEventWriter(w, &p.events)
	// The decoder bounds each event itself (SetMaxEvent): no second pass
	// over the bytes.
	body := &flushingReader{r: resp.Body, flush: out.flush}
	prefix := []byte(stream.ToolPrefix)
	stopped := false
	dec := stream.NewDecoderSize(body, streamReadSize)
	dec.SetMaxEvent(p.opts.MaxEventBytes)
	for dec.Next() {
		ev := dec.Event()
		data := ev.Data
		switch ev.Name {
		case "content_block_start":
			if bytes.Contains(data, prefix) {
				data = stream.MapEventToolName(data, tools())
			}
		case "message_start", "message_delta":
			rec.eventUsage(data)
		case "message_stop":
			stopped = true
		case "error":
			rec.Error = errorType(data)
			data = maskAll(data)
		}
		out.event(ev.Name, data)
	}
	err := dec.Err()
	switch {
	case body.clientErr != nil || err != nil && r.Context().Err() != nil:
		rec.Error = "client_closed"
		return
	case errors.Is(err, ErrEventTooLarge), errors.Is(err, stream.ErrEventTooLarge):
		rec.Error = "event_too_large"
		out.event("error", errorJSON("api_error", "piauth proxy: an upstream event exceeds "+
			mib(int64(p.opts.MaxEventBytes))+", the proxy's limit; the stream was cut"))
	case err != nil:
		rec.Error = "api_error"
		out.event("error", errorJSON("api_error", maskString("piauth proxy: upstream stream broke: "+err.Error())))
	case !stopped && rec.Error == "":
		rec.Error = "truncated"
	}
	_ = body.flush()
}

// flushingReader flushes the events written to the client before each read
// from upstream.
type flushingReader struct {
	r         io.Reader
	flush     func() error
	clientErr error // the client could not be written to
}

func (f *flushingReader) Read(p []byte) (int, error) {
	if err := f.flush(); err != nil {
		f.clientErr = err
		return 0, fmt.Errorf("write to client: %w", err)
	}
	return f.r.Read(p)
}

// maskAll masks every Anthropic token in data (secret.MaskAll), leaving the
// rest byte for byte.
func maskAll(data []byte) []byte {
	if !bytes.Contains(data, []byte("sk-ant")) {
		return data
	}
	return []byte(secret.MaskAll(string(data)))
}

// maskString is maskAll for a message.
func maskString(s string) string { return secret.MaskAll(s) }
