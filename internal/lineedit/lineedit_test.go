package lineedit

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openPTY is an Editor on a fresh pseudo-terminal; keys are written to the
// returned master, and what the editor echoes is drained.
func openPTY(t *testing.T, hist *History) (*Editor, *os.File) {
	t.Helper()
	master, slave, err := pty.Open()
	require.NoError(t, err)
	t.Cleanup(func() { _ = master.Close(); _ = slave.Close() })
	go io.Copy(io.Discard, master) //nolint:errcheck // the echo
	e, err := Open(slave, CRLF(slave), hist)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e, master
}

func TestReadMessage(t *testing.T) {
	tests := []struct {
		name, keys string
		want       []string // messages, in order
	}{
		{"a line", "hello\r", []string{"hello"}},
		{"a pasted block is one message", "\x1b[200~a\rb\rc\x1b[201~\r", []string{"a\nb\nc"}},
		{"a paste ending in a newline", "\x1b[200~a\rb\r\x1b[201~\r", []string{"a\nb"}},
		{"typed after a paste", "\x1b[200~a\rb\x1b[201~ more\r", []string{"a\nb more"}},
		{"LF line ends in a paste", "\x1b[200~a\nb\x1b[201~\r", []string{"a\nb"}},
		{"a backslash continues", "x \\\ry\rnext\r", []string{"x \ny", "next"}},
		{`a """ block`, "\"\"\"\r1\r\r2\r\"\"\"\rafter\r", []string{"1\n\n2", "after"}},
		{"Ctrl-C in a paste is text", "\x1b[200~a\x03b\x1b[201~\r", []string{"a\x03b"}},
		{"editing", "helo\x1b[Dl\r", []string{"hello"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, keys := openPTY(t, nil)
			_, err := keys.WriteString(tt.keys)
			require.NoError(t, err)
			for _, want := range tt.want {
				got, err := e.ReadMessage()
				require.NoError(t, err)
				assert.Equal(t, want, got)
			}
		})
	}
}

func TestReadMessageCtrlCAndCtrlD(t *testing.T) {
	e, keys := openPTY(t, nil)
	_, err := keys.WriteString("dropped\x03\x03ok\r\x04")
	require.NoError(t, err)
	got, err := e.ReadMessage()
	assert.ErrorIs(t, err, ErrInterrupt)
	assert.Equal(t, "dropped", got)
	got, err = e.ReadMessage()
	assert.ErrorIs(t, err, ErrInterrupt)
	assert.Empty(t, got, "Ctrl-C on an empty line")
	got, err = e.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "ok", got, "the line after Ctrl-C starts afresh")
	_, err = e.ReadMessage()
	assert.ErrorIs(t, err, io.EOF, "Ctrl-D on an empty line")
}

func TestWatchInterrupt(t *testing.T) {
	e, keys := openPTY(t, nil)
	cancelled := make(chan struct{})
	stop := e.WatchInterrupt(func() { close(cancelled) })
	_, err := keys.WriteString("lost\x03kept")
	require.NoError(t, err)
	<-cancelled
	stop()
	_, err = keys.WriteString("\r")
	require.NoError(t, err)
	got, err := e.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "kept", got, "type-ahead after the Ctrl-C is read next")
}

func TestHistoryRecall(t *testing.T) {
	h := NewHistory("", 0)
	for _, m := range []string{"one", "two", "multi\nline"} {
		require.NoError(t, h.Add(m))
	}
	e, keys := openPTY(t, h)
	_, err := keys.WriteString("\x1b[A\x1b[A\r\x1b[A\x1b[A\x1b[B\r")
	require.NoError(t, err)
	got, err := e.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "one", got, "up twice: past the multi-line entry, which x/term cannot edit")
	got, err = e.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "two", got, "up, up, down")
}

func TestHistoryFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "chat_history")
	h, err := LoadHistory(path, 3)
	require.NoError(t, err)
	assert.Empty(t, h.Entries())
	for _, m := range []string{"a", "b", "b", " ", "c\nd", "e", "f"} {
		require.NoError(t, h.Add(m))
	}
	assert.Equal(t, []string{"c\nd", "e", "f"}, h.Entries(), "bounded, blank and repeated entries left out")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "\"c\\nd\"\n\"e\"\n\"f\"\n", string(data))

	require.NoError(t, os.WriteFile(path, append(data, "not json\n\"<g>\"\n"...), 0o600))
	h, err = LoadHistory(path, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"e", "f", "<g>"}, h.Entries(), "a bad line is skipped")

	require.NoError(t, os.Mkdir(path+"-dir", 0o700))
	_, err = LoadHistory(path+"-dir", 3)
	assert.Error(t, err)
}

func TestCRLF(t *testing.T) {
	var b strings.Builder
	w := CRLF(&b)
	for _, s := range []string{"a\nb", "\r\n", "c\r", "\n", "\n\n", "plain"} {
		n, err := w.Write([]byte(s))
		require.NoError(t, err)
		assert.Equal(t, len(s), n)
	}
	assert.Equal(t, "a\r\nb\r\nc\r\n\r\n\r\nplain", b.String())
}

func TestCancel(t *testing.T) {
	e, _ := openPTY(t, nil)
	done := make(chan error, 1)
	go func() {
		_, err := e.ReadMessage()
		done <- err
	}()
	e.Cancel()
	e.Cancel()
	assert.ErrorIs(t, <-done, ErrCanceled)
	_, err := e.ReadMessage()
	assert.ErrorIs(t, err, ErrCanceled, "and every later read")
}
