package main

import (
	"context"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/emulator"
)

// emulatorOptions are the inputs of `piauth emulator`.
type emulatorOptions struct {
	Out       io.Writer // first line: "listening on http://HOST:PORT"
	Log       io.Writer // one line per request (nil with --quiet)
	Addr      string
	Scenario  string // path of a scenario file, "" for token markers only
	ExpiresIn int    // lifetime of minted access tokens in seconds (0 = default)
}

func newEmulatorCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "emulator",
		Usage: "run a local stand-in for Anthropic's OAuth and Messages endpoints",
		Description: `Serves /oauth/authorize, /v1/oauth/token, /v1/messages, /api/oauth/usage and
/_emulator/stats on loopback until interrupted, enforcing what the real service
enforces for OAuth tokens. Point piauth at it with
  PIAUTH_AUTHORIZE_URL=URL/oauth/authorize PIAUTH_TOKEN_URL=URL/v1/oauth/token PIAUTH_BASE_URL=URL
Tokens containing "ratelimited", "overloaded", "midstream" or "invalid" get
the matching failure; --scenario FILE scripts replies and per-token outcomes.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: emulator.DefaultAddr, Usage: "listen `ADDRESS` (loopback unless a host is given)"},
			&cli.StringFlag{Name: "scenario", Usage: "scenario `FILE` (JSON) scripting replies and per-token outcomes"},
			&cli.IntFlag{Name: "expires-in", Usage: "lifetime of minted access tokens in `SECONDS` (default 28800)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "do not log requests on stderr"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("emulator takes no arguments")
			}
			opts := &emulatorOptions{
				Out:       f.IO.Out,
				Log:       f.IO.ErrOut,
				Addr:      c.String("addr"),
				Scenario:  c.String("scenario"),
				ExpiresIn: c.Int("expires-in"),
			}
			if c.Bool("quiet") {
				opts.Log = nil
			}
			return emulatorRun(c.Context, opts)
		},
	}
}

// emulatorRun serves until ctx is cancelled (SIGINT/SIGTERM in main).
func emulatorRun(ctx context.Context, opts *emulatorOptions) error {
	var sc *emulator.Scenario
	if opts.Scenario != "" {
		var err error
		if sc, err = emulator.LoadScenario(opts.Scenario); err != nil {
			return err
		}
	}
	if opts.ExpiresIn < 0 {
		return usagef("--expires-in must be positive")
	}
	emu := emulator.New(emulator.Options{Scenario: sc, ExpiresIn: opts.ExpiresIn, Log: opts.Log})
	return emu.Serve(ctx, opts.Addr, opts.Out)
}
