package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
)

// keyRemoveOptions are the inputs of `piauth key remove`.
type keyRemoveOptions struct {
	IO    *IOStreams
	Store func() (*keystore.Store, error)

	Ref string // 1-based index or fingerprint prefix
}

func newKeyRemoveCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:      "remove",
		Aliases:   []string{"rm"},
		Usage:     "remove key N (1-based, or a fingerprint prefix) from the pool, its state and the keyring",
		ArgsUsage: "N|FINGERPRINT",
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "one key: its index N or a fingerprint"); err != nil {
				return err
			}
			return keyRemoveRun(c.Context, &keyRemoveOptions{IO: f.IO, Store: f.Store, Ref: c.Args().First()})
		},
	}
}

// keyRemoveRun drops one key; the store deletes its keyring item too.
func keyRemoveRun(ctx context.Context, opts *keyRemoveOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	var removed string
	p, err := store.UpdatePool(ctx, func(p *keystore.Pool) error {
		i, err := keyRef(p, opts.Ref)
		if err != nil {
			return err
		}
		removed = keyName(p, i)
		p.Remove(i)
		return nil
	})
	if err != nil {
		return err
	}
	left := len(p.Keys)
	fmt.Fprintf(opts.IO.Out, "removed %s; %d %s left\n", removed, left, plural(left, "key", "keys"))
	if left > 0 {
		fmt.Fprintf(opts.IO.Out, "active: %s\n", keyName(p, p.Active))
	}
	return nil
}
