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

	Now func() time.Time

	Disabled bool // also bring back keys the service disabled (403)
	Revoked  bool // also bring back API keys the service refused (401)
}

func newKeyResetCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "reset",
		Usage: "make key 1 active again and clear cooldowns and the rotated flag",
		Description: "Like the extension's /key-reset. Keys marked needs-reauth stay marked: their\n" +
			"refresh token was rejected, which a reset cannot fix. Log in again with\n" +
			"'piauth login --add-to-pool', or 'piauth key remove' the old key. Disabled keys\n" +
			"(the service refused the account, 403) and revoked API keys (refused, 401) stay\n" +
			"out of rotation unless --disabled or --revoked brings them back.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "disabled", Usage: "also bring back keys whose account the service disabled (403)"},
			&cli.BoolFlag{Name: "revoked", Usage: "also bring back API keys the service refused (401)"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 0, ""); err != nil {
				return err
			}
			return keyResetRun(c.Context, &keyResetOptions{IO: f.IO, Store: f.Store, Now: f.Now, Disabled: c.Bool("disabled"), Revoked: c.Bool("revoked")})
		},
	}
}

// keyResetRun resets the rotation state of the pool.
func keyResetRun(ctx context.Context, opts *keyResetOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	cleared, revived := 0, 0
	p, err := store.UpdatePool(ctx, func(p *keystore.Pool) error {
		cleared, revived = 0, 0
		p.Active, p.Rotated = 0, false
		for i := range p.Keys {
			st := p.States[keystore.Fingerprint(p.Keys[i])]
			if st == nil {
				continue
			}
			if opts.Disabled && st.Disabled || opts.Revoked && st.Revoked {
				revived++
				st.Disabled = st.Disabled && !opts.Disabled
				st.Revoked = st.Revoked && !opts.Revoked
			}
			if st.CooldownUntil.IsZero() && st.CooldownReason == "" {
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
	fmt.Fprintf(opts.IO.Out, "%s is active; cleared %d %s", keyName(p, 0), cleared, plural(cleared, "cooldown", "cooldowns"))
	if opts.Disabled || opts.Revoked {
		fmt.Fprintf(opts.IO.Out, "; brought back %d %s", revived, plural(revived, "key", "keys"))
	}
	fmt.Fprintln(opts.IO.Out)
	now := opts.Now()
	for i := range p.Keys {
		switch s := p.Status(i, now); s.State {
		case keystore.StateNeedsReauth:
			fmt.Fprintf(opts.IO.ErrOut, "%s still needs re-authentication (%s)\n", keyName(p, i), s.Reason)
		case keystore.StateDisabled, keystore.StateRevoked:
			fmt.Fprintf(opts.IO.ErrOut, "%s is still %s\n", keyName(p, i), s.Describe(now))
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
