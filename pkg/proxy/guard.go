package proxy

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// HopHeader marks a request the proxy sent upstream. A request arriving with
// it already went through a piauth proxy: the upstream is (or leads back
// to) a piauth proxy, and serving it would loop until file descriptors run
// out, so it gets 508 Loop Detected. It is not sent to Anthropic's own API
// (see OfficialAPI), where no loop can be.
const HopHeader = "X-Piauth-Proxy-Hop"

// OfficialAPI is Anthropic's API origin; upstream requests to it carry no
// HopHeader.
const OfficialAPI = "https://api.anthropic.com"

// statusLoopDetected is 508 Loop Detected (RFC 5842).
const statusLoopDetected = http.StatusLoopDetected

// loopbackHosts are the Host names always served: what a local client dials.
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// hostName is the lowercased host part of a Host header or "host:port"
// address, without brackets, port or a trailing dot.
func hostName(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// hostAllowed reports whether a request's Host names this proxy: localhost,
// a loopback literal, one of Options.Hosts or the listen host; with a
// wildcard listen address (0.0.0.0, ::) any IP literal. Only the name is
// checked, not the port (ssh -L and other forwards change it). A browser
// page under a rebound DNS name (evil.example → 127.0.0.1) sends its own
// name and is refused, so it can never read an answer. An empty Host
// (HTTP/1.0) comes from no browser and is served.
func (p *Proxy) hostAllowed(host string) bool {
	if host == "" {
		return true
	}
	h := hostName(host)
	for _, ok := range p.hosts {
		if h == ok {
			return true
		}
	}
	return p.anyIPHost && net.ParseIP(h) != nil
}

// normOrigin is the comparable form of an Origin value.
func normOrigin(o string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
}

// originAllowed reports whether a request's Origin header (set by browsers,
// never by SDKs or curl) is absent or one of Options.AllowOrigins.
func (p *Proxy) originAllowed(origin string) bool {
	if origin == "" {
		return true
	}
	_, ok := p.origins[normOrigin(origin)]
	return ok
}

// ValidOrigin reports whether o can be an Origin header value: "null" or
// scheme://host[:port] without path, query or user.
func ValidOrigin(o string) bool {
	if o == "null" {
		return true
	}
	u, err := url.Parse(strings.TrimSuffix(o, "/"))
	return err == nil && u.Scheme != "" && u.Host != "" && u.Path == "" && u.RawQuery == "" && u.User == nil && u.Fragment == ""
}

// guard refuses what must never be served, before routing and the key
// check: a foreign Host (DNS rebinding), a browser Origin not allowed, and
// a request that already went through a piauth proxy. It reports whether
// it answered.
func (p *Proxy) guard(w http.ResponseWriter, r *http.Request, rec *record) bool {
	switch {
	case !p.hostAllowed(r.Host):
		p.fail(w, rec, http.StatusForbidden, "permission_error",
			"piauth proxy: Host "+r.Host+" is not this proxy (use localhost or 127.0.0.1); refused to protect against DNS rebinding")
	case !p.originAllowed(r.Header.Get("Origin")):
		p.fail(w, rec, http.StatusForbidden, "permission_error",
			"piauth proxy: requests from web pages are refused (Origin "+r.Header.Get("Origin")+"); allow one with piauth proxy --allow-origin ORIGIN")
	case r.Header.Get(HopHeader) != "":
		p.fail(w, rec, statusLoopDetected, "api_error",
			"piauth proxy: request loop: this request already went through a piauth proxy; the proxy's upstream (PIAUTH_BASE_URL) must not lead back to a piauth proxy")
	default:
		if o := r.Header.Get("Origin"); o != "" {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", o)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "request-id, retry-after, x-should-retry")
		}
		return false
	}
	return true
}

// preflight answers a CORS preflight (OPTIONS from an allowed Origin) for
// a served route. It reports whether it answered.
func (p *Proxy) preflight(w http.ResponseWriter, r *http.Request, rec *record) bool {
	if r.Method != http.MethodOptions || r.Header.Get("Origin") == "" || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", http.MethodPost)
	h.Set("Access-Control-Allow-Headers", "authorization, x-api-key, content-type, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access")
	h.Set("Access-Control-Max-Age", "600")
	if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
		h.Set("Access-Control-Allow-Private-Network", "true") // Chrome, public page → loopback
	}
	w.WriteHeader(http.StatusNoContent)
	rec.Status = http.StatusNoContent
	return true
}

// SelfLoop reports whether upstream (a base URL) is the proxy listening on
// ln itself: same port, and a loopback host, the listen host, or any IP
// of this machine when listening on a wildcard address. Serving then would
// send every request back to the proxy.
func SelfLoop(upstream string, ln net.Addr) bool {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" {
		return false // the proxy serves plain HTTP only
	}
	tcp, ok := ln.(*net.TCPAddr)
	if !ok {
		return false
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	if port != strconv.Itoa(tcp.Port) {
		return false
	}
	ips, err := net.LookupIP(hostName(u.Host))
	if err != nil {
		return false
	}
	local := localIPs()
	for _, ip := range ips {
		if tcp.IP.IsUnspecified() && (ip.IsLoopback() || local[ip.String()]) || ip.Equal(tcp.IP) {
			return true
		}
	}
	return false
}

// localIPs are the addresses of this machine's interfaces.
func localIPs() map[string]bool {
	out := map[string]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out[n.IP.String()] = true
		}
	}
	return out
}
