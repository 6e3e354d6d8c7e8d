package main

import (
	"fmt"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/urfave/cli/v2"
)

// manOptions are the inputs of `piauth man`.
type manOptions struct {
	IO  *IOStreams
	App func() *cli.App // a fresh, unrun app: the command tree to document
}

func newManCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the piauth(1) man page (roff), generated from the command tree",
		Description: "Prints the manual page: every command with its options and examples, and\n" +
			"the exit codes. scripts/install.sh installs it as PREFIX/share/man/man1/piauth.1.",
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 0, ""); err != nil {
				return err
			}
			return manRun(&manOptions{IO: f.IO, App: func() *cli.App { return newApp(f) }})
		},
	}
}

// manRun prints the man page.
func manRun(opts *manOptions) error {
	_, err := fmt.Fprint(opts.IO.Out, manPage(opts.App()))
	return err
}

// manPage renders app's man page in section 1. It is deterministic (no date):
// running scripts/install.sh again changes nothing.
func manPage(app *cli.App) string {
	return string(md2man.Render([]byte(manMarkdown(app))))
}

// manMarkdown is the page as go-md2man markdown.
func manMarkdown(app *cli.App) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%% %s 1\n\n# NAME\n\n%s - %s\n\n", app.Name, app.Name, mdEscape(app.Usage))
	fmt.Fprintf(&b, "# SYNOPSIS\n\n**%s** [*GLOBAL OPTIONS*] *COMMAND* [*OPTIONS*] [*ARGUMENTS*...]\n\n", app.Name)
	b.WriteString("# DESCRIPTION\n\n" + mdEscape(app.Usage) + ". Flags may come before or after the arguments; " +
		"**--** ends them. Global options work before or after the command.\n\n")
	b.WriteString("# GLOBAL OPTIONS\n\n")
	manFlags(&b, app.Flags)
	manFlags(&b, []cli.Flag{cli.VersionFlag})
	b.WriteString("# COMMANDS\n\n")
	visitCommands(app.Commands, "", func(name string, c *cli.Command) {
		if c.Hidden {
			return
		}
		fmt.Fprintf(&b, "### %s %s", app.Name, name)
		if c.ArgsUsage != "" {
			fmt.Fprintf(&b, " %s", mdEscape(c.ArgsUsage))
		}
		b.WriteString("\n\n" + mdEscape(c.Usage) + "\n\n")
		if len(c.Aliases) > 0 {
			fmt.Fprintf(&b, "Alias: **%s**.\n\n", strings.Join(c.Aliases, "**, **"))
		}
		if c.Description != "" {
			manBlock(&b, c.Description)
		}
		manFlags(&b, c.Flags)
		if ex := commandExamples[name]; ex != "" {
			b.WriteString("Examples:\n\n")
			manBlock(&b, ex)
		}
	})
	b.WriteString("# EXAMPLES\n\n")
	manBlock(&b, commandExamples[""])
	b.WriteString("# EXIT CODES\n\n")
	for line := range strings.Lines(exitCodesHelp) {
		code, text, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && strings.Trim(code, "0123456789") == "" {
			fmt.Fprintf(&b, "**%s**\n: %s\n\n", code, mdEscape(strings.TrimSpace(text)))
		}
	}
	return b.String()
}

// manFlags writes flags as a definition list: the names as in --help, then
// the usage (with its default and variable, as in --help).
func manFlags(b *strings.Builder, flags []cli.Flag) {
	for _, fl := range flags {
		if v, ok := fl.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		names, usage, _ := strings.Cut(cli.FlagStringer(fl), "\t")
		fmt.Fprintf(b, "**%s**\n: %s\n\n", mdEscape(names), mdEscape(strings.TrimSpace(usage)))
	}
}

// manBlock writes text verbatim (an indented code block).
func manBlock(b *strings.Builder, text string) {
	for line := range strings.Lines(strings.TrimRight(text, "\n") + "\n") {
		b.WriteString("    " + line)
	}
	b.WriteString("\n")
}

// mdEscaper escapes the characters markdown would interpret.
var mdEscaper = strings.NewReplacer(`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "<", `\<`, ">", `\>`, "#", `\#`)

func mdEscape(s string) string { return mdEscaper.Replace(s) }
