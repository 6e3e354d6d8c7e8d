package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cli/browser"
	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
)

// loginTimeout bounds the whole browser login.
const loginTimeout = 5 * time.Minute

// loginOptions are the dependencies and flags of `piauth login`.
type loginOptions struct {
	IO      *IOStreams
	Store   *keystore.Store
	OAuth   *pkce.Config
	Browser func(url string) error // nil: only print the URL (--no-browser)
	Now     func() time.Time
	Timeout time.Duration

	Port      int
	Manual    bool
	AddToPool bool
	Label     string
}

func newLoginCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "login",
		Usage: "log in with your Claude Pro/Max account (OAuth, PKCE)",
		Description: `Opens the authorization page in your browser and waits for it to call back
on 127.0.0.1, or for you to paste the code#state (or the callback URL) shown
after login. The credential is stored in pi's auth.json (other providers are
kept). With --add-to-pool the account also joins the key pool.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-browser", Usage: "only print the authorization URL"},
			&cli.BoolFlag{Name: "manual", Usage: "no callback server: paste the code shown after login"},
			&cli.IntFlag{Name: "port", Value: pkce.DefaultPort, Usage: "callback `PORT` on 127.0.0.1 (0: any free port; busy: paste instead)"},
			&cli.BoolFlag{Name: "add-to-pool", Usage: "also add the account to the key pool"},
			&cli.StringFlag{Name: "label", Usage: "`NAME` of the pooled key (with --add-to-pool)"},
			&cli.StringFlag{Name: "authorize-url", Usage: "authorization endpoint `URL` [$PIAUTH_AUTHORIZE_URL]"},
			&cli.StringFlag{Name: "token-url", Usage: "token endpoint `URL` [$PIAUTH_TOKEN_URL]"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("login takes no arguments")
			}
			if c.IsSet("label") && !c.Bool("add-to-pool") {
				return usagef("--label needs --add-to-pool")
			}
			store, err := f.Store()
			if err != nil {
				return err
			}
			cfg, err := f.OAuthConfig()
			if err != nil {
				return err
			}
			if c.IsSet("authorize-url") {
				cfg.AuthorizeEndpoint = c.String("authorize-url")
			}
			if c.IsSet("token-url") {
				cfg.TokenEndpoint = c.String("token-url")
			}
			opts := &loginOptions{
				IO: f.IO, Store: store, OAuth: cfg, Now: f.Now, Timeout: loginTimeout,
				Port: c.Int("port"), Manual: c.Bool("manual"),
				AddToPool: c.Bool("add-to-pool"), Label: c.String("label"),
			}
			if !c.Bool("no-browser") {
				opts.Browser = browser.OpenURL
			}
			return loginRun(c.Context, opts)
		},
	}
}

// loginRun runs the browser login and stores the credential.
func loginRun(ctx context.Context, opts *loginOptions) error {
	loginCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	tok, err := pkce.Login(loginCtx, pkce.LoginOptions{
		Config:      opts.OAuth,
		Port:        opts.Port,
		Manual:      opts.Manual,
		OpenBrowser: opts.Browser,
		Prompt:      opts.IO.In,
		Status:      opts.IO.ErrOut,
		Spinner:     opts.IO.ErrTTY,
	})
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	email := ""
	if tok.Account != nil {
		email = tok.Account.Email
	}
	expires := tok.ExpiresAtMs(opts.Now())
	// The new entry replaces the old one; unknown fields of the old entry are
	// kept (pi's convention for extra fields) except the account, which is ours.
	entry := func(cur *keystore.Credential) *keystore.Credential {
		if cur == nil {
			cur = &keystore.Credential{}
		}
		cur.Type, cur.Access, cur.Refresh, cur.Expires, cur.Key = "oauth", tok.AccessToken, tok.RefreshToken, expires, ""
		_ = cur.SetField(pkce.AccountField, nilIfEmpty(email)) // a string always encodes
		return cur
	}
	// Waiting for the locks (a running pi) is not part of the login's timeout.
	var note string
	if opts.AddToPool {
		note, err = storeLoginPooled(ctx, opts, entry, email)
	} else {
		err = opts.Store.UpdateAuth(ctx, func(cur *keystore.Credential) (*keystore.Credential, error) { return entry(cur), nil })
	}
	if err != nil {
		return fmt.Errorf("store login: %w", err)
	}
	cs := opts.IO.ErrScheme()
	who := ""
	if email != "" {
		who = " as " + cs.Bold(email)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s Logged in%s (saved to %s)\n", cs.Green("✓"), who, opts.Store.AuthPath())
	if note != "" {
		fmt.Fprintln(opts.IO.ErrOut, note)
	}
	return nil
}

// storeLoginPooled writes the login to auth.json and the pool together. An
// account already pooled (same email) gets its token and refresh token
// replaced in place, keeping its label (unless --label) and cooldown.
func storeLoginPooled(ctx context.Context, opts *loginOptions, entry func(*keystore.Credential) *keystore.Credential, email string) (string, error) {
	var note string
	_, err := opts.Store.UpdateBoth(ctx, func(auth **keystore.Credential, p *keystore.Pool) error {
		cred := entry(*auth)
		*auth = cred
		i := pooledAccount(p, email)
		if i < 0 {
			i, _ = p.Add(cred.Access, keystore.KeyState{Label: opts.Label})
			note = fmt.Sprintf("Added to the key pool as key %d/%d.", i+1, len(p.Keys))
		} else {
			p.Replace(i, cred.Access)
			note = fmt.Sprintf("Key %d/%d (%s) was already pooled; replaced its token.", i+1, len(p.Keys), email)
		}
		st := p.State(i)
		// A new login brings the account back whatever it was marked.
		st.Refresh, st.Expires, st.Account, st.NeedsReauth, st.Replaces = cred.Refresh, cred.Expires, email, false, ""
		st.Disabled, st.Revoked = false, false
		if opts.Label != "" {
			st.Label = opts.Label
		}
		return nil
	})
	return note, err
}

// pooledAccount returns the index of the pool key of account email, or -1.
func pooledAccount(p *keystore.Pool, email string) int {
	if email == "" {
		return -1
	}
	for i, k := range p.Keys {
		if st := p.States[keystore.Fingerprint(k)]; st != nil && strings.EqualFold(st.Account, email) {
			return i
		}
	}
	return -1
}

// nilIfEmpty returns nil for "" (SetField then removes the field).
func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
