package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
)

// keySyncOptions are the inputs of `piauth key sync`.
type keySyncOptions struct {
	IO    *IOStreams
	Store func() (*keystore.Store, error)
}

func newKeySyncCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "sync",
		Usage: "make the keyring mirror match key-rotation.json (after hand edits)",
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 0, ""); err != nil {
				return err
			}
			return keySyncRun(c.Context, &keySyncOptions{IO: f.IO, Store: f.Store})
		},
	}
}

// keySyncRun writes missing or outdated keyring items and deletes stale ones.
// A missing or empty key-rotation.json deletes nothing: the error says how to
// restore the file from the keyring.
func keySyncRun(ctx context.Context, opts *keySyncOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	written, removed, err := store.SyncKeyring(ctx)
	if errors.Is(err, keystore.ErrPoolGone) {
		return fmt.Errorf("sync keyring: %w\n  to rebuild %s from the keyring: piauth key restore\n  to drop keys from the keyring on purpose: restore, then piauth key remove",
			err, store.PoolPath())
	}
	if err != nil {
		return fmt.Errorf("sync keyring: %w", err)
	}
	p, err := store.Pool()
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "keyring in sync with %s: %d %s; %d written, %d removed\n",
		store.PoolPath(), len(p.Keys), plural(len(p.Keys), "key", "keys"), written, removed)
	return nil
}
