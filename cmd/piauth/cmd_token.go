package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
	"github.com/piauth/piauth/pkg/rotate"
)

// tokenOptions are the dependencies and flags of `piauth token`.
type tokenOptions struct {
	IO        *IOStreams
	Store     *keystore.Store
	Refresher *pkce.Refresher
	Now       func() time.Time

	Refresh bool
}

func newTokenCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "print a valid access token (refreshed when needed)",
		Description: `Prints exactly one line on stdout: a valid access token, so $(piauth token)
works. With two or more pooled keys it is the active key (or the next usable
one when it is cooling down or needs a new login), else auth.json's login. An
expired OAuth token is refreshed first (once, however many processes ask).
Exit 3 when nothing is usable, 4 when every pooled key is rate-limited.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "refresh", Usage: "refresh the token even if it has not expired"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("token takes no arguments")
			}
			r, err := f.Refresher()
			if err != nil {
				return err
			}
			return tokenRun(c.Context, &tokenOptions{IO: f.IO, Store: r.Store, Refresher: r, Now: f.Now, Refresh: c.Bool("refresh")})
		},
	}
}

// tokenRun prints the token and nothing else on stdout.
func tokenRun(ctx context.Context, opts *tokenOptions) error {
	p, err := opts.Store.Pool()
	if err != nil {
		return err
	}
	var tok string
	if len(p.Keys) >= 2 {
		tok, err = poolActiveToken(ctx, opts, p)
	} else {
		var c *keystore.Credential
		if c, err = opts.Refresher.AuthToken(ctx, opts.Refresh); err == nil {
			tok = c.Token()
		}
	}
	if err != nil {
		return err
	}
	if tok == "" {
		return pkce.ErrNotLoggedIn
	}
	_, err = fmt.Fprintln(opts.IO.Out, tok)
	return err
}

// poolActiveToken returns the key a request would use now, chosen exactly as
// the rotating transport chooses (rotate.Next: the active key while usable,
// else the ready key with the lowest utilisation), refreshed when needed. A
// key that turns out to need a new login is skipped with a note on stderr.
// It does not move the pool's active key.
func poolActiveToken(ctx context.Context, opts *tokenOptions, p *keystore.Pool) (string, error) {
	var skipped []string
	for range p.Keys {
		i, err := rotate.Next(p, opts.Now())
		if err != nil {
			if len(skipped) > 0 {
				return "", fmt.Errorf("%w (%s)", err, strings.Join(skipped, "; "))
			}
			return "", err
		}
		key, st := p.Keys[i], p.State(i)
		force := opts.Refresh && keystore.KindOf(key) == keystore.KindOAuth && st.Refresh != ""
		tok, err := opts.Refresher.PoolToken(ctx, keystore.Fingerprint(key), force)
		if errors.Is(err, pkce.ErrNeedsLogin) || errors.Is(err, pkce.ErrCannotRefresh) {
			skipped = append(skipped, err.Error())
			st.NeedsReauth = true // this run only: Next now skips it
			continue
		}
		if err != nil {
			return "", err
		}
		if i != p.Active {
			fmt.Fprintf(opts.IO.ErrOut, "piauth: using key %d/%d (key %d is not usable now)\n", i+1, len(p.Keys), p.Active+1)
		}
		return tok, nil
	}
	return "", fmt.Errorf("%w in the pool of %d: %s", rotate.ErrNoUsableKey, len(p.Keys), strings.Join(skipped, "; "))
}

// relDuration renders d for humans, rounded down: "2d 3h", "7h 12m", "12m",
// "45s".
func relDuration(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return fmt.Sprintf("%ds", d/time.Second)
	}
}
