package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
)

// keyRestoreOptions are the inputs of `piauth key restore`.
type keyRestoreOptions struct {
	IO    *IOStreams
	Store func() (*keystore.Store, error)
}

func newKeyRestoreCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "rebuild key-rotation.json from the keyring when it is lost or corrupt",
		Description: "A corrupt key-rotation.json is kept as key-rotation.json.corrupt-<time>; a valid\n" +
			"file that still holds keys is never overwritten. Labels, refresh tokens and expiry\n" +
			"come back; cooldowns and the active index start afresh.",
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 0, ""); err != nil {
				return err
			}
			return keyRestoreRun(c.Context, &keyRestoreOptions{IO: f.IO, Store: f.Store})
		},
	}
}

// keyRestoreRun rebuilds the pool file from the keyring mirror.
func keyRestoreRun(ctx context.Context, opts *keyRestoreOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	p, err := store.RestoreFromKeyring(ctx)
	if err != nil {
		return fmt.Errorf("restore from keyring: %w", err)
	}
	fmt.Fprintf(opts.IO.Out, "restored %d %s into %s\n", len(p.Keys), plural(len(p.Keys), "key", "keys"), store.PoolPath())
	for i := range p.Keys {
		line := keyName(p, i)
		if l := p.State(i).Label; l != "" {
			line += " " + l
		}
		fmt.Fprintln(opts.IO.Out, "  "+line)
	}
	return nil
}
