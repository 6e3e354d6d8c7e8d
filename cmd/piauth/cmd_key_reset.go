package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
)

// keyResetOptions are the inputs of `piauth key reset`.
type keyResetOptions struct {
	IO    *IOStreams
	Store func() (*keystore.Store, error)
}

func newKeyResetCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "reset",
		Usage: "make key 1 active again and clear cooldowns and the rotated flag",
		Description: "Like the extension's /key-reset. Keys marked needs-reauth stay marked: their\n" +
			"refresh token was rejected, which a reset cannot fix. Log in again, 'piauth key add'\n" +
			"the new account and 'piauth key remove' the old key.",
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 0, ""); err != nil {
				return err
			}
			return keyResetRun(c.Context, &keyResetOptions{IO: f.IO, Store: f.Store})
		},
	}
}

// keyResetRun resets the rotation state of the pool.
func keyResetRun(ctx context.Context, opts *keyResetOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	cleared := 0
	p, err := store.UpdatePool(ctx, func(p *keystore.Pool) error {
		cleared = 0
		p.Active, p.Rotated = 0, false
		for i := range p.Keys {
			st := p.States[keystore.Fingerprint(p.Keys[i])]
			if st == nil || st.CooldownUntil.IsZero() && st.CooldownReason == "" {
				continue
			}
			cleared++
			st.CooldownUntil, st.CooldownReason = time.Time{}, ""
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(p.Keys) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "the pool is empty; nothing to reset")
		return nil
	}
	fmt.Fprintf(opts.IO.Out, "%s is active; cleared %d %s\n", keyName(p, 0), cleared, plural(cleared, "cooldown", "cooldowns"))
	for i, tok := range p.Keys {
		if st := p.States[keystore.Fingerprint(tok)]; st != nil && st.NeedsReauth {
			fmt.Fprintf(opts.IO.ErrOut, "%s still needs re-authentication (log in again, 'piauth key add', then 'piauth key remove %d')\n", keyName(p, i), i+1)
		}
	}
	return nil
}

// plural picks the singular or plural word for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
