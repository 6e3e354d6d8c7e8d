package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/keystore"
)

// newKeyCmd is the parent of the key pool commands (`piauth key …`).
func newKeyCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:            "key",
		Usage:           "manage the key pool (key-rotation.json)",
		HideHelpCommand: true,
		Description: "The pool is key-rotation.json in the agent dir, shared with pi's anthropic-oauth\n" +
			"extension; every pooled secret is mirrored in the OS keyring. Secrets are never\n" +
			"accepted on the command line: add them from auth.json or on stdin.",
		Subcommands: []*cli.Command{
			newKeyAddCmd(f),
			newKeyListCmd(f),
			newKeyUseCmd(f),
			newKeyResetCmd(f),
			newKeyRemoveCmd(f),
			newKeyPruneCmd(f),
			newKeySyncCmd(f),
			newKeyRestoreCmd(f),
		},
	}
}

// keyRef resolves a key argument: a 1-based index within the pool, or a
// fingerprint (prefix of at least 6 hex characters). Anything else is a usage
// error.
func keyRef(p *keystore.Pool, arg string) (int, error) {
	n, numErr := strconv.Atoi(arg)
	if numErr == nil && n >= 1 && n <= len(p.Keys) {
		return n - 1, nil
	}
	if i := p.Find(arg); i >= 0 {
		return i, nil
	}
	if numErr == nil {
		if len(p.Keys) == 0 {
			return -1, usagef("no key %d: the pool is empty", n)
		}
		return -1, usagef("no key %d: the pool has keys 1 to %d", n, len(p.Keys))
	}
	shown := arg
	if strings.HasPrefix(arg, "sk-") {
		shown = keystore.Mask(arg)
	}
	return -1, usagef("no key matches %q (want an index from 'piauth key list' or a fingerprint prefix of 6+ characters)", shown)
}

// keyName describes key i of p for humans: "key 2/3 (sk-ant-oat01-Ab…wxyz)".
func keyName(p *keystore.Pool, i int) string {
	return fmt.Sprintf("key %d/%d (%s)", i+1, len(p.Keys), keystore.Mask(p.Keys[i]))
}

// exactArgs returns a usage error unless c has exactly n arguments.
func exactArgs(c *cli.Context, n int, what string) error {
	if c.NArg() == n {
		return nil
	}
	name := commandPath(c)
	if n == 0 {
		return usagef("%s takes no arguments", name)
	}
	return usagef("%s wants %s (see 'piauth %s --help')", name, what, name)
}

// commandPath is the command's name below the app: "key use".
func commandPath(c *cli.Context) string {
	return strings.TrimPrefix(c.Command.HelpName, c.App.Name+" ")
}
