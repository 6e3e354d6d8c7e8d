package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/piauth/piauth/pkg/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Minimal files that content sniffing recognises (the names do not matter:
// a PNG is still a PNG when called .txt).
var attachFiles = map[string][]byte{
	"shot.txt":   append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), 1, 2, 3),
	"photo.jpg":  []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
	"anim.gif":   []byte("GIF89a\x01\x00\x01\x00"),
	"pic.webp":   []byte("RIFF\x1a\x00\x00\x00WEBPVP8 \x0e\x00\x00\x00"),
	"paper.pdf":  []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"),
	"notes.md":   []byte("# Notes\nsome <b>text</b>, ünïcode\n"),
	"binary.bin": append([]byte("PK\x03\x04"), make([]byte, 64)...),
	"nul.txt":    []byte("text with a \x00 NUL"),
}

func TestChatAttachmentBlocks(t *testing.T) {
	e := newConvoEnv(t, "plain")
	dir := t.TempDir()
	var args []string
	for _, name := range []string{"shot.txt", "photo.jpg", "anim.gif", "pic.webp", "paper.pdf", "notes.md"} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, attachFiles[name], 0o600))
		args = append(args, "-a", p)
	}
	e.mustChat("", append(args, "describe", "these")...)
	reqs := e.bodies()
	require.Len(t, reqs, 1)
	var got bytes.Buffer
	require.NoError(t, json.Indent(&got, reqs[0]["messages"], "", "  "))
	got.WriteByte('\n')
	golden := filepath.Join("testdata", "chat", "attachments.golden.json")
	if *updateChatGolden {
		require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run with -update-chat to create it")
	assert.Equal(t, string(want), got.String())

	// The attachments are stored with the turn, and sent again on -c.
	e.mustChat("", "-c", "and the first one?")
	msgs := e.requests()[1].Messages
	require.Len(t, msgs, 3)
	assert.JSONEq(t, string(e.requests()[0].Messages[0].Content), string(msgs[0].Content))
}

func TestChatAttachmentRefusals(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		content []byte
		wantErr string
	}{
		{"binary", "binary.bin", attachFiles["binary.bin"], "unsupported file type application/zip (attach png, jpeg, gif or webp images, PDFs, or UTF-8 text)"},
		{"nul in text", "nul.txt", attachFiles["nul.txt"], "unsupported file type"},
		{"latin-1 text", "old.txt", []byte("caf\xe9 cr\xe8me"), "unsupported file type text/plain"},
		{"missing", "", nil, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newConvoEnv(t, "plain")
			p := filepath.Join(t.TempDir(), "missing.png")
			if tt.content != nil {
				p = filepath.Join(t.TempDir(), tt.file)
				require.NoError(t, os.WriteFile(p, tt.content, 0o600))
			}
			res := e.chat("", "-a", p, "look")
			assert.Equal(t, exitUsage, res.code, res.err)
			assert.Contains(t, res.err, tt.wantErr)
			assert.Contains(t, res.err, p, "the file is named")
			assert.Empty(t, e.requests(), "nothing sent")
		})
	}
}

// TestChatAttachmentLimits runs real processes, the chat and the emulator:
// the files are megabytes, kept out of the test process (whose memory the
// process tests after it would measure through fork). The files are sparse.
func TestChatAttachmentLimits(t *testing.T) {
	lim := stream.Builtin().Limits()
	maxImageBytes, maxPDFBytes := maxImageFile(lim), lim.PDFBytes
	assert.LessOrEqual(t, base64.StdEncoding.EncodedLen(maxImageBytes), lim.ImageBase64Bytes, "an image at the limit fits in base64")
	dir := t.TempDir()
	sparse := func(name, header string, size int64) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		require.NoError(t, err)
		_, err = f.WriteString(header)
		require.NoError(t, err)
		require.NoError(t, f.Truncate(size))
		require.NoError(t, f.Close())
		return p
	}
	e := newConvoEnv(t, "plain")
	e.env["PIAUTH_BASE_URL"] = emulatorProcess(t, convoScenario)
	chat := func(args ...string) relProc {
		return relRun(t, e.env, "", append([]string{"--dir", e.dir, "--keyring", "off", "chat"}, args...)...)
	}
	png := "\x89PNG\r\n\x1a\n"
	tests := []struct {
		name    string
		files   []string
		code    int
		wantErr string
	}{
		{"image at the limit", []string{sparse("at.png", png, int64(maxImageBytes))}, 0, ""},
		{"image over the limit", []string{sparse("big.png", png, int64(maxImageBytes)+1)}, exitUsage,
			"image of 3.8 MB; the API takes images up to 3.8 MB (5.0 MB base64-encoded)"},
		{"request over the limit", []string{sparse("one.pdf", "%PDF-1.4\n", 13<<20), sparse("two.pdf", "%PDF-1.4\n", 13<<20)},
			exitUsage, "over the API's 32.0 MB limit"},
		{"PDF over the limit", []string{sparse("huge.pdf", "%PDF-1.4\n", int64(maxPDFBytes)+1)}, exitUsage,
			"PDF of more than 32.0 MB; the API takes PDFs up to 32.0 MB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			for _, f := range tt.files {
				args = append(args, "-a", f)
			}
			res := chat(append(args, "look")...)
			require.Equal(t, tt.code, res.code, res.err)
			assert.Contains(t, res.err, tt.wantErr)
		})
	}
}
