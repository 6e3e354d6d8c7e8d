package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/internal/httpx"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/stream"
)

// proxyOptions are the inputs of `piauth proxy`.
type proxyOptions struct {
	IO    *IOStreams
	Store func() (*keystore.Store, error) // the agent dir
	// Key returns the proxy key and its file (Factory.ProxyKey).
	Key    func(ctx context.Context, agentDir string) (key, path string, err error)
	Client func(ctx context.Context) (*messagesClient, error) // credentials, shaping, rotation
	Warnf  func(format string, a ...any)                      // warnings on stderr
	Now    func() time.Time                                   // clock of the request log
	Addr   string                                             // listen address
	NoAuth bool                                               // no client key required
	// ShowKey prints the proxy key (creating it if needed) and exits.
	ShowKey bool
	JSONLog bool // NDJSON request log
	// AllowOrigins are the browser origins served (--allow-origin).
	AllowOrigins []string
	// KeyCmd is the command that prints the proxy key, for the banner.
	KeyCmd string
	// Ledger opens the request ledger (Factory.Ledger; nil: none).
	Ledger func(ctx context.Context) *ledgerSink
	// MaxRetryAfter caps the retry-after sent to clients (--max-retry-after).
	MaxRetryAfter time.Duration
	// WaitForKey holds a request while every key cools down when the first
	// frees within it (--wait-for-key; 0: answer 429 at once).
	WaitForKey time.Duration
	// Version is reported by /_piauth/status.
	Version string
}

func newProxyCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "proxy",
		Usage: "serve a local Messages endpoint with the pool, refresh and rotation",
		Description: `Serves POST /v1/messages (streaming or not) and POST /v1/messages/count_tokens
on loopback until interrupted. Each request gets piauth's credential (the active
pool key, or auth.json's), the OAuth shaping and key rotation; the client's own
credentials are dropped. Point any Anthropic client at it:
  export ANTHROPIC_BASE_URL=http://127.0.0.1:8787 ANTHROPIC_API_KEY=$(piauth proxy --show-key)
Clients must present the proxy key (generated on first start, stored 0600 in
piauth's state dir as proxy-key, printed by --show-key and never at start) as
x-api-key or Authorization: Bearer; your current login's token (auth.json's,
what pi sends when logged in) is accepted too, and replaced like any client
credential. Only Host names of this machine (localhost, 127.0.0.1, [::1], the
listen address) are served, and no web page (Origin header) unless
--allow-origin names it. A request that already went through a piauth proxy
gets 508 (PIAUTH_BASE_URL must not lead back to a proxy). At most 256 requests
run at once (then 529), holding at most 256 MiB of request bodies; an upstream
SSE event over 16 MiB cuts the stream with an error event. On SIGINT or SIGTERM
the proxy stops accepting and lets open streams finish (up to 30s).

It also answers what Claude Code calls besides Messages: HEAD / and /api/hello
(200), POST /api/event_logging/batch (200, dropped, never forwarded) and GET
/v1/models (the API's list merged with piauth's table, or the table alone).
gzip request bodies are decoded. Requests with the same X-Claude-Code-Session-Id
(else metadata.user_id) stay on the key they started on while it is usable.
When every key is cooling the client gets 429 with the last rate-limit headers
and a retry-after of at most --max-retry-after; --wait-for-key holds the
request instead when a key frees sooner. GET /_piauth/status (proxy key
required) reports counters and key states as JSON; GET /metrics serves them to
Prometheus without a key.`,
		Subcommands: proxyServiceCommands(f),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: proxy.DefaultAddr, Usage: "listen `ADDRESS`; a non-loopback host exposes your subscription to the network"},
			&cli.BoolFlag{Name: "no-auth", Usage: "do not require the proxy key (anyone who can reach the port spends your subscription)"},
			&cli.BoolFlag{Name: "show-key", Usage: "print the proxy key (creating it if needed) and exit"},
			&cli.BoolFlag{Name: "json-log", Usage: "log one NDJSON object per request on stderr"},
			&cli.Float64Flag{Name: "switch-at", Usage: "start new requests on the key with the most headroom once the active key reports `PERCENT` used (1-100) [$PIAUTH_SWITCH_AT]"},
			&cli.StringSliceFlag{Name: "allow-origin", Usage: "serve browser requests from `ORIGIN` (scheme://host[:port]; repeatable); any other Origin gets 403"},
			&cli.DurationFlag{Name: "max-retry-after", Value: proxy.DefaultMaxRetryAfter, Usage: "cap the retry-after sent to clients at `DURATION` (SDKs sleep as long as it says)"},
			&cli.DurationFlag{Name: "wait-for-key", Usage: "when every key is cooling, hold a request until one frees if that is within `DURATION` (0: answer 429 at once)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("proxy takes no arguments")
			}
			return proxyRun(c.Context, &proxyOptions{
				IO:    f.IO,
				Store: f.Store,
				Key: func(ctx context.Context, agentDir string) (string, string, error) {
					return f.ProxyKey(ctx, f.Getenv, agentDir)
				},
				Client: func(ctx context.Context) (*messagesClient, error) {
					return f.MessagesClient(ctx, messagesOptions{SwitchAt: c.Float64("switch-at"), Wait: c.Duration("wait-for-key") > 0})
				},
				Warnf:        f.warnf,
				Now:          f.Now,
				Addr:         c.String("addr"),
				NoAuth:       c.Bool("no-auth"),
				ShowKey:      c.Bool("show-key"),
				JSONLog:      c.Bool("json-log"),
				AllowOrigins: c.StringSlice("allow-origin"),
				KeyCmd:       showKeyCmd(c.String("dir")),
				Ledger:       f.Ledger,

				MaxRetryAfter: c.Duration("max-retry-after"),
				WaitForKey:    c.Duration("wait-for-key"),
				Version:       appVersion(),
			})
		},
	}
}

// proxyRun serves until ctx is cancelled (SIGINT/SIGTERM in main), then
// finishes the requests in flight.
func proxyRun(ctx context.Context, opts *proxyOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	if opts.ShowKey {
		key, _, err := opts.Key(ctx, store.Dir())
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(opts.IO.Out, key)
		return err
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return usagef("--addr %q: %v", opts.Addr, err)
	}
	for _, o := range opts.AllowOrigins {
		if !proxy.ValidOrigin(o) {
			return usagef("--allow-origin %q: want scheme://host[:port] (e.g. http://localhost:3000) or null", o)
		}
	}
	if opts.MaxRetryAfter < time.Second {
		return usagef("--max-retry-after %s: want at least 1s", opts.MaxRetryAfter)
	}
	if opts.WaitForKey < 0 {
		return usagef("--wait-for-key %s: want a duration of 0 or more", opts.WaitForKey)
	}
	key, keyPath, err := opts.Key(ctx, store.Dir())
	if err != nil {
		return err
	}
	mc, err := opts.Client(ctx)
	if err != nil {
		return err
	}
	if !proxy.IsLoopback(opts.Addr) {
		opts.Warnf("listening on %s, beyond this machine: anyone who can reach it and has the proxy key spends your subscription", opts.Addr)
	}
	clientKey := key
	if opts.NoAuth {
		clientKey = ""
		opts.Warnf("--no-auth: any program that can reach the port spends your subscription, no key asked")
	}
	ln, err := proxy.Listen(opts.Addr)
	if err != nil {
		return err
	}
	if proxy.SelfLoop(mc.BaseURL, ln.Addr()) {
		ln.Close()
		return usagef("the upstream %s (PIAUTH_BASE_URL) is this proxy's own address %s: every request would loop back to it", mc.BaseURL, ln.Addr())
	}
	if err := printProxyUsage(opts, ln.Addr(), keyPath, clientKey != ""); err != nil {
		ln.Close()
		return err
	}
	var led *ledgerSink
	if opts.Ledger != nil {
		led = opts.Ledger(ctx)
		defer led.Close() // after the shutdown: flushes what the last requests queued
	}
	var hosts []string
	if host != "" && net.ParseIP(host) == nil {
		hosts = append(hosts, host) // --addr myhost.lan:8787: clients send that name
	}
	po := proxy.Options{
		Client:         mc.HTTP,
		Upstream:       mc.BaseURL,
		ClientKey:      clientKey,
		AcceptKey:      loginCredential(store, opts.Now),
		Log:            opts.IO.ErrOut,
		JSONLog:        opts.JSONLog,
		Now:            opts.Now,
		KeyLabel:       mc.KeyLabel,
		Hosts:          hosts,
		AllowOrigins:   opts.AllowOrigins,
		Ledger:         led.Async(),
		MaxRetryAfter:  opts.MaxRetryAfter,
		Pool:           store.Pool,
		SharedSessions: sharedSessions(store),
		Version:        opts.Version,
	}
	rt, _ := mc.HTTP.Transport.(*rotate.Transport)
	if rt != nil {
		po.Service, po.ListModels = rt.Service, listModels(rt, mc.BaseURL)
	}
	p := proxy.New(po)
	if rt != nil {
		if t := httpx.HTTPTransport(rt.Base); t != nil {
			proxy.TuneTransport(t, po.MaxInFlight)
		}
		// Bound the events rotation peeks at before the first content too,
		// and let the proxy see each attempt (rate-limit headers per key,
		// upstream latency, rotations).
		rt.Base = p.Watch(proxy.LimitEventStreams(rt.Base, 0))
		rt.MaxWait = opts.WaitForKey
	}
	return p.ServeListener(ctx, ln)
}

// listModels asks GET /v1/models with the credential a request would use
// now, without rotating or marking any key (as `piauth models` does: a
// refusal of /v1/models says nothing about a key).
func listModels(rt *rotate.Transport, baseURL string) func(context.Context) ([]stream.APIModel, error) {
	svc, hc := rt.Service, &http.Client{Transport: rt.Base}
	if svc == nil {
		svc = stream.Builtin()
	}
	return func(ctx context.Context) ([]stream.APIModel, error) {
		cred, _, err := rt.Source.Token(ctx, false)
		if err != nil {
			return nil, err
		}
		return svc.ListModels(ctx, hc, baseURL, cred.Token)
	}
}

// showKeyCmd is the command printing the proxy key of the agent dir given
// by --dir ("" = the default one).
func showKeyCmd(dir string) string {
	if dir == "" {
		return "piauth proxy --show-key"
	}
	return "piauth --dir " + shellQuote(dir) + " proxy --show-key"
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-~+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// printProxyUsage prints the listening line first, then how to use the
// proxy. It never prints the key (a service's stdout is a log): it says
// where the key is and which command prints it.
func printProxyUsage(opts *proxyOptions, addr net.Addr, keyPath string, auth bool) error {
	base := "http://" + addr.String()
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		base = fmt.Sprintf("http://127.0.0.1:%d", tcp.Port) // what a local client dials
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listening on http://%s\n", addr)
	apiKey := "$(" + opts.KeyCmd + ")"
	if !auth {
		b.WriteString("access control: off (--no-auth)\n")
		apiKey = "unused" // SDKs insist on some key
	} else {
		fmt.Fprintf(&b, "proxy key: in %s, printed by `%s`; send it as x-api-key or Authorization: Bearer\n", keyPath, opts.KeyCmd)
	}
	fmt.Fprintf(&b, "use it with:\n  export ANTHROPIC_BASE_URL=%s ANTHROPIC_API_KEY=%s\n", base, apiKey)
	_, err := fmt.Fprint(opts.IO.Out, b.String())
	return err
}

// loginCredential accepts, as a client key, the current login's token
// (auth.json's, unexpired): pi logged in to Anthropic sends it, and whoever
// holds it can use it without the proxy anyway. Pooled keys are not
// accepted: a dead or removed one would buy service its holder no longer
// has. Comparison is exact (hashed, constant time), never by fingerprint.
func loginCredential(store *keystore.Store, now func() time.Time) func(string) bool {
	if now == nil {
		now = time.Now
	}
	return func(presented string) bool {
		if !strings.HasPrefix(presented, "sk-ant-") {
			return false
		}
		c, err := store.Auth()
		if err != nil || c.Token() == "" || c.Expired(now()) {
			return false
		}
		want, got := sha256.Sum256([]byte(c.Token())), sha256.Sum256([]byte(presented))
		return subtle.ConstantTimeCompare(want[:], got[:]) == 1
	}
}

// sharedSessions is the store's session pins when the pool lives in a
// shared store (Redis), else nil: sessions are this proxy's alone.
func sharedSessions(store *keystore.Store) keystore.SessionBackend {
	sb, _ := store.Backend().(keystore.SessionBackend)
	return sb
}
