package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// Static shell completion scripts, generated from the app's command tree so
// they follow every command and flag without a hand-written list. The scripts
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

// completionScript renders the completion script of app for shell.
func completionScript(app *cli.App, shell string) (string, error) {
	m := completionModel(app)
	switch shell {
	case "bash":
		return bashScript(m), nil
	case "zsh":
		return zshScript(m), nil
	case "fish":
		return fishScript(m), nil
	}
	return "", fmt.Errorf("unsupported shell %q (want %s)", shell, strings.Join(completionShells(), ", "))
}

// ---- shared shell snippets ----

// shQuote quotes s for bash/zsh single quotes.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// fishQuote quotes s for fish single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// caseTables writes the lookup functions shared by bash and zsh: subcommand
// names by command path, and how each flag's value completes.
func caseTables(b *strings.Builder, m *compCmd, name string, quote func(string) string) {
	fmt.Fprintf(b, "# %s_resolve PATH WORD: prints the subcommand WORD names below PATH.\n", name)
	fmt.Fprintf(b, "%s_resolve() {\n  case \"$1/$2\" in\n", name)
	m.walk(func(c *compCmd) {
		for _, s := range c.Subs {
			for _, n := range append([]string{s.Name}, s.Aliases...) {
				fmt.Fprintf(b, "    %s) echo %s ;;\n", quote(c.Path+"/"+n), quote(s.Name))
			}
		}
	})
	b.WriteString("  esac\n}\n\n")

	fmt.Fprintf(b, "# %s_value PATH FLAG: how FLAG's value completes (empty: takes none).\n", name)
	fmt.Fprintf(b, "%s_value() {\n  case \"$1/$2\" in\n", name)
	m.walk(func(c *compCmd) {
		for _, f := range c.Flags {
			if f.Value == valueNone {
				continue
			}
			var pats []string
			for _, n := range f.names() {
				pats = append(pats, quote(c.Path+"/"+n))
			}
			fmt.Fprintf(b, "    %s) echo %s ;;\n", strings.Join(pats, "|"), quote(valueSpec(f)))
		}
	})
	b.WriteString("  esac\n}\n\n")
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

// ---- bash ----

func bashScript(m *compCmd) string {
	var b strings.Builder
	b.WriteString(`# bash completion for piauth                              -*- shell-script -*-
# Generated by 'piauth completion bash'; do not edit (run scripts/gen-completions.sh).
# Install: copy to ~/.local/share/bash-completion/completions/piauth, or
#   source <(piauth completion bash)

`)
	caseTables(&b, m, "__piauth", shQuote)

	b.WriteString("# __piauth_words PATH: the subcommands and fixed arguments below PATH.\n__piauth_words() {\n  case \"$1\" in\n")
	m.walk(func(c *compCmd) {
		var words []string
		for _, s := range c.Subs {
			words = append(words, s.Name)
		}
		words = append(words, c.Args...)
		if len(words) > 0 {
			fmt.Fprintf(&b, "    %s) echo %s ;;\n", shQuote(c.Path), shQuote(strings.Join(words, " ")))
		}
	})
	b.WriteString("  esac\n}\n\n")

	b.WriteString("# __piauth_flags PATH: the flags of the command at PATH.\n__piauth_flags() {\n  case \"$1\" in\n")
	m.walk(func(c *compCmd) {
		var names []string
		for _, f := range c.Flags {
			names = append(names, f.names()...)
		}
		if len(names) > 0 {
			fmt.Fprintf(&b, "    %s) echo %s ;;\n", shQuote(c.Path), shQuote(strings.Join(names, " ")))
		}
	})
	b.WriteString("  esac\n}\n\n")

	b.WriteString(`_piauth() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev="" pfx="" path="" w i skip=0 spec
  COMPREPLY=()
  # Walk the words before the cursor: flags (and their values) are skipped,
  # subcommands extend the command path.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if ((skip)); then
      skip=0
      [[ $w == "=" ]] && skip=1 # --flag = value, split at '=' by COMP_WORDBREAKS
      continue
    fi
    case $w in
      -*=*) continue ;;
      -*)
        [[ -n $(__piauth_value "$path" "$w") ]] && skip=1
        continue
        ;;
    esac
    w=$(__piauth_resolve "$path" "$w")
    # An argument: nothing more to complete (flags end at the first one).
    [[ -z $w ]] && return 0
    path="${path:+$path }$w"
  done

  ((COMP_CWORD > 1)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  if [[ $cur == "=" && $prev == -* ]]; then
    cur=""
  elif [[ $prev == "=" ]] && ((COMP_CWORD > 2)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  elif [[ $cur == --*=* ]]; then # '=' not in COMP_WORDBREAKS
    prev=${cur%%=*}
    pfx="$prev="
    cur=${cur#*=}
  else
    [[ $prev == -* ]] || prev=""
  fi

  if [[ -n $prev ]]; then
    spec=$(__piauth_value "$path" "$prev")
    case $spec in
      choices\ *)
        COMPREPLY=($(compgen -P "$pfx" -W "${spec#choices }" -- "$cur"))
        return 0
        ;;
      dir)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -P "$pfx" -d -- "$cur"))
        return 0
        ;;
      file)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -P "$pfx" -f -- "$cur"))
        return 0
        ;;
      any) return 0 ;;
    esac
  fi

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(__piauth_flags "$path")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(__piauth_words "$path")" -- "$cur"))
  fi
  return 0
}

complete -F _piauth piauth
`)
	return b.String()
}

// ---- zsh ----

func zshScript(m *compCmd) string {
	var b strings.Builder
	b.WriteString(`#compdef piauth
# zsh completion for piauth.
# Generated by 'piauth completion zsh'; do not edit (run scripts/gen-completions.sh).
# Install: copy to a directory of $fpath as _piauth (e.g. ~/.local/share/zsh/site-functions),
# or: source <(piauth completion zsh)

`)
	caseTables(&b, m, "__piauth", shQuote)

	b.WriteString("# __piauth_words PATH: sets reply to NAME:DESCRIPTION of the subcommands below PATH\n# and args to its fixed arguments.\n__piauth_words() {\n  reply=() args=()\n  case \"$1\" in\n")
	m.walk(func(c *compCmd) {
		if len(c.Subs) == 0 && len(c.Args) == 0 {
			return
		}
		var subs, args []string
		for _, s := range c.Subs {
			subs = append(subs, shQuote(s.Name+":"+s.Usage))
		}
		for _, a := range c.Args {
			args = append(args, shQuote(a))
		}
		fmt.Fprintf(&b, "    %s) reply=(%s) args=(%s) ;;\n", shQuote(c.Path), strings.Join(subs, " "), strings.Join(args, " "))
	})
	b.WriteString("  esac\n}\n\n")

	b.WriteString("# __piauth_flags PATH: sets reply to FLAG:DESCRIPTION of the flags at PATH.\n__piauth_flags() {\n  reply=()\n  case \"$1\" in\n")
	m.walk(func(c *compCmd) {
		var items []string
		for _, f := range c.Flags {
			for _, n := range f.names() {
				items = append(items, shQuote(n+":"+f.Usage))
			}
		}
		if len(items) > 0 {
			fmt.Fprintf(&b, "    %s) reply=(%s) ;;\n", shQuote(c.Path), strings.Join(items, " "))
		}
	})
	b.WriteString("  esac\n}\n\n")

	b.WriteString(`_piauth() {
  local cmdpath="" w i skip=0 spec cur prev
  local -a reply args
  # Walk the words before the cursor: flags (and their values) are skipped,
  # subcommands extend the command path.
  for ((i = 2; i < CURRENT; i++)); do
    w=${words[i]}
    if ((skip)); then
      skip=0
      continue
    fi
    case $w in
      -*=*) continue ;;
      -*)
        [[ -n $(__piauth_value "$cmdpath" "$w") ]] && skip=1
        continue
        ;;
    esac
    w=$(__piauth_resolve "$cmdpath" "$w")
    # An argument: nothing more to complete (flags end at the first one).
    [[ -z $w ]] && return 1
    cmdpath="${cmdpath:+$cmdpath }$w"
  done

  cur=${words[CURRENT]}
  prev=""
  if [[ $cur == --*=* ]]; then
    prev=${cur%%=*}
    compset -P '*='
  elif ((CURRENT > 2)) && [[ ${words[CURRENT-1]} == -* ]]; then
    prev=${words[CURRENT-1]}
  fi

  if [[ -n $prev ]]; then
    spec=$(__piauth_value "$cmdpath" "$prev")
    case $spec in
      choices\ *)
        compadd -- ${=spec#choices }
        return
        ;;
      dir)
        _directories
        return
        ;;
      file)
        _files
        return
        ;;
      any)
        _message 'value'
        return
        ;;
    esac
  fi

  if [[ $cur == -* ]]; then
    __piauth_flags "$cmdpath"
    _describe -t options 'piauth option' reply
  else
    __piauth_words "$cmdpath"
    local ret=1
    ((${#reply})) && _describe -t commands 'piauth command' reply && ret=0
    ((${#args})) && compadd -- $args && ret=0
    return ret
  fi
}

if [[ $funcstack[1] == _piauth ]]; then
  _piauth "$@"
else
  compdef _piauth piauth
fi
`)
	return b.String()
}

// ---- fish ----

func fishScript(m *compCmd) string {
	var b strings.Builder
	b.WriteString(`# fish completion for piauth.
# Generated by 'piauth completion fish'; do not edit (run scripts/gen-completions.sh).
# Install: copy to ~/.config/fish/completions/piauth.fish, or
#   piauth completion fish | source

# __piauth_resolve PATH WORD: prints the subcommand WORD names below PATH.
function __piauth_resolve
    switch "$argv[1]/$argv[2]"
`)
	m.walk(func(c *compCmd) {
		for _, s := range c.Subs {
			for _, n := range append([]string{s.Name}, s.Aliases...) {
				fmt.Fprintf(&b, "        case %s\n            echo %s\n", fishQuote(c.Path+"/"+n), fishQuote(s.Name))
			}
		}
	})
	b.WriteString("    end\nend\n\n# __piauth_takes_value PATH FLAG: succeeds when FLAG takes a value.\nfunction __piauth_takes_value\n    switch \"$argv[1]/$argv[2]\"\n")
	var pats []string
	m.walk(func(c *compCmd) {
		for _, f := range c.Flags {
			if f.Value == valueNone {
				continue
			}
			for _, n := range f.names() {
				pats = append(pats, fishQuote(c.Path+"/"+n))
			}
		}
	})
	if len(pats) > 0 {
		fmt.Fprintf(&b, "        case %s\n            return 0\n", strings.Join(pats, " "))
	}
	b.WriteString(`    end
    return 1
end

# __piauth_path: prints the command path of the command line ("" at the top,
# "(args)" once an argument was given).
function __piauth_path
    set -l path
    set -l skip 0
    for w in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case '-*=*'
                continue
            case '-*'
                __piauth_takes_value "$path" $w; and set skip 1
                continue
        end
        set -l name (__piauth_resolve "$path" $w)
        if test -z "$name"
            # An argument: nothing more to complete (flags end at the first one).
            echo '(args)'
            return
        end
        set -a path $name
    end
    echo "$path"
end

# __piauth_at PATH: succeeds when the command line is at command PATH.
function __piauth_at
    test "$(__piauth_path)" = "$argv[1]"
end

complete -c piauth -f
`)
	m.walk(func(c *compCmd) {
		cond := "__piauth_at " + fishQuote(c.Path)
		fmt.Fprintf(&b, "\n# %s\n", strings.TrimSpace("piauth "+c.Path))
		for _, s := range c.Subs {
			fmt.Fprintf(&b, "complete -c piauth -n %s -a %s -d %s\n", fishQuote(cond), fishQuote(s.Name), fishQuote(s.Usage))
		}
		if len(c.Args) > 0 {
			fmt.Fprintf(&b, "complete -c piauth -n %s -a %s\n", fishQuote(cond), fishQuote(strings.Join(c.Args, " ")))
		}
		for _, f := range c.Flags {
			line := fmt.Sprintf("complete -c piauth -n %s", fishQuote(cond))
			for _, n := range f.Short {
				line += " -s " + n
			}
			for _, n := range f.Long {
				line += " -l " + n
			}
			switch f.Value {
			case valueChoices:
				line += " -x -a " + fishQuote(strings.Join(f.Choices, " "))
			case valueDir:
				line += " -x -a '(__fish_complete_directories)'"
			case valueFile:
				line += " -r -F"
			case valueAny:
				line += " -x"
			}
			if f.Usage != "" {
				line += " -d " + fishQuote(f.Usage)
			}
			b.WriteString(line + "\n")
		}
	})
	return b.String()
}
