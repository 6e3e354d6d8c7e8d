package main

import (
	"bytes"
	"io"
	"os"

	"github.com/fatih/color"
	"github.com/mattn/go-isatty"
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

// testIO returns streams backed by buffers; stdin reads from in.
func testIO(in string) (ios *IOStreams, stdout, stderr *bytes.Buffer) {
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: bytes.NewBufferString(in), Out: stdout, ErrOut: stderr}, stdout, stderr
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
