package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/internal/termsafe"
	"github.com/urfave/cli/v2"
)

// newApp builds the command tree. Each command lives in its own file and is
// constructed with the Factory; flags here are the global ones.
func newApp(f *Factory) *cli.App {
	app := &cli.App{
		Name:                 "piauth",
		Usage:                "Claude Pro/Max OAuth, key pool and rotation for the terminal and pi",
		Version:              appVersion(),
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		Reader:               f.IO.In,
		Writer:               f.IO.Out,
		ErrWriter:            f.IO.ErrOut,
		ExitErrHandler:       func(*cli.Context, error) {}, // main maps errors to exit codes
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &usageError{err}
		},
		CommandNotFound: nil,
		// The help command (newHelpCmd) keeps urfave/cli from adding --help
		// itself, so it is added here.
		Flags: append(globalFlags(f), cli.HelpFlag),
		Before: func(c *cli.Context) error {
			return applyGlobalFlags(f, c)
		},
		Commands: commands(f),
	}
	app.CustomAppHelpTemplate = cli.AppHelpTemplate + examplesSection(commandExamples[""]) + "\n" + exitCodesHelp + "\n"
	app.Action = func(c *cli.Context) error {
		if c.Args().Len() > 0 {
			return unknownCommand(c.Args().First(), "", c.App.Commands)
		}
		return cli.ShowAppHelp(c)
	}
	setUsageErrors(app.Commands)
	applyExamples(app)
	return app
}

// commands lists every top-level command, one file each.
func commands(f *Factory) []*cli.Command {
	return []*cli.Command{
		newLoginCmd(f),
		newLogoutCmd(f),
		newTokenCmd(f),
		newStatusCmd(f),
		newKeyCmd(f),
		newChatCmd(f),
		newProxyCmd(f),
		newModelsCmd(f),
		newUsageCmd(f),
		newStoreCmd(f),
		newEmulatorCmd(f),
		newCompletionCmd(f),
		newManCmd(f),
		newHelpCmd(),
	}
}

// setUsageErrors makes flag errors of every (sub)command usage errors (exit 2)
// and gives parent commands an action that rejects unknown subcommands.
func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return &usageError{err} }
		if len(c.Subcommands) > 0 && c.Action == nil {
			c.Action = func(cc *cli.Context) error {
				if cc.Args().Len() > 0 {
					return unknownCommand(cc.Args().First(), commandPath(cc), cc.Command.Subcommands)
				}
				return cli.ShowSubcommandHelp(cc)
			}
		}
		setUsageErrors(c.Subcommands)
	}
}

func globalFlags(f *Factory) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:  "dir",
			Usage: "pi agent `DIR` holding auth.json and key-rotation.json (default ~/.pi/agent) [$PI_CODING_AGENT_DIR]",
		},
		&cli.StringFlag{
			Name:  "keyring",
			Usage: "OS keyring `MODE`: auto (use it when it answers), on (required), off [$PIAUTH_KEYRING]",
		},
		&cli.BoolFlag{
			Name:  "no-color",
			Usage: "disable colour [$NO_COLOR]",
		},
		&cli.StringFlag{
			Name:  "timeout",
			Usage: "give up on a silent server after `DURATION` (first byte, and silence in a stream; default 5m, token endpoint 30s) [$PIAUTH_TIMEOUT]",
		},
	}
}

// applyGlobalFlags copies the global flags into the Factory.
func applyGlobalFlags(f *Factory, c *cli.Context) error {
	// Environment variables are read through the Factory (not by urfave/cli)
	// so tests can inject them; a flag always wins over its variable.
	f.Dir = flagOrEnv(f, c, "dir", "PI_CODING_AGENT_DIR")
	mode := flagOrEnv(f, c, "keyring", "PIAUTH_KEYRING")
	f.KeyringMode = strings.ToLower(mode)
	switch f.KeyringMode {
	case "":
		m, err := f.configKeyringMode()
		if err != nil {
			return err
		}
		f.KeyringMode = m
	case "auto", "on", "off":
	default:
		return usagef("--keyring must be auto, on or off, not %q", mode)
	}
	if c.IsSet("timeout") {
		f.TimeoutFlag = c.String("timeout")
	}
	f.NoColor = c.Bool("no-color") || f.Getenv("NO_COLOR") != ""
	if f.NoColor {
		f.IO.DisableColor()
	}
	return nil
}

// flagOrEnv returns the flag's value when it was given, else the variable's.
func flagOrEnv(f *Factory, c *cli.Context, flag, env string) string {
	if c.IsSet(flag) {
		return c.String(flag)
	}
	return f.Getenv(env)
}

// run executes piauth with args (args[0] is the program name) and returns the
// exit code. Errors are printed here, once.
func run(ctx context.Context, f *Factory, args []string) (code int) {
	defer recoverPanic(f.IO.ErrOut, &code)
	app := newApp(f)
	args, err := normalizeArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	code = exitCode(err)
	switch {
	case err == nil || err.Error() == "":
	case err == context.Canceled: // Ctrl-C with nothing more to say
		fmt.Fprintln(f.IO.ErrOut, "piauth: interrupted")
	default:
		// Error texts carry what servers and files said: never an escape
		// sequence to the terminal, never a whole token.
		fmt.Fprintf(f.IO.ErrOut, "piauth: %s\n", termsafe.String(secret.MaskAll(err.Error())))
	}
	return code
}
