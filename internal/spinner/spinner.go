// Package spinner shows that something is under way on a terminal: a
// turning mark and a label, redrawn in place on one line until Stop clears
// it.
package spinner

import (
	"io"
	"sync"
	"time"
)

// frames are drawn in turn, one per tick.
var frames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// tick is the time between frames.
const tick = 80 * time.Millisecond

// Spinner is a running spinner. Its methods are safe for concurrent use.
type Spinner struct {
	w     io.Writer
	label string
	once  sync.Once
	quit  chan struct{}
	done  chan struct{}
}

// Start draws the first frame on w (a terminal) at once and turns it until
// Stop.
func Start(w io.Writer, label string) *Spinner {
	s := &Spinner{w: w, label: label, quit: make(chan struct{}), done: make(chan struct{})}
	s.draw(0)
	go s.run()
	return s
}

func (s *Spinner) run() {
	defer close(s.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-s.quit:
			return
		case <-t.C:
			s.draw(i)
		}
	}
}

func (s *Spinner) draw(i int) {
	_, _ = io.WriteString(s.w, "\r"+frames[i%len(frames)]+" "+s.label)
}

// Stop stops the spinner and erases its line, leaving the cursor at the
// start of it; it returns once nothing more will be drawn. Later calls do
// nothing.
func (s *Spinner) Stop() {
	s.once.Do(func() {
		close(s.quit)
		<-s.done
		_, _ = io.WriteString(s.w, "\r\x1b[K")
	})
}
