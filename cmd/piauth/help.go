package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// helpCommandName is the command normalizeArgs turns into --help.
const helpCommandName = "help"

// newHelpCmd is `piauth help [COMMAND…]`. normalizeArgs rewrites the command
// line into `piauth COMMAND… --help` before urfave/cli sees it, so this entry
// is what lists the command in the help and the completions.
func newHelpCmd() *cli.Command {
	return &cli.Command{
		Name:      helpCommandName,
		Usage:     "show help for piauth or for a command",
		ArgsUsage: "[COMMAND…]",
		// Only `piauth help --help` gets here with an argument.
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.ShowAppHelp(c)
			}
			tmpl := c.Command.CustomHelpTemplate
			if tmpl == "" {
				tmpl = cli.CommandHelpTemplate
			}
			cli.HelpPrinter(c.App.Writer, tmpl, c.Command)
			return nil
		},
	}
}

func init() {
	// Help and the man page show a flag's default once: urfave/cli's
	// "(default: …)" is dropped for booleans and for flags whose usage
	// already names their default.
	cli.FlagStringer = flagHelpLine(cli.FlagStringer)
}

// flagHelpLine wraps urfave/cli's flag formatter (see init).
func flagHelpLine(stringify cli.FlagStringFunc) cli.FlagStringFunc {
	return func(fl cli.Flag) string {
		s := stringify(fl)
		df, ok := fl.(cli.DocGenerationFlag)
		if !ok {
			return s
		}
		_, isBool := fl.(*cli.BoolFlag)
		if !isBool && !strings.Contains(df.GetUsage(), "default") {
			return s
		}
		return strings.Replace(s, fmt.Sprintf(" (default: %s)", df.GetDefaultText()), "", 1)
	}
}

// visitCommands calls fn for each of cmds and every command below them,
// parents first, with its full name below the app ("key add").
func visitCommands(cmds []*cli.Command, parent string, fn func(name string, c *cli.Command)) {
	for _, c := range cmds {
		name := strings.TrimSpace(parent + " " + c.Name)
		fn(name, c)
		visitCommands(c.Subcommands, name, fn)
	}
}

// helpTemplate is urfave/cli's help template for c with an EXAMPLES section.
func helpTemplate(c *cli.Command, examples string) string {
	tmpl := cli.CommandHelpTemplate
	if len(c.Subcommands) > 0 {
		tmpl = cli.SubcommandHelpTemplate
	}
	return tmpl + examplesSection(examples)
}

// examplesSection formats example lines for a help template.
func examplesSection(examples string) string {
	if examples == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nEXAMPLES:\n")
	for line := range strings.Lines(strings.TrimSpace(examples)) {
		b.WriteString("   " + strings.TrimRight(line, "\n") + "\n")
	}
	// The section is template text: keep example braces literal.
	return strings.NewReplacer("{{", `{{"{{"}}`).Replace(b.String())
}
