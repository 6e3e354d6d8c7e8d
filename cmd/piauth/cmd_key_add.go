package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
)

// keyAddOptions are the inputs of `piauth key add`.
type keyAddOptions struct {
	IO    *IOStreams
	Store func() (*keystore.Store, error)

	Stdin bool   // read tokens from stdin instead of capturing auth.json
	Label string // label for every key added
}

func newKeyAddCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "add",
		Usage: "add the logged-in account (auth.json) or keys read from stdin to the pool",
		Description: "Without flags, captures the current Anthropic OAuth credentials of auth.json\n" +
			"(access token, refresh token and expiry), like the extension's /key-add.\n" +
			"With --stdin, reads one key a line (sk-ant-oat… or sk-ant-api…); blank lines are\n" +
			"ignored and any other line rejects the whole input. Keys already pooled are left as they are.\n" +
			"On a terminal, what is pasted is not echoed; end with Ctrl-D.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "stdin", Usage: "read keys from stdin, one a line"},
			&cli.StringFlag{Name: "label", Usage: "label `NAME` of every key added, shown by 'piauth key list'"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("key add takes no arguments: secrets on the command line leak through ps and shell history; pipe them to 'piauth key add --stdin'")
			}
			return keyAddRun(c.Context, &keyAddOptions{
				IO:    f.IO,
				Store: f.Store,
				Stdin: c.Bool("stdin"),
				Label: c.String("label"),
			})
		},
	}
}

// keyAddRun adds keys to the pool and prints one line per key.
func keyAddRun(ctx context.Context, opts *keyAddOptions) error {
	var (
		toks  []string
		state keystore.KeyState
		err   error
	)
	if opts.Stdin {
		in := opts.IO.In
		if opts.IO.InTTY {
			text, err := opts.IO.ReadAllHidden(ctx, "Paste keys, one a line (not shown); end with Ctrl-D.")
			if err != nil {
				return err
			}
			in = strings.NewReader(text)
		}
		if toks, err = readKeys(in); err != nil {
			return err
		}
	}
	store, err := opts.Store()
	if err != nil {
		return err
	}
	if !opts.Stdin {
		tok, st, err := authKey(store)
		if err != nil {
			return err
		}
		toks, state = []string{tok}, st
	}
	state.Label = opts.Label

	added := make([]bool, len(toks))
	p, err := store.UpdatePool(ctx, func(p *keystore.Pool) error {
		for i, tok := range toks {
			_, added[i] = p.Add(tok, state)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, tok := range toks {
		idx := p.Find(tok)
		if added[i] {
			fmt.Fprintf(opts.IO.Out, "added %s\n", keyName(p, idx))
		} else {
			fmt.Fprintf(opts.IO.Out, "%s is already in the pool\n", keyName(p, idx))
		}
	}
	return nil
}

// authKey returns the bearer token of auth.json's anthropic entry and the
// pool state it brings (refresh token and expiry for OAuth).
func authKey(store *keystore.Store) (string, keystore.KeyState, error) {
	cred, err := store.Auth()
	if errors.Is(err, keystore.ErrNotFound) {
		return "", keystore.KeyState{}, fmt.Errorf("no Anthropic credentials in %s: run 'piauth login' first, or pipe keys to 'piauth key add --stdin' (%w)", store.AuthPath(), pkce.ErrNotLoggedIn)
	}
	if err != nil {
		return "", keystore.KeyState{}, err
	}
	tok := cred.Token()
	if tok == "" {
		return "", keystore.KeyState{}, fmt.Errorf("%s: the anthropic entry holds no token (%w)", store.AuthPath(), pkce.ErrNotLoggedIn)
	}
	if cred.Type == "api_key" {
		return tok, keystore.KeyState{}, nil
	}
	return tok, keystore.KeyState{Refresh: cred.Refresh, Expires: cred.Expires}, nil
}

// readKeys reads one key a line. Blank lines and surrounding whitespace are
// ignored; a line that is not an Anthropic key is a usage error naming its
// line number (never its content, which may be a secret).
func readKeys(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var toks []string
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if err := secret.CheckKey(line); err != nil {
			return nil, usagef("stdin line %d %w; nothing added", n, err)
		}
		toks = append(toks, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read keys from stdin: %w", err)
	}
	if len(toks) == 0 {
		return nil, usagef("no keys on stdin; nothing added")
	}
	return toks, nil
}
