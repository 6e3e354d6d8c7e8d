package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

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
	big := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, maxImageBytes)...)
	tests := []struct {
		name    string
		file    string
		content []byte
		wantErr string
	}{
		{"binary", "binary.bin", attachFiles["binary.bin"], "unsupported file type application/zip (attach png, jpeg, gif or webp images, PDFs, or UTF-8 text)"},
		{"nul in text", "nul.txt", attachFiles["nul.txt"], "unsupported file type"},
		{"latin-1 text", "old.txt", []byte("caf\xe9 cr\xe8me"), "unsupported file type text/plain"},
		{"image too big", "big.png", big, "image of 3.8 MB; the API takes images up to 3.8 MB (5 MB base64-encoded)"},
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

func TestChatAttachmentLimits(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	// An image just at the limit is taken; its base64 is within 5 MB.
	at := write("at.png", append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, maxImageBytes-8)...))
	b, err := loadAttachment(at)
	require.NoError(t, err)
	var blk struct {
		Source struct {
			Data string `json:"data"`
		} `json:"source"`
	}
	require.NoError(t, json.Unmarshal(b, &blk))
	assert.LessOrEqual(t, len(blk.Source.Data), maxImageBase64)

	// Attachments summing over the request limit are refused before sending.
	e := newConvoEnv(t, "plain")
	pdf := append([]byte("%PDF-1.4\n"), make([]byte, 13<<20)...)
	one, two := write("one.pdf", pdf), write("two.pdf", pdf)
	res := e.chat("", "-a", one, "-a", two, "compare")
	assert.Equal(t, exitUsage, res.code, res.err)
	assert.Contains(t, res.err, "over the API's 32.0 MB limit")
	assert.Empty(t, e.requests())
}
