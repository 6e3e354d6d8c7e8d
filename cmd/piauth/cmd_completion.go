package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// completionOptions are the inputs of `piauth completion`.
type completionOptions struct {
	IO  *IOStreams
	App func() *cli.App // a fresh, unrun app: the command tree to complete

	Shell string
}

func newCompletionCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh, fish)",
		ArgsUsage: strings.Join(completionShells(), "|"),
		Description: "Prints a static script completing commands, subcommands and flags.\n\n" +
			"   bash: piauth completion bash > ~/.local/share/bash-completion/completions/piauth\n" +
			"   zsh:  piauth completion zsh > ~/.local/share/zsh/site-functions/_piauth  (a dir of $fpath)\n" +
			"   fish: piauth completion fish > ~/.config/fish/completions/piauth.fish\n\n" +
			"scripts/install.sh installs them with the binary.",
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "a shell: "+strings.Join(completionShells(), ", ")); err != nil {
				return err
			}
			return completionRun(&completionOptions{
				IO:    f.IO,
				App:   func() *cli.App { return newApp(f) },
				Shell: c.Args().First(),
			})
		},
	}
}

// completionRun prints the completion script for opts.Shell.
func completionRun(opts *completionOptions) error {
	script, err := completionScript(opts.App(), opts.Shell)
	if err != nil {
		return usagef("%v", err)
	}
	_, err = fmt.Fprint(opts.IO.Out, script)
	return err
}
