package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
)

// logoutOptions are the dependencies of `piauth logout`.
type logoutOptions struct {
	IO    *IOStreams
	Store *keystore.Store
}

func newLogoutCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "logout",
		Usage: "remove the Claude login from pi's auth.json (other providers and the key pool stay)",
		Description: `Removes only the "anthropic" entry of auth.json, under pi's lock. Logging out
when not logged in is not an error (exit 0), so scripts can call it blindly.
Pooled keys are not touched: remove them with 'piauth key remove'.`,
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("logout takes no arguments")
			}
			store, err := f.Store()
			if err != nil {
				return err
			}
			return logoutRun(c.Context, &logoutOptions{IO: f.IO, Store: store})
		},
	}
}

// logoutRun deletes the anthropic entry of auth.json. It is idempotent: not
// being logged in is reported and succeeds.
func logoutRun(ctx context.Context, opts *logoutOptions) error {
	var removed *keystore.Credential
	err := opts.Store.UpdateAuth(ctx, func(cur *keystore.Credential) (*keystore.Credential, error) {
		removed = cur
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if removed == nil {
		fmt.Fprintf(opts.IO.ErrOut, "Not logged in; nothing to do (%s has no Claude login).\n", opts.Store.AuthPath())
		return nil
	}
	cs := opts.IO.ErrScheme()
	fmt.Fprintf(opts.IO.ErrOut, "%s Logged out: removed the Claude login (%s) from %s.\n",
		cs.Green("✓"), keystore.Mask(removed.Token()), opts.Store.AuthPath())
	if p, err := opts.Store.Pool(); err == nil {
		if i := pkce.LinkedKey(p, removed); i >= 0 {
			fmt.Fprintf(opts.IO.ErrOut, "The same account stays in the key pool as key %d/%d (piauth key remove %d to drop it).\n",
				i+1, len(p.Keys), i+1)
		}
	}
	return nil
}
