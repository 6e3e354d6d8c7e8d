package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// normalizeArgs rewrites argv (args[0] is the program name) into the order
// urfave/cli v2 parses, which stops at a command's first positional argument
// and knows only that command's own flags. It is what users of gh and llm
// expect:
//
//	piauth chat hi --json             → piauth chat --json hi
//	piauth key list --no-color        → piauth --no-color key list
//	piauth chat -- --json             → piauth chat -- --json   ("--json" is text)
//	piauth help key add               → piauth key add --help
//
// Every flag goes to the innermost command on the line that defines it (so a
// global flag may follow the subcommand), an unknown one to the innermost
// command (which reports it); a flag that takes a value takes the next word
// with it. "--" ends the flags: it is kept, and every positional argument
// follows it. With --help the arguments are dropped (help ignores them). An
// unknown command after "help", or a value flag at the very end, is a usage
// error.
func normalizeArgs(app *cli.App, args []string) ([]string, error) {
	if len(args) == 0 {
		return args, nil
	}
	type level struct {
		word  string // the command as typed; "" for the app
		cmd   *cli.Command
		flags []cli.Flag
		subs  []*cli.Command
		args  []string // this command's flags and their values
	}
	levels := []*level{{flags: app.Flags, subs: app.Commands}}
	var pos []string
	dashdash := false
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		tok := rest[i]
		cur := levels[len(levels)-1]
		switch {
		case dashdash:
			pos = append(pos, tok)
		case tok == "--":
			dashdash = true
		case len(tok) > 1 && tok[0] == '-':
			name, inline := splitFlag(tok)
			at, fl := cur, cli.Flag(nil)
			for j := len(levels) - 1; j >= 0 && !isHelpFlag(name); j-- {
				if fl = lookupFlag(levels[j].flags, name); fl != nil {
					at = levels[j]
					break
				}
			}
			at.args = append(at.args, tok)
			if fl != nil && takesValue(fl) && !inline {
				if i+1 == len(rest) {
					return nil, usagef("flag needs an argument: %s", tok)
				}
				i++
				at.args = append(at.args, rest[i])
			}
		case len(pos) == 0 && lookupCommand(cur.subs, tok) != nil:
			c := lookupCommand(cur.subs, tok)
			levels = append(levels, &level{word: tok, cmd: c, flags: c.Flags, subs: c.Subcommands})
		default:
			pos = append(pos, tok)
		}
	}

	out := []string{args[0]}
	if len(levels) > 1 && levels[1].cmd.Name == helpCommandName {
		out = append(out, levels[0].args...)
		if len(pos) == 0 && slices.ContainsFunc(levels[1].args, func(a string) bool { n, _ := splitFlag(a); return isHelpFlag(n) }) {
			return append(out, helpCommandName, "--help"), nil // the help of help
		}
		// piauth help [COMMAND…] is piauth [COMMAND…] --help.
		subs, parent := app.Commands, ""
		for _, w := range pos {
			c := lookupCommand(subs, w)
			if c == nil {
				return nil, unknownCommand(w, parent, subs)
			}
			out = append(out, w)
			subs, parent = c.Subcommands, strings.TrimSpace(parent+" "+c.Name)
		}
		out = append(out, levels[1].args...)
		return append(out, "--help"), nil
	}
	for _, l := range levels {
		if l.word != "" {
			out = append(out, l.word)
		}
		out = append(out, l.args...)
	}
	last := levels[len(levels)-1]
	if slices.ContainsFunc(last.args, func(a string) bool { n, _ := splitFlag(a); return isHelpFlag(n) }) {
		// urfave/cli would take an argument after --help for a help topic.
		return out, nil
	}
	if dashdash {
		out = append(out, "--")
	}
	return append(out, pos...), nil
}

// splitFlag returns the name of the flag tok ("--max-tokens=5" → "max-tokens")
// and whether its value is inline.
func splitFlag(tok string) (name string, inline bool) {
	name = strings.TrimLeft(tok, "-")
	name, _, inline = strings.Cut(name, "=")
	return name, inline
}

// isHelpFlag reports whether name is --help or -h, which every command has
// (so it stays with the innermost one).
func isHelpFlag(name string) bool {
	return cli.HelpFlag != nil && slices.Contains(cli.HelpFlag.Names(), name)
}

func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, fl := range flags {
		if slices.Contains(fl.Names(), name) {
			return fl
		}
	}
	return nil
}

// takesValue reports whether fl consumes the next word as its value.
func takesValue(fl cli.Flag) bool {
	df, ok := fl.(cli.DocGenerationFlag)
	return ok && df.TakesValue()
}

func lookupCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// unknownCommand is the usage error for a mistyped command below parent
// ("" for the app), with a suggestion when one is close.
func unknownCommand(word, parent string, cmds []*cli.Command) error {
	help := "'piauth --help'"
	if parent != "" {
		help = "'piauth " + parent + " --help'"
	}
	msg := fmt.Sprintf("unknown command %q", word)
	if parent != "" {
		msg += fmt.Sprintf(" for %q", parent)
	}
	if s := suggestCommand(word, cmds); s != "" {
		return usagef("%s: did you mean %q? (see %s)", msg, s, help)
	}
	return usagef("%s (see %s)", msg, help)
}

// suggestCommand returns the visible command name closest to word, when it is
// within two edits of it or starts with it; "" otherwise.
func suggestCommand(word string, cmds []*cli.Command) string {
	best, bestDist := "", 3
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		for _, n := range c.Names() {
			d := editDistance(strings.ToLower(word), n)
			if len(word) >= 2 && strings.HasPrefix(n, strings.ToLower(word)) {
				d = min(d, 1)
			}
			if d < bestDist {
				best, bestDist = c.Name, d
			}
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
