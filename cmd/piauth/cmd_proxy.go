package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/proxy"
)

// proxyKeyFile is the file in the agent dir holding the proxy's client key.
const proxyKeyFile = "proxy-key"

// proxyKeyPrefix starts every proxy key, so it is never taken for an
// Anthropic secret.
const proxyKeyPrefix = "piauth-proxy-"

// proxyOptions are the inputs of `piauth proxy`.
type proxyOptions struct {
	IO     *IOStreams
	Store  func() (*keystore.Store, error)                    // the agent dir (proxy-key lives there)
	Client func(ctx context.Context) (*messagesClient, error) // credentials, shaping, rotation
	Warnf  func(format string, a ...any)                      // warnings on stderr
	Now    func() time.Time                                   // clock of the request log
	Addr   string                                             // listen address
	NoAuth bool                                               // no client key required
	// ShowKey prints the proxy key (creating it if needed) and exits.
	ShowKey bool
	JSONLog bool // NDJSON request log
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
the agent dir as proxy-key) as x-api-key or Authorization: Bearer; one of your
own Anthropic tokens (what pi sends when logged in) is accepted too, and
replaced like any client credential. On SIGINT or SIGTERM the proxy stops
accepting and lets open streams finish (up to 30s).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: proxy.DefaultAddr, Usage: "listen `ADDRESS`; a non-loopback host exposes your subscription to the network"},
			&cli.BoolFlag{Name: "no-auth", Usage: "do not require the proxy key (anyone who can reach the port spends your subscription)"},
			&cli.BoolFlag{Name: "show-key", Usage: "print the proxy key (creating it if needed) and exit"},
			&cli.BoolFlag{Name: "json-log", Usage: "log one NDJSON object per request on stderr"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("proxy takes no arguments")
			}
			return proxyRun(c.Context, &proxyOptions{
				IO:    f.IO,
				Store: f.Store,
				Client: func(ctx context.Context) (*messagesClient, error) {
					return f.MessagesClient(ctx, messagesOptions{})
				},
				Warnf:   f.warnf,
				Now:     f.Now,
				Addr:    c.String("addr"),
				NoAuth:  c.Bool("no-auth"),
				ShowKey: c.Bool("show-key"),
				JSONLog: c.Bool("json-log"),
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
	keyPath := filepath.Join(store.Dir(), proxyKeyFile)
	key, err := loadProxyKey(ctx, keyPath, opts.Warnf)
	if err != nil {
		return err
	}
	if opts.ShowKey {
		_, err := fmt.Fprintln(opts.IO.Out, key)
		return err
	}
	if _, _, err := net.SplitHostPort(opts.Addr); err != nil {
		return usagef("--addr %q: %v", opts.Addr, err)
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
	if err := printProxyUsage(opts, ln.Addr(), keyPath, clientKey); err != nil {
		ln.Close()
		return err
	}
	p := proxy.New(proxy.Options{
		Client:    mc.HTTP,
		Upstream:  mc.BaseURL,
		ClientKey: clientKey,
		AcceptKey: ownCredential(store),
		Log:       opts.IO.ErrOut,
		JSONLog:   opts.JSONLog,
		Now:       opts.Now,
		KeyLabel:  mc.KeyLabel,
	})
	return p.ServeListener(ctx, ln)
}

// printProxyUsage prints the listening line first, then how to use the proxy.
func printProxyUsage(opts *proxyOptions, addr net.Addr, keyPath, clientKey string) error {
	base := "http://" + addr.String()
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		base = fmt.Sprintf("http://127.0.0.1:%d", tcp.Port) // what a local client dials
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listening on http://%s\n", addr)
	apiKey := clientKey
	if clientKey == "" {
		b.WriteString("access control: off (--no-auth)\n")
		apiKey = "unused" // SDKs insist on some key
	} else {
		fmt.Fprintf(&b, "proxy key: %s (in %s; send it as x-api-key or Authorization: Bearer)\n", clientKey, keyPath)
	}
	fmt.Fprintf(&b, "use it with:\n  export ANTHROPIC_BASE_URL=%s ANTHROPIC_API_KEY=%s\n", base, apiKey)
	_, err := fmt.Fprint(opts.IO.Out, b.String())
	return err
}

// loadProxyKey returns the proxy key stored at path, creating a random one
// (32 bytes, base64url) on first use. Read and creation happen under the
// file's lock, so two proxies starting at once agree on one key.
func loadProxyKey(ctx context.Context, path string, warnf func(string, ...any)) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	unlock, err := keystore.Lock(ctx, path, keystore.LockOptions{})
	if err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	defer unlock() //nolint:errcheck // the lock directory goes stale anyway
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if key := strings.TrimSpace(string(data)); strings.HasPrefix(key, proxyKeyPrefix) && len(key) > len(proxyKeyPrefix)+16 {
			if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
				warnf("%s is readable by other users (mode %04o): chmod 600 it", path, info.Mode().Perm())
			}
			return key, nil
		}
		warnf("%s does not hold a proxy key; generating a new one", path)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("proxy key: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	key := proxyKeyPrefix + base64.RawURLEncoding.EncodeToString(raw)
	if err := keystore.WriteFileAtomic(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	return key, nil
}

// ownCredential accepts, as a client key, a token that is the user's own
// Anthropic credential (auth.json's or a pooled key): pi logged in to
// Anthropic sends it, and whoever holds it can use it without the proxy
// anyway. Comparison is exact (hashed, constant time), never by fingerprint.
func ownCredential(store *keystore.Store) func(string) bool {
	return func(presented string) bool {
		if !strings.HasPrefix(presented, "sk-ant-") {
			return false
		}
		want := sha256.Sum256([]byte(presented))
		same := func(tok string) bool {
			h := sha256.Sum256([]byte(tok))
			return tok != "" && subtle.ConstantTimeCompare(h[:], want[:]) == 1
		}
		if c, err := store.Auth(); err == nil && same(c.Token()) {
			return true
		}
		p, err := store.Pool()
		if err != nil {
			return false
		}
		for _, k := range p.Keys {
			if same(k) {
				return true
			}
		}
		return false
	}
}
