package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fatih/color"
	"github.com/mattn/go-isatty"
	"golang.org/x/term"
)

// IOStreams are the three standard streams of a command plus what we know
// about their terminals. Commands never touch os.Stdin/os.Stdout directly, so
// tests can drive them with buffers (see newTestIO).
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	InTTY  bool
	OutTTY bool
	ErrTTY bool

	// colorDisabled is set by --no-color / NO_COLOR.
	colorDisabled bool
}

// systemIO returns the process's real streams with their TTY state.
func systemIO() *IOStreams {
	return &IOStreams{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		InTTY:  isTerminal(os.Stdin),
		OutTTY: isTerminal(os.Stdout),
		ErrTTY: isTerminal(os.Stderr),
	}
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// DisableColor turns colour off for every stream.
func (s *IOStreams) DisableColor() { s.colorDisabled = true }

// ColorOut reports whether stdout gets colour: only on a TTY, never with
// --no-color or NO_COLOR.
func (s *IOStreams) ColorOut() bool { return s.OutTTY && !s.colorDisabled }

// ColorErr reports whether stderr gets colour.
func (s *IOStreams) ColorErr() bool { return s.ErrTTY && !s.colorDisabled }

// paint returns a Sprint function for attrs that colours only when enabled.
func paint(enabled bool, attrs ...color.Attribute) func(a ...any) string {
	c := color.New(attrs...)
	if enabled {
		c.EnableColor()
	} else {
		c.DisableColor()
	}
	return c.SprintFunc()
}

// Scheme is the colour palette for one stream.
type Scheme struct {
	Bold, Dim, Green, Yellow, Red, Cyan func(a ...any) string
}

func newScheme(enabled bool) Scheme {
	return Scheme{
		Bold:   paint(enabled, color.Bold),
		Dim:    paint(enabled, color.Faint),
		Green:  paint(enabled, color.FgGreen),
		Yellow: paint(enabled, color.FgYellow),
		Red:    paint(enabled, color.FgRed),
		Cyan:   paint(enabled, color.FgCyan),
	}
}

// OutScheme is the palette for stdout.
func (s *IOStreams) OutScheme() Scheme { return newScheme(s.ColorOut()) }

// ErrScheme is the palette for stderr.
func (s *IOStreams) ErrScheme() Scheme { return newScheme(s.ColorErr()) }

// CanPrompt reports whether piauth may ask the user something: stdin and
// stderr are terminals. Without them nothing is ever asked.
func (s *IOStreams) CanPrompt() bool { return s.InTTY && s.ErrTTY }

// Confirm asks question on stderr and reads the answer from stdin: only "y"
// or "yes" (any case) is a yes; an empty answer or end of input is a no.
func (s *IOStreams) Confirm(question string) (bool, error) {
	fmt.Fprintf(s.ErrOut, "%s [y/N] ", question)
	line, err := bufio.NewReader(s.In).ReadString('\n')
	if errors.Is(err, io.EOF) {
		fmt.Fprintln(s.ErrOut) // Ctrl-D: end the prompt's line
	} else if err != nil {
		return false, fmt.Errorf("read the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// ReadAllHidden shows prompt on stderr and reads stdin to its end. On a
// terminal nothing typed or pasted is echoed (it may be a secret): the
// terminal is in raw mode from before the prompt until Ctrl-D ends the input
// (Ctrl-C returns context.Canceled), and is restored on every return,
// including when ctx ends.
func (s *IOStreams) ReadAllHidden(ctx context.Context, prompt string) (string, error) {
	f, ok := s.In.(interface{ Fd() uintptr })
	if !ok || !s.InTTY || !term.IsTerminal(int(f.Fd())) {
		if s.InTTY {
			fmt.Fprintln(s.ErrOut, prompt)
		}
		b, err := io.ReadAll(s.In)
		return string(b), err
	}
	fd := int(f.Fd())
	saved, err := term.MakeRaw(fd)
	if err != nil {
		return "", fmt.Errorf("stdin: %w", err)
	}
	defer func() { _ = term.Restore(fd, saved) }()
	fmt.Fprint(s.ErrOut, prompt+"\r\n") // raw mode: no newline translation

	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var b []byte
		buf := make([]byte, 4096)
		for {
			n, err := s.In.Read(buf)
			for _, c := range buf[:n] {
				switch c {
				case 0x04: // Ctrl-D
					done <- result{text: string(b)}
					return
				case 0x03: // Ctrl-C
					done <- result{err: context.Canceled}
					return
				case '\r', '\n':
					b = append(b, '\n')
				case 0x7f, '\b': // erase within the current line
					if len(b) > 0 && b[len(b)-1] != '\n' {
						b = b[:len(b)-1]
					}
				default:
					b = append(b, c)
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- result{text: string(b), err: err}
				return
			}
		}
	}()
	select {
	case r := <-done:
		return r.text, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
