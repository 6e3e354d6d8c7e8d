package proxy

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// clientBody is a request body read whole, holding its share of the body
// budget until release.
type clientBody struct {
	data []byte
	br   *budgetReader
}

func (b *clientBody) release() { b.br.release() }

// readBody reads the client's body within Options.MaxBodyBytes (413
// beyond) and the shared body budget (529 when spent). A gzip body
// (content-encoding: gzip, what Claude Code sends over ~4 KB) is decoded,
// and the limits apply to its decoded size. ok is false when it answered.
func (p *Proxy) readBody(w http.ResponseWriter, r *http.Request, rec *record) (body *clientBody, ok bool) {
	limit := p.opts.MaxBodyBytes
	gzipped := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gzipped = true
	default:
		p.fail(w, rec, http.StatusUnsupportedMediaType, "invalid_request_error",
			"piauth proxy: content-encoding "+enc+" is not supported (send gzip or none)")
		return nil, false
	}
	if r.ContentLength > limit {
		p.fail(w, rec, http.StatusRequestEntityTooLarge, "request_too_large",
			"Request exceeds the maximum allowed number of bytes ("+strconv.FormatInt(limit, 10)+").")
		return nil, false
	}
	var src io.Reader = &countingReader{r: http.MaxBytesReader(w, r.Body, limit), n: &p.stats.bytesIn}
	if gzipped {
		zr, err := gzip.NewReader(src)
		if err != nil {
			p.bodyFailed(w, r, rec, fmt.Errorf("%w: %w", errBadGzip, err))
			return nil, false
		}
		defer zr.Close()
		// The decoded size is what is held and sent on: bound it, not the
		// compressed one (a small bomb decodes to gigabytes).
		src = &gzipReader{r: http.MaxBytesReader(w, io.NopCloser(zr), limit)}
	}
	br := &budgetReader{r: src, sem: p.bodies}
	if r.ContentLength > 0 {
		if !p.bodies.TryAcquire(r.ContentLength) {
			p.busy(w, rec, "request bodies in flight fill the proxy's "+mib(p.opts.MaxBodyBytesInFlight))
			return nil, false
		}
		br.held = r.ContentLength
	}
	size := max(r.ContentLength, 512)
	if gzipped {
		size = min(size*8, limit) // a JSON body shrinks about this much
	}
	data, err := readAllInto(make([]byte, 0, size+1), br)
	if err == nil {
		return &clientBody{data: data, br: br}, true
	}
	br.release()
	p.bodyFailed(w, r, rec, err)
	return nil, false
}

// errBadGzip is a content-encoding: gzip body that does not decode.
var errBadGzip = errors.New("request body is not valid gzip")

// gzipReader marks decoding errors of a gzip body as errBadGzip.
type gzipReader struct{ r io.Reader }

func (g *gzipReader) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	var tooBig *http.MaxBytesError
	if err != nil && err != io.EOF && !errors.As(err, &tooBig) && !errors.Is(err, errBodyBudget) {
		err = fmt.Errorf("%w: %w", errBadGzip, err)
	}
	return n, err
}

// bodyFailed answers a request whose body could not be read whole.
func (p *Proxy) bodyFailed(w http.ResponseWriter, r *http.Request, rec *record, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		p.fail(w, rec, http.StatusRequestEntityTooLarge, "request_too_large",
			"Request exceeds the maximum allowed number of bytes ("+strconv.FormatInt(tooBig.Limit, 10)+").")
	case errors.Is(err, errBodyBudget):
		p.busy(w, rec, "request bodies in flight fill the proxy's "+mib(p.opts.MaxBodyBytesInFlight))
	case r.Context().Err() != nil:
		rec.Status, rec.Error = statusClientClosed, "client_closed"
	case errors.Is(err, errBadGzip):
		p.fail(w, rec, http.StatusBadRequest, "invalid_request_error", "piauth proxy: "+err.Error())
	default:
		p.fail(w, rec, http.StatusBadRequest, "invalid_request_error", "read request body: "+err.Error())
	}
}

// countingReader adds the bytes read to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// readAllInto is io.ReadAll appending to buf (sized from Content-Length,
// so a body of known length is read without regrowing).
func readAllInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
