package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
)

// keyPruneOptions are the inputs of `piauth key prune`.
type keyPruneOptions struct {
	IO    *IOStreams
	Store func() (*keystore.Store, error)
	Now   func() time.Time

	Yes bool // do not ask for confirmation
}

func newKeyPruneCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "delete the revoked keys (API keys the service refused) from the pool and the keyring",
		Description: "A refused API key is never deleted on the spot: it is kept as revoked, skipped by\n" +
			"rotation, so one wrong answer cannot destroy the only copy of a secret. prune\n" +
			"deletes the revoked keys for good. On a terminal it lists them and asks first\n" +
			"(--yes does not ask); without a terminal it never asks.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 0, ""); err != nil {
				return err
			}
			return keyPruneRun(c.Context, &keyPruneOptions{IO: f.IO, Store: f.Store, Now: f.Now, Yes: c.Bool("yes")})
		},
	}
}

// errPruneCanceled is the answer "no" to key prune's question (exit 1).
var errPruneCanceled = errors.New("key prune canceled; nothing removed")

// revokedKeys lists the keys of p whose state is revoked.
func revokedKeys(p *keystore.Pool, now time.Time) []string {
	var out []string
	for i, k := range p.Keys {
		if p.Status(i, now).State == keystore.StateRevoked {
			out = append(out, k)
		}
	}
	return out
}

// keyPruneRun removes every revoked key that is still revoked when the pool
// is written (and, after a confirmation, only those the user was shown).
func keyPruneRun(ctx context.Context, opts *keyPruneOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	var shown map[string]bool
	if !opts.Yes && opts.IO.CanPrompt() {
		p, err := store.Pool()
		if err != nil {
			return err
		}
		revoked := revokedKeys(p, opts.Now())
		if len(revoked) == 0 {
			fmt.Fprintln(opts.IO.ErrOut, "no revoked keys; nothing to prune")
			return nil
		}
		shown = map[string]bool{}
		for _, k := range revoked {
			shown[k] = true
			fmt.Fprintf(opts.IO.ErrOut, "  %s\n", keyName(p, p.Find(k)))
		}
		ok, err := opts.IO.Confirm(fmt.Sprintf("Delete these %d revoked %s from the pool and the keyring?", len(revoked), plural(len(revoked), "key", "keys")))
		if err != nil {
			return err
		}
		if !ok {
			return errPruneCanceled
		}
	}
	var removed []string
	p, err := store.UpdatePool(ctx, func(p *keystore.Pool) error {
		removed = removed[:0]
		for _, k := range revokedKeys(p, opts.Now()) {
			if shown != nil && !shown[k] {
				continue // revoked after the question: not what the user agreed to
			}
			p.Remove(p.Find(k))
			removed = append(removed, keystore.Mask(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(removed) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "no revoked keys; nothing to prune")
		return nil
	}
	for _, m := range removed {
		fmt.Fprintf(opts.IO.Out, "removed %s\n", m)
	}
	left := len(p.Keys)
	fmt.Fprintf(opts.IO.Out, "%d %s left\n", left, plural(left, "key", "keys"))
	return nil
}
