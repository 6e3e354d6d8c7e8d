package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/piauth/piauth/pkg/stream"
)

// The attachment limits are the Service's (anthropic.json "limits", from
// platform.claude.com docs: Vision, "PDF support"; Claude Code's
// constants/apiLimits.ts): an image's base64 data may be 5 MB (so the file
// 3.75 MB), a request 32 MB (PDFs share that limit). The request check runs
// on the whole body before it is sent.

// maxImageFile is the largest image file whose base64 fits lim.
func maxImageFile(lim stream.Limits) int { return lim.ImageBase64Bytes / 4 * 3 }

// imageTypes are the image formats the API takes, by sniffed content type.
var imageTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// loadAttachment reads -a FILE as a content block: an image (png, jpeg,
// gif, webp) as an image block and a PDF as a document block, both base64,
// told apart by their content (not the name); a text file (valid UTF-8
// without NUL bytes) as a text block that names the file. Anything else, or
// a file over its limit, is a usage error.
func loadAttachment(path string, lim stream.Limits) (json.RawMessage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("-a: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(lim.RequestBytes)+1))
	if err != nil {
		return nil, usagef("-a %s: %w", path, err)
	}
	name := filepath.Base(path)
	mediaType, _, _ := strings.Cut(http.DetectContentType(data), ";")
	switch {
	case imageTypes[mediaType]:
		if maxImage := maxImageFile(lim); len(data) > maxImage {
			return nil, usagef("-a %s: image of %s; the API takes images up to %s (%s base64-encoded)", path, sizeMB(len(data)), sizeMB(maxImage), sizeMB(lim.ImageBase64Bytes))
		}
		return mediaBlock("image", mediaType, data, "")
	case mediaType == "application/pdf":
		if len(data) > lim.PDFBytes {
			return nil, usagef("-a %s: PDF of more than %s; the API takes PDFs up to %s", path, sizeMB(lim.PDFBytes), sizeMB(lim.PDFBytes))
		}
		return mediaBlock("document", mediaType, data, name)
	case utf8.Valid(data) && bytes.IndexByte(data, 0) < 0:
		if len(data) > lim.RequestBytes {
			return nil, usagef("-a %s: text of more than %s, the API's request limit", path, sizeMB(lim.RequestBytes))
		}
		text := fmt.Sprintf("<file name=%q>\n%s\n</file>", name, strings.TrimRight(string(data), "\n"))
		return textBlock(text), nil
	}
	return nil, usagef("-a %s: unsupported file type %s (attach png, jpeg, gif or webp images, PDFs, or UTF-8 text)", path, mediaType)
}

// mediaBlock is an image or document block with base64 data.
func mediaBlock(typ, mediaType string, data []byte, title string) (json.RawMessage, error) {
	type source struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
	}
	return json.Marshal(struct {
		Type   string `json:"type"`
		Source source `json:"source"`
		Title  string `json:"title,omitempty"`
	}{typ, source{"base64", mediaType, base64.StdEncoding.EncodeToString(data)}, title})
}

// sizeMB renders n bytes in MB (MiB) with one decimal.
func sizeMB(n int) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// toolResult is one --tool-result / --tool-error answer to a tool call.
type toolResult struct {
	ID      string          // the tool_use id answered
	Content json.RawMessage // a JSON string or an array of content blocks
	IsError bool            // --tool-error
}

// parseToolResult parses ID=VALUE. VALUE (or, as @FILE, the file's
// content) that is a JSON string or an array of content blocks is sent as
// the result's content as it is; other JSON, and text that is not JSON, as
// a string.
func parseToolResult(arg string, isError bool) (toolResult, error) {
	flag := "--tool-result"
	if isError {
		flag = "--tool-error"
	}
	id, value, ok := strings.Cut(arg, "=")
	id = strings.TrimSpace(id)
	if !ok || id == "" {
		return toolResult{}, usagef("%s %q: want ID=JSON or ID=@FILE (ID: the tool_use id)", flag, arg)
	}
	if file, ok := strings.CutPrefix(value, "@"); ok {
		data, err := os.ReadFile(file)
		if err != nil {
			return toolResult{}, usagef("%s %s: %w", flag, id, err)
		}
		value = string(data)
	}
	return toolResult{ID: id, Content: toolResultContent(value), IsError: isError}, nil
}

// toolResultContent is value as tool_result content.
func toolResultContent(value string) json.RawMessage {
	v := strings.TrimSpace(value)
	if json.Valid([]byte(v)) {
		var s string
		if json.Unmarshal([]byte(v), &s) == nil {
			return json.RawMessage(v)
		}
		var blocks []struct {
			Type string `json:"type"`
		}
		if json.Unmarshal([]byte(v), &blocks) == nil && len(blocks) > 0 && blocks[0].Type != "" {
			var buf bytes.Buffer
			_ = json.Compact(&buf, []byte(v))
			return buf.Bytes()
		}
		var buf bytes.Buffer
		_ = json.Compact(&buf, []byte(v))
		v = buf.String()
	}
	b, _ := json.Marshal(v)
	return b
}

// block renders r as a tool_result block.
func (r toolResult) block() json.RawMessage {
	b, _ := json.Marshal(struct {
		Type      string          `json:"type"`
		ToolUseID string          `json:"tool_use_id"`
		Content   json.RawMessage `json:"content"`
		IsError   bool            `json:"is_error,omitempty"`
	}{"tool_result", r.ID, r.Content, r.IsError})
	return b
}

// checkToolResults checks results against the tool calls the conversation
// waits on: each answers one of them, once, and every call is answered
// (the API refuses a tool_use left without its tool_result).
func checkToolResults(pending []string, results []toolResult) error {
	want := strings.Join(pending, ", ")
	if len(pending) == 0 {
		return usagef("no tool call is waiting for a result in this conversation")
	}
	seen := map[string]bool{}
	for _, r := range results {
		if !slices.Contains(pending, r.ID) {
			return usagef("tool result for %q: no such tool call waits; expected %s", r.ID, want)
		}
		if seen[r.ID] {
			return usagef("tool result for %q given twice", r.ID)
		}
		seen[r.ID] = true
	}
	for _, id := range pending {
		if !seen[id] {
			return usagef("no result for tool call %s: every waiting call needs one (%s)", id, want)
		}
	}
	return nil
}

// declinedResults answer the pending tool calls as not run (an interactive
// turn typed while tool calls wait: the API needs a result for each).
func declinedResults(pending []string) []toolResult {
	out := make([]toolResult, len(pending))
	for i, id := range pending {
		out[i] = toolResult{ID: id, Content: json.RawMessage(`"not run: the user replied without running the tool"`), IsError: true}
	}
	return out
}

// userMessage builds the user turn: tool results first (the API wants them
// first), then attachments, then the prompt. Plain text alone stays a
// string content, as before.
func userMessage(results []toolResult, attachments []json.RawMessage, prompt string) json.RawMessage {
	if len(results) == 0 && len(attachments) == 0 {
		b, _ := json.Marshal(struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		}{"user", prompt})
		return b
	}
	blocks := make([]json.RawMessage, 0, len(results)+len(attachments)+1)
	for _, r := range results {
		blocks = append(blocks, r.block())
	}
	blocks = append(blocks, attachments...)
	if prompt != "" {
		blocks = append(blocks, textBlock(prompt))
	}
	b, _ := json.Marshal(struct {
		Role    string            `json:"role"`
		Content []json.RawMessage `json:"content"`
	}{"user", blocks})
	return b
}

// textBlock is a text content block.
func textBlock(text string) json.RawMessage {
	b, _ := json.Marshal(struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}{"text", text})
	return b
}
