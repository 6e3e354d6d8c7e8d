package pkce

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// ErrNoCode means the paste input ended before a code arrived and no callback server runs.
var ErrNoCode = errors.New("no authorization code received")

// LoginOptions holds Login's dependencies. IO is injected so the CLI decides about TTYs.
type LoginOptions struct {
	Config *Config // nil means the zero Config (production endpoints)
	// Port is the callback port; 0 picks any free port, so the CLI passes DefaultPort.
	Port int
	// Manual skips the callback server: ManualRedirectURI and paste only.
	Manual bool
	// OpenBrowser opens the authorize URL; nil means only print it.
	OpenBrowser func(url string) error
	// Prompt is where pasted code#state / callback URLs are read from, one per line; nil
	// means no paste (then a callback server is required).
	Prompt io.Reader
	// Status receives instructions and notes (stderr); nil discards them.
	Status io.Writer
	// Spinner draws a spinner on Status while waiting (the caller enables it on a TTY only).
	Spinner bool
}

// Login runs the browser login: it makes a PKCE verifier and state, starts the callback
// server (or, when Manual or the port is busy, uses the paste flow only), prints the
// authorize URL and opens it, then waits for whichever comes first — the callback or a
// valid pasted line — and exchanges the code with the redirect URI the authorize URL used.
// A pasted line that does not parse or belongs to another login is reported on Status and
// the wait goes on. The login's timeout is ctx's deadline (ErrTimeout when it passes).
func Login(ctx context.Context, opts LoginOptions) (*Token, error) {
	cfg := opts.Config
	if cfg == nil {
		cfg = &Config{}
	}
	ui := &waitUI{w: opts.Status}
	if ui.w == nil {
		ui.w = io.Discard
	}
	verifier, state := NewVerifier(), NewState()

	var srv *CallbackServer
	redirectURI := ManualRedirectURI
	if !opts.Manual {
		s, err := ListenCallback(ctx, opts.Port, state)
		switch {
		case err == nil:
			srv, redirectURI = s, s.RedirectURI()
			defer srv.Close()
		case opts.Prompt == nil:
			return nil, err
		default:
			ui.printf("Cannot receive the browser callback (%v); falling back to pasting the code.\n", err)
		}
	}
	if srv == nil && opts.Prompt == nil {
		return nil, fmt.Errorf("%w: manual login needs paste input", ErrNoCode)
	}

	authURL := cfg.AuthorizeURL(redirectURI, Challenge(verifier), state)
	ui.printf("Open this URL in your browser to log in:\n\n  %s\n\n", authURL)
	if opts.OpenBrowser != nil {
		if err := opts.OpenBrowser(authURL); err != nil {
			ui.printf("Could not open a browser (%v); open the URL above yourself.\n", err)
		}
	}

	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the paste reader at its next line
	var lines <-chan string
	if opts.Prompt != nil {
		lines = readLines(waitCtx, opts.Prompt)
		if srv != nil {
			ui.printf("Waiting for the browser… or paste the code#state or the callback URL here and press Enter:\n")
		} else {
			ui.printf("Paste the code shown after login (code#state) and press Enter:\n")
		}
	}
	if opts.Spinner {
		ui.startSpinner("Waiting for login…")
	}
	code, err := waitForCode(waitCtx, srv, lines, state, ui)
	ui.stopSpinner()
	if err != nil {
		return nil, err
	}
	return cfg.Exchange(ctx, code, state, verifier, redirectURI)
}

// waitForCode returns the first code from the callback server or a valid pasted line.
func waitForCode(ctx context.Context, srv *CallbackServer, lines <-chan string, state string, ui *waitUI) (string, error) {
	var callback <-chan struct{}
	if srv != nil {
		callback = srv.done
	}
	for {
		select {
		case <-callback:
			return srv.code, srv.err
		case line, ok := <-lines:
			if !ok {
				if srv == nil {
					return "", fmt.Errorf("%w: paste input ended", ErrNoCode)
				}
				lines = nil // keep waiting for the browser
				continue
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			code, err := ParsePaste(line, state)
			if err == nil {
				return code, nil
			}
			if errors.Is(err, ErrAccessDenied) {
				return "", err
			}
			ui.printf("✗ %v. Try again:\n", err)
		case <-ctx.Done():
			return "", ctxErr(ctx)
		}
	}
}

// readLines feeds r's lines into the returned channel, closed at EOF or read error. The
// goroutine stops at its next line once ctx is done; it never blocks its reader's caller.
func readLines(ctx context.Context, r io.Reader) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		for sc.Scan() {
			select {
			case ch <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// spinnerFrames are drawn in turn while waiting.
var spinnerFrames = [...]string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// waitUI serialises status output and an optional one-line spinner.
type waitUI struct {
	mu         sync.Mutex
	w          io.Writer
	msg        string
	frame      int
	spinning   bool
	stop, done chan struct{}
}

// printf writes a status message, keeping the spinner on its own (last) line.
func (u *waitUI) printf(format string, args ...any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.spinning {
		fmt.Fprint(u.w, "\r\033[K")
	}
	fmt.Fprintf(u.w, format, args...)
	if u.spinning {
		u.drawLocked()
	}
}

func (u *waitUI) drawLocked() {
	fmt.Fprintf(u.w, "\r\033[K%s %s", spinnerFrames[u.frame%len(spinnerFrames)], u.msg)
	u.frame++
}

func (u *waitUI) startSpinner(msg string) {
	u.mu.Lock()
	u.msg, u.spinning = msg, true
	u.stop, u.done = make(chan struct{}), make(chan struct{})
	u.drawLocked()
	u.mu.Unlock()
	go func() {
		defer close(u.done)
		t := time.NewTicker(120 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-u.stop:
				return
			case <-t.C:
				u.mu.Lock()
				u.drawLocked()
				u.mu.Unlock()
			}
		}
	}()
}

// stopSpinner stops and erases the spinner; it is a no-op when none runs.
func (u *waitUI) stopSpinner() {
	if u.stop == nil {
		return
	}
	close(u.stop)
	<-u.done
	u.mu.Lock()
	defer u.mu.Unlock()
	u.spinning = false
	fmt.Fprint(u.w, "\r\033[K")
}
