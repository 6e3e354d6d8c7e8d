package lineedit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/piauth/piauth/pkg/keystore"
)

// DefaultHistorySize is how many entries a history keeps by default.
const DefaultHistorySize = 1000

// History is the list of messages sent, oldest first, kept in a file when it
// has a path: one JSON string a line (so a message may hold any text),
// rewritten atomically (mode 0600) on every Add, and bounded to its size.
type History struct {
	path    string
	max     int
	entries []string
}

// NewHistory returns an empty history of at most max entries (0: the
// default) kept in path ("" for memory only).
func NewHistory(path string, max int) *History {
	if max <= 0 {
		max = DefaultHistorySize
	}
	return &History{path: path, max: max}
}

// LoadHistory is NewHistory with the entries of the file at path, if it
// exists; lines that are not JSON strings are skipped.
func LoadHistory(path string, max int) (*History, error) {
	h := NewHistory(path, max)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("read history: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		var s string
		if json.Unmarshal(sc.Bytes(), &s) == nil && s != "" {
			h.entries = append(h.entries, s)
		}
	}
	h.trim()
	return h, nil
}

// Entries returns the entries, oldest first.
func (h *History) Entries() []string { return append([]string(nil), h.entries...) }

// Add appends entry (an empty one, or one equal to the last, is not added)
// and writes the file when the history has one.
func (h *History) Add(entry string) error {
	if strings.TrimSpace(entry) == "" || (len(h.entries) > 0 && h.entries[len(h.entries)-1] == entry) {
		return nil
	}
	h.entries = append(h.entries, entry)
	h.trim()
	if h.path == "" {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, e := range h.entries {
		_ = enc.Encode(e) // a string always encodes
	}
	if err := keystore.WriteFileAtomic(h.path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("save history: %w", err)
	}
	return nil
}

func (h *History) trim() {
	if n := len(h.entries) - h.max; n > 0 {
		h.entries = append([]string(nil), h.entries[n:]...)
	}
}

// termHistory shows a History to x/term's Terminal: only one-line entries
// (x/term edits one line), and Add does nothing (the editor's caller adds
// whole messages).
type termHistory struct{ h *History }

func (t termHistory) Add(string) {}

func (t termHistory) Len() int {
	n := 0
	for _, e := range t.h.entries {
		if !strings.Contains(e, "\n") {
			n++
		}
	}
	return n
}

func (t termHistory) At(idx int) string {
	for i := len(t.h.entries) - 1; i >= 0; i-- {
		if e := t.h.entries[i]; !strings.Contains(e, "\n") {
			if idx == 0 {
				return e
			}
			idx--
		}
	}
	panic("lineedit: history index out of range")
}
