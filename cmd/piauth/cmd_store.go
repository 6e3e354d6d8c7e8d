package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/redisstore"
)

// storeOptions are the inputs of `piauth store …`.
type storeOptions struct {
	IO *IOStreams
	// Shared is the store PIAUTH_STORE names (its Backend is the shared
	// pool); File is the agent dir's key-rotation.json.
	Shared func() (*keystore.Store, error)
	File   func() (*keystore.Store, error)
	Now    func() time.Time
	Force  bool // pull: overwrite keys only the local file has
}

func newStoreCmd(f *Factory) *cli.Command {
	opts := func() *storeOptions {
		return &storeOptions{IO: f.IO, Shared: f.Store, File: f.FileStore, Now: f.Now}
	}
	return &cli.Command{
		Name:            "store",
		Usage:           "share one key pool between machines (PIAUTH_STORE=redis://…)",
		HideHelpCommand: true,
		Description: "With PIAUTH_STORE=redis://[user:pass@]host:port/db (or rediss://, or \"store\" in\n" +
			"config.json) the pool, its cooldowns and refreshes live in Redis, sealed with\n" +
			"PIAUTH_STORE_KEY (16+ characters) or the 0600 file PIAUTH_STORE_KEY_FILE, under\n" +
			"the keys piauth:{POOL}:… (PIAUTH_STORE_POOL, default \"default\"). push copies the\n" +
			"local key-rotation.json into it, pull writes it back to the file (pi reads it).",
		Subcommands: []*cli.Command{
			{
				Name:  "status",
				Usage: "show the shared store, its keys and the local file's difference",
				Action: func(c *cli.Context) error {
					if err := exactArgs(c, 0, ""); err != nil {
						return err
					}
					return storeStatusRun(c.Context, opts())
				},
			},
			{
				Name:  "push",
				Usage: "merge the local key-rotation.json into the shared store (by fingerprint)",
				Action: func(c *cli.Context) error {
					if err := exactArgs(c, 0, ""); err != nil {
						return err
					}
					return storePushRun(c.Context, opts())
				},
			},
			{
				Name:  "pull",
				Usage: "write the shared pool to the local key-rotation.json (atomically)",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Usage: "also drop keys that only the local file has"}},
				Action: func(c *cli.Context) error {
					if err := exactArgs(c, 0, ""); err != nil {
						return err
					}
					o := opts()
					o.Force = c.Bool("force")
					return storePullRun(c.Context, o)
				},
			},
		},
	}
}

// shared returns the shared store's backend, or an error saying how to set one.
func (o *storeOptions) shared() (keystore.PoolBackend, error) {
	s, err := o.Shared()
	if err != nil {
		return nil, err
	}
	if s.Backend() == nil {
		return nil, usagef("no shared store: the pool is %s; set PIAUTH_STORE=redis://host:6379/0 and PIAUTH_STORE_KEY (see 'piauth store --help')", s.PoolPath())
	}
	return s.Backend(), nil
}

// storePushRun merges the local pool into the shared one.
func storePushRun(ctx context.Context, opts *storeOptions) error {
	b, err := opts.shared()
	if err != nil {
		return err
	}
	file, err := opts.File()
	if err != nil {
		return err
	}
	local, err := file.Pool()
	if err != nil {
		return err
	}
	if len(local.Keys) == 0 {
		return fmt.Errorf("%s holds no keys: nothing to push", file.PoolPath())
	}
	var added, updated int
	p, err := b.UpdatePool(ctx, false, func(p *keystore.Pool) error {
		added, updated = p.Merge(local)
		return nil
	})
	if err != nil {
		return fmt.Errorf("push to %s: %w", b.Describe(), err)
	}
	fmt.Fprintf(opts.IO.Out, "pushed %s into %s: %d added, %d updated; the store holds %d %s\n",
		file.PoolPath(), b.Describe(), added, updated, len(p.Keys), plural(len(p.Keys), "key", "keys"))
	return nil
}

// storePullRun writes the shared pool to key-rotation.json, refusing to drop
// keys only the file has unless forced. An unchanged pool is not rewritten.
func storePullRun(ctx context.Context, opts *storeOptions) error {
	b, err := opts.shared()
	if err != nil {
		return err
	}
	remote, err := b.ReadPool(ctx)
	if err != nil {
		return fmt.Errorf("pull from %s: %w", b.Describe(), err)
	}
	file, err := opts.File()
	if err != nil {
		return err
	}
	var only int
	_, err = file.UpdatePool(ctx, func(p *keystore.Pool) error {
		only = localOnly(p, remote)
		if only > 0 && !opts.Force {
			return fmt.Errorf("%s has %d %s the store lacks; push them first (piauth store push) or pull --force to drop them",
				file.PoolPath(), only, plural(only, "key", "keys"))
		}
		*p = *remote.Clone()
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "pulled %d %s from %s into %s\n", len(remote.Keys), plural(len(remote.Keys), "key", "keys"), b.Describe(), file.PoolPath())
	return nil
}

// localOnly counts the keys of local that remote has neither as they are nor
// as the key that replaced them.
func localOnly(local, remote *keystore.Pool) int {
	n := 0
	for _, k := range local.Keys {
		if remote.Follow(keystore.Fingerprint(k)) < 0 {
			n++
		}
	}
	return n
}

// storeStatusRun describes the shared store.
func storeStatusRun(ctx context.Context, opts *storeOptions) error {
	b, err := opts.shared()
	if err != nil {
		return err
	}
	p, err := b.ReadPool(ctx)
	if err != nil {
		return err
	}
	w, now := opts.IO.Out, opts.Now()
	fmt.Fprintf(w, "Store: %s\n", b.Describe())
	if rb, ok := b.(*redisstore.Backend); ok {
		fmt.Fprintf(w, "Sealing: AES-256-GCM, key derived with %s\n", rb.KDF())
		holder, err := rb.LockHolder(ctx)
		switch {
		case err != nil:
			fmt.Fprintf(w, "Lock: %v\n", err)
		case holder == "":
			fmt.Fprintln(w, "Lock: free")
		default:
			fmt.Fprintf(w, "Lock: held by %s\n", holder)
		}
	}
	counts := map[keystore.State]int{}
	for i := range p.Keys {
		counts[p.Status(i, now).State]++
	}
	fmt.Fprintf(w, "Keys: %d", len(p.Keys))
	for _, s := range []keystore.State{keystore.StateActive, keystore.StateReady, keystore.StateCooling, keystore.StateNeedsReauth, keystore.StateDisabled, keystore.StateRevoked} {
		if counts[s] > 0 {
			fmt.Fprintf(w, ", %d %s", counts[s], s)
		}
	}
	fmt.Fprintln(w)
	file, err := opts.File()
	if err != nil {
		return err
	}
	local, err := file.Pool()
	if err != nil {
		fmt.Fprintf(w, "Local file: %v\n", err)
		return nil
	}
	fmt.Fprintf(w, "Local file: %s: %s\n", file.PoolPath(), syncWords(local, p))
	return nil
}

// syncWords says how the local file compares with the shared pool.
func syncWords(local, remote *keystore.Pool) string {
	a, errA := local.Encode()
	b, errB := remote.Encode()
	if errA == nil && errB == nil && string(a) == string(b) {
		return "same as the store"
	}
	if n := localOnly(local, remote); n > 0 {
		return fmt.Sprintf("%d %s the store lacks (piauth store push)", n, plural(n, "key", "keys"))
	}
	return "differs from the store (piauth store pull updates it for pi)"
}
