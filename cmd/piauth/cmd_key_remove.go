package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
)

// keyRemoveOptions are the inputs of `piauth key remove`.
type keyRemoveOptions struct {
	IO    *IOStreams
	Store func() (*keystore.Store, error)

	Ref string // 1-based index or fingerprint prefix
	Yes bool   // do not ask for confirmation
}

func newKeyRemoveCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:      "remove",
		Aliases:   []string{"rm"},
		Usage:     "remove key N (1-based, or a fingerprint prefix) from the pool, its state and the keyring",
		ArgsUsage: "N|FINGERPRINT",
		Description: "On a terminal it names the key and asks first (--yes does not ask); without\n" +
			"a terminal it never asks.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "one key: its index N or a fingerprint"); err != nil {
				return err
			}
			return keyRemoveRun(c.Context, &keyRemoveOptions{IO: f.IO, Store: f.Store, Ref: c.Args().First(), Yes: c.Bool("yes")})
		},
	}
}

// errRemoveCanceled is the answer "no" to key remove's question (exit 1).
var errRemoveCanceled = errors.New("key remove canceled; nothing removed")

// keyRemoveRun drops one key; the store deletes its keyring item too. On a
// terminal, unless opts.Yes, it asks first and then removes the key it named
// (even when the pool changed meanwhile).
func keyRemoveRun(ctx context.Context, opts *keyRemoveOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	var confirmed string // the key the user said yes to
	if !opts.Yes && opts.IO.CanPrompt() {
		p, err := store.Pool()
		if err != nil {
			return err
		}
		i, err := keyRef(p, opts.Ref)
		if err != nil {
			return err
		}
		ok, err := opts.IO.Confirm(fmt.Sprintf("Remove %s from the pool, its state and the keyring?", keyName(p, i)))
		if err != nil {
			return err
		}
		if !ok {
			return errRemoveCanceled
		}
		confirmed = p.Keys[i]
	}
	var removed string
	p, err := store.UpdatePool(ctx, func(p *keystore.Pool) error {
		i, err := keyRef(p, opts.Ref)
		if confirmed != "" {
			if i = p.Find(confirmed); i < 0 {
				return fmt.Errorf("%s left the pool meanwhile; nothing removed", keystore.Mask(confirmed))
			}
		} else if err != nil {
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
