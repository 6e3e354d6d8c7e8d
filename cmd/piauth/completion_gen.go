package main

import (
	"embed"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/urfave/cli/v2"
)

// Static shell completion scripts, generated from the app's command tree so
// they follow every command and flag without a hand-written list: the shell
// programs are templates (completions_tmpl/*.tmpl) filled with the tree's
// lookup tables. The scripts
// complete command names, subcommands, flags, and values that are fixed:
//   - a flag implementing flagChoices (or one listed in knownFlagChoices),
//   - a flag whose placeholder is DIR (directories) or FILE/PATH (files),
//   - positional arguments whose ArgsUsage is a list like "bash|zsh|fish".
// Hidden commands and flags are skipped. Output is deterministic.

// flagChoices is implemented by flags whose value is one of a fixed set.
type flagChoices interface{ Choices() []string }

// knownFlagChoices lists the fixed values of flags declared as plain urfave
// flags, by flag name.
func knownFlagChoices(name string) []string {
	switch name {
	case "keyring":
		return []string{"auto", "on", "off"}
	}
	return nil
}

// argChoicesRe matches an ArgsUsage that lists literal choices.
var argChoicesRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*(\|[a-z0-9][a-z0-9-]*)+$`)

// compValue says how a flag's value completes.
type compValue int

const (
	valueNone    compValue = iota // boolean flag
	valueAny                      // free text: nothing to offer
	valueChoices                  // one of compFlag.Choices
	valueDir                      // a directory
	valueFile                     // a file
)

// compFlag is one flag of the completion model.
type compFlag struct {
	Long, Short []string // names without dashes
	Usage       string
	Value       compValue
	Choices     []string
}

// names returns the flag's spellings with dashes: "--label", "-l".
func (f compFlag) names() []string {
	var out []string
	for _, n := range f.Long {
		out = append(out, "--"+n)
	}
	for _, n := range f.Short {
		out = append(out, "-"+n)
	}
	return out
}

// compCmd is one (sub)command of the completion model. The root has Path "".
type compCmd struct {
	Path    string // space-separated names below the root: "key add"
	Name    string
	Aliases []string
	Usage   string
	Flags   []compFlag
	Args    []string // fixed positional values
	Subs    []*compCmd
}

// walk calls fn for c and every command below it, parents first.
func (c *compCmd) walk(fn func(*compCmd)) {
	fn(c)
	for _, s := range c.Subs {
		s.walk(fn)
	}
}

// completionModel builds the model of app's visible commands and flags.
// app must not have been run (Setup adds help flags only where it runs).
func completionModel(app *cli.App) *compCmd {
	root := &compCmd{Name: app.Name, Usage: app.Usage, Flags: compFlags(app.Flags, !app.HideHelp)}
	if app.Version != "" && !app.HideVersion && cli.VersionFlag != nil {
		root.Flags = append(root.Flags, compFlagOf(cli.VersionFlag))
	}
	root.Subs = compCmds("", app.Commands)
	for _, s := range root.Subs {
		if s.Name == helpCommandName { // piauth help COMMAND
			for _, c := range root.Subs {
				if c.Name != helpCommandName {
					s.Args = append(s.Args, c.Name)
				}
			}
		}
	}
	return root
}

func compCmds(parent string, cmds []*cli.Command) []*compCmd {
	var out []*compCmd
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		path := strings.TrimSpace(parent + " " + c.Name)
		cc := &compCmd{
			Path:    path,
			Name:    c.Name,
			Aliases: slices.Clone(c.Aliases),
			Usage:   firstLine(c.Usage),
			Flags:   compFlags(c.Flags, !c.HideHelp),
			Subs:    compCmds(path, c.Subcommands),
		}
		if argChoicesRe.MatchString(c.ArgsUsage) {
			cc.Args = strings.Split(c.ArgsUsage, "|")
		}
		out = append(out, cc)
	}
	return out
}

func compFlags(flags []cli.Flag, help bool) []compFlag {
	var out []compFlag
	for _, fl := range flags {
		if v, ok := fl.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		out = append(out, compFlagOf(fl))
	}
	if help && cli.HelpFlag != nil && !slices.ContainsFunc(out, func(f compFlag) bool { return slices.Contains(f.Long, "help") }) {
		out = append(out, compFlagOf(cli.HelpFlag))
	}
	return out
}

func compFlagOf(fl cli.Flag) compFlag {
	var cf compFlag
	for _, n := range fl.Names() {
		if len(n) == 1 {
			cf.Short = append(cf.Short, n)
		} else {
			cf.Long = append(cf.Long, n)
		}
	}
	df, ok := fl.(cli.DocGenerationFlag)
	if !ok {
		return cf
	}
	placeholder, usage := unquoteUsage(df.GetUsage())
	cf.Usage = firstLine(usage)
	if !df.TakesValue() {
		return cf
	}
	cf.Value = valueAny
	choices := knownFlagChoices(fl.Names()[0])
	if c, ok := fl.(flagChoices); ok {
		choices = c.Choices()
	}
	switch {
	case len(choices) > 0:
		cf.Value, cf.Choices = valueChoices, choices
	case placeholder == "DIR":
		cf.Value = valueDir
	case placeholder == "FILE" || placeholder == "PATH" || strings.HasSuffix(placeholder, "_FILE"):
		cf.Value = valueFile
	}
	return cf
}

// unquoteUsage splits a flag usage into its `PLACEHOLDER` and the text with
// the backquotes removed, as urfave/cli's help does.
func unquoteUsage(usage string) (placeholder, text string) {
	before, rest, ok := strings.Cut(usage, "`")
	if !ok {
		return "", usage
	}
	name, after, ok := strings.Cut(rest, "`")
	if !ok {
		return "", usage
	}
	return name, before + name + after
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// completionShells are the shells `piauth completion` supports.
func completionShells() []string { return []string{"bash", "zsh", "fish"} }

// completionTemplates holds the three shell programs; each is rendered with
// the model's tables (see completionView).
//
//go:embed completions_tmpl/*.tmpl
var completionTemplates embed.FS

// completionScript renders the completion script of app for shell.
func completionScript(app *cli.App, shell string) (string, error) {
	if !slices.Contains(completionShells(), shell) {
		return "", fmt.Errorf("unsupported shell %q (want %s)", shell, strings.Join(completionShells(), ", "))
	}
	t, err := template.New(shell+".tmpl").Funcs(completionFuncs).ParseFS(completionTemplates,
		"completions_tmpl/common.tmpl", "completions_tmpl/"+shell+".tmpl")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, newCompletionView(completionModel(app))); err != nil {
		return "", err
	}
	return b.String(), nil
}

// completionView is the data of the templates: the model flattened into the
// rows of the scripts' lookup tables.
type completionView struct {
	Cmds      []*compCmd   // every command, parents first; the root's Path is ""
	Resolve   []compRow    // Key "PATH/NAME" (NAME or an alias) → Name, the subcommand
	Values    []compValRow // how the value of each value-taking flag completes
	ValueKeys []string     // "PATH/FLAG" of every value-taking flag
}

type compRow struct{ Key, Name string }

type compValRow struct {
	Keys []string // "PATH/--flag", "PATH/-f"
	Spec string   // see valueSpec
}

func newCompletionView(m *compCmd) *completionView {
	v := &completionView{}
	m.walk(func(c *compCmd) {
		v.Cmds = append(v.Cmds, c)
		for _, s := range c.Subs {
			for _, n := range append([]string{s.Name}, s.Aliases...) {
				v.Resolve = append(v.Resolve, compRow{Key: c.Path + "/" + n, Name: s.Name})
			}
		}
		for _, f := range c.Flags {
			if f.Value == valueNone {
				continue
			}
			row := compValRow{Spec: valueSpec(f)}
			for _, n := range f.names() {
				row.Keys = append(row.Keys, c.Path+"/"+n)
			}
			v.Values = append(v.Values, row)
			v.ValueKeys = append(v.ValueKeys, row.Keys...)
		}
	})
	return v
}

// completionFuncs are the templates' helpers.
var completionFuncs = template.FuncMap{
	"shq":    shQuote,
	"fishq":  fishQuote,
	"join":   strings.Join,
	"trim":   strings.TrimSpace,
	"shqs":   func(items []string) []string { return mapStrings(items, shQuote) },
	"fishqs": func(items []string) []string { return mapStrings(items, fishQuote) },
	// bashWords: the subcommands and fixed arguments of c.
	"bashWords": func(c *compCmd) []string {
		var words []string
		for _, s := range c.Subs {
			words = append(words, s.Name)
		}
		return append(words, c.Args...)
	},
	// flagNames: every spelling of c's flags.
	"flagNames": func(c *compCmd) []string {
		var names []string
		for _, f := range c.Flags {
			names = append(names, f.names()...)
		}
		return names
	},
	// zshSubs: NAME:DESCRIPTION of c's subcommands.
	"zshSubs": func(c *compCmd) []string {
		var items []string
		for _, s := range c.Subs {
			items = append(items, s.Name+":"+s.Usage)
		}
		return items
	},
	// zshFlags: FLAG:DESCRIPTION of every spelling of c's flags.
	"zshFlags": func(c *compCmd) []string {
		var items []string
		for _, f := range c.Flags {
			for _, n := range f.names() {
				items = append(items, n+":"+f.Usage)
			}
		}
		return items
	},
	// fishValue: the options of a fish `complete` line for f's value.
	"fishValue": func(f compFlag) string {
		switch f.Value {
		case valueChoices:
			return " -x -a " + fishQuote(strings.Join(f.Choices, " "))
		case valueDir:
			return " -x -a '(__fish_complete_directories)'"
		case valueFile:
			return " -r -F"
		case valueAny:
			return " -x"
		}
		return ""
	},
}

func mapStrings(items []string, fn func(string) string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = fn(s)
	}
	return out
}

// shQuote quotes s for bash/zsh single quotes.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// fishQuote quotes s for fish single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// valueSpec is the table entry for a value flag: "any", "dir", "file" or
// "choices A B C".
func valueSpec(f compFlag) string {
	switch f.Value {
	case valueChoices:
		return "choices " + strings.Join(f.Choices, " ")
	case valueDir:
		return "dir"
	case valueFile:
		return "file"
	}
	return "any"
}
