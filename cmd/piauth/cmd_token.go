package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/rotate"
)

// tokenOptions are the dependencies and flags of `piauth token`.
type tokenOptions struct {
	IO     *IOStreams
	Source *rotate.Source

	Refresh bool
}

func newTokenCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "print a valid access token (refreshed when needed)",
		Description: `Prints exactly one line on stdout: a valid access token, so $(piauth token)
works. It is the credential a request would use now: with two or more pooled
keys the active key (or the next usable one when it is cooling down or needs a
new login); else auth.json's login; else the pool's only key. An expired OAuth
token is refreshed first (once, however many processes ask).
Exit 3 when nothing is usable, 4 when every pooled key is rate-limited.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "refresh", Usage: "refresh the token even if it has not expired"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("token takes no arguments")
			}
			src, err := f.Source()
			if err != nil {
				return err
			}
			return tokenRun(c.Context, &tokenOptions{IO: f.IO, Source: src, Refresh: c.Bool("refresh")})
		},
	}
}

// tokenRun prints the token and nothing else on stdout.
func tokenRun(ctx context.Context, opts *tokenOptions) error {
	c, skipped, err := opts.Source.Token(ctx, opts.Refresh)
	if len(skipped) > 0 && err != nil {
		return fmt.Errorf("%w (%s)", err, strings.Join(skipped, "; "))
	}
	if err != nil {
		return err
	}
	if c.Pooled && c.Index != c.Active {
		why := fmt.Sprintf("key %d is not usable now", c.Active+1)
		if len(skipped) > 0 {
			why = strings.Join(skipped, "; ")
		}
		fmt.Fprintf(opts.IO.ErrOut, "piauth: using key %d/%d (%s)\n", c.Index+1, c.N, why)
	}
	_, err = fmt.Fprintln(opts.IO.Out, c.Token)
	return err
}
