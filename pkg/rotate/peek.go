package rotate

// Reading an answer far enough to judge it, without losing a byte for the
// caller: error bodies (readError) and the start of an SSE stream (peek).

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"

	"github.com/piauth/piauth/pkg/stream"
)

// maxErrorBody caps how much of an error answer is read to classify it.
const maxErrorBody = 1 << 20

// readError reads an error answer (at most 1 MiB), returning a response whose
// body replays what was read and the *stream.APIError it carries.
func readError(resp *http.Response) (*http.Response, error) {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	probe := *resp
	probe.Body = io.NopCloser(bytes.NewReader(data))
	err := stream.CheckResponse(&probe)
	resp.Body = io.NopCloser(bytes.NewReader(data))
	resp.ContentLength = int64(len(data))
	return resp, err
}

// peek reads a streaming answer until its first content. It returns the
// error of an `event: error` that rotates (the body is then closed), else a
// response whose body replays every byte read followed by the rest.
func peek(resp *http.Response) (*http.Response, error) {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return resp, nil
	}
	var seen bytes.Buffer
	d := stream.NewDecoder(io.TeeReader(resp.Body, &seen))
peeking:
	for d.Next() {
		ev := d.Event()
		switch ev.Name {
		case "error":
			if se := parseStreamError(ev.Data); Classify(se).Rotates() {
				_ = resp.Body.Close()
				return nil, se
			}
			break peeking
		case "content_block_delta", "message_delta", "message_stop":
			break peeking
		case "content_block_start":
			if hasContent(ev.Data) {
				break peeking
			}
		}
	}
	resp.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(seen.Bytes()), resp.Body), body: resp.Body}
	return resp, nil
}

type replayBody struct {
	io.Reader
	body io.Closer
}

func (r *replayBody) Close() error { return r.body.Close() }

func parseStreamError(data []byte) *stream.StreamError {
	var w struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &w); err != nil || w.Error.Type == "" {
		return &stream.StreamError{Type: "unknown_error", Message: string(data)}
	}
	return &stream.StreamError{Type: w.Error.Type, Message: w.Error.Message}
}

// hasContent reports whether a content_block_start event already carries
// content: anything but an empty text or thinking block.
func hasContent(data []byte) bool {
	var ev struct {
		Block struct {
			Type     string `json:"type"`
			Text     string `json:"text"`
			Thinking string `json:"thinking"`
		} `json:"content_block"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return true
	}
	switch ev.Block.Type {
	case "text":
		return ev.Block.Text != ""
	case "thinking":
		return ev.Block.Thinking != ""
	}
	return true
}
