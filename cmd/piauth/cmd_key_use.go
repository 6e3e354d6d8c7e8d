package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
)

// keyUseOptions are the inputs of `piauth key use`.
type keyUseOptions struct {
	IO    *IOStreams
	Store func() (*keystore.Store, error)
	Now   func() time.Time

	Ref string // 1-based index or fingerprint prefix
}

func newKeyUseCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:      "use",
		Usage:     "make key N (1-based, or a fingerprint prefix) the active key",
		ArgsUsage: "N",
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "one key: its index N or a fingerprint"); err != nil {
				return err
			}
			return keyUseRun(c.Context, &keyUseOptions{IO: f.IO, Store: f.Store, Now: f.Now, Ref: c.Args().First()})
		},
	}
}

// keyUseRun switches the active key and clears the rotated flag.
func keyUseRun(ctx context.Context, opts *keyUseOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	p, err := store.UpdatePool(ctx, func(p *keystore.Pool) error {
		i, err := keyRef(p, opts.Ref)
		if err != nil {
			return err
		}
		p.Active, p.Rotated = i, false
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "using %s\n", keyName(p, p.Active))
	now := opts.Now()
	switch status := p.Status(p.Active, now); status.State {
	case keystore.StateActive, keystore.StateReady:
	case keystore.StateNeedsReauth:
		fmt.Fprintf(opts.IO.ErrOut, "piauth: warning: key %d needs re-authentication (%s); requests will rotate away from it\n", p.Active+1, status.Reason)
	default:
		fmt.Fprintf(opts.IO.ErrOut, "piauth: warning: key %d is %s; requests will rotate away from it\n", p.Active+1, status.Describe(now))
	}
	return nil
}
