package emulator

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// contentBlock holds the fields of a system, message or tool_result block
// the emulator looks at.
type contentBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	CacheControl json.RawMessage `json:"cache_control"`
	Content      json.RawMessage `json:"content"` // tool_result: string or blocks
	Source       *struct {
		Type string `json:"type"`
		Data string `json:"data"`
	} `json:"source"` // image, document
}

// toolDef is one entry of tools[]; a Type other than "" or "custom" marks a server tool.
type toolDef struct {
	Type         string          `json:"type"`
	Name         string          `json:"name"`
	CacheControl json.RawMessage `json:"cache_control"`
}

func (t toolDef) custom() bool { return t.Type == "" || t.Type == "custom" }

// messagesRequest holds the fields the emulator validates or echoes.
type messagesRequest struct {
	Model     string `json:"model"`
	MaxTokens *int64 `json:"max_tokens"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Stream   bool            `json:"stream"`
	System   json.RawMessage `json:"system"`
	Tools    []toolDef       `json:"tools"`
	Thinking *struct {
		Type         string `json:"type"`
		BudgetTokens int64  `json:"budget_tokens"`
	} `json:"thinking"`
}

func invalid(msg string) *failure {
	return &failure{status: http.StatusBadRequest, typ: "invalid_request_error", msg: msg}
}

// readBody reads a request body of at most 32 MiB.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *failure) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 32<<20))
	if err == nil {
		return data, nil
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &failure{status: http.StatusRequestEntityTooLarge, typ: "request_too_large", msg: "Request exceeds the maximum allowed number of bytes."}
	}
	return nil, invalid("There was an issue with the format of your request: " + err.Error())
}

// decodeBody reads a JSON request body into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) ([]byte, *failure) {
	data, f := readBody(w, r)
	if f != nil {
		return nil, f
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, invalid("There was an issue with the format of your request: " + err.Error())
	}
	return data, nil
}

// validateShape checks the fields every request needs, whoever sends it.
func (req *messagesRequest) validateShape() *failure {
	switch {
	case req.Model == "":
		return invalid("model: Field required")
	case req.MaxTokens == nil:
		return invalid("max_tokens: Field required")
	case *req.MaxTokens <= 0:
		return invalid("max_tokens: Input should be greater than or equal to 1")
	case len(req.Messages) == 0:
		return invalid("messages: at least one message is required")
	}
	if t := req.Thinking; t != nil && t.Type == "enabled" {
		if t.BudgetTokens < 1024 {
			return invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
		}
		if t.BudgetTokens >= *req.MaxTokens {
			return invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
		}
	}
	return nil
}

// blocks decodes raw as a list of blocks; a string or anything else is none.
func blocks(raw json.RawMessage) []contentBlock {
	var bs []contentBlock
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &bs) != nil {
		return nil
	}
	return bs
}

func hasCacheControl(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// cacheControls counts the blocks carrying cache_control across system,
// tools, message content and tool_result content.
func (req *messagesRequest) cacheControls() int {
	n := 0
	count := func(bs []contentBlock) {
		for _, b := range bs {
			if hasCacheControl(b.CacheControl) {
				n++
			}
			for _, inner := range blocks(b.Content) {
				if hasCacheControl(inner.CacheControl) {
					n++
				}
			}
		}
	}
	count(blocks(req.System))
	for _, t := range req.Tools {
		if hasCacheControl(t.CacheControl) {
			n++
		}
	}
	for _, m := range req.Messages {
		count(blocks(m.Content))
	}
	return n
}

// validateService checks the service's rules that apply to every
// credential: a served model, the cache_control limit and tool names.
func (r *rules) validateService(req *messagesRequest) (*Model, *failure) {
	m, ok := r.model(req.Model)
	if !ok {
		return nil, &failure{status: http.StatusNotFound, typ: "not_found_error", msg: "model: " + req.Model}
	}
	if n := req.cacheControls(); n > r.MaxCacheControl {
		return nil, invalid(fill(r.Messages.CacheControl, "{max}", strconv.Itoa(r.MaxCacheControl), "{found}", strconv.Itoa(n)))
	}
	if f := r.checkImages(req); f != nil {
		return nil, f
	}
	for i, t := range req.Tools {
		if t.custom() && !r.toolName.MatchString(t.Name) {
			return nil, invalid("tools." + strconv.Itoa(i) + ".custom.name: String should match pattern '" + r.ToolNamePattern + "'")
		}
	}
	return &m, nil
}

// checkImages refuses an image block whose base64 data is over
// MaxImageBase64Bytes, naming where it is as the API does.
func (r *rules) checkImages(req *messagesRequest) *failure {
	if r.MaxImageBase64Bytes <= 0 {
		return nil
	}
	for i, m := range req.Messages {
		for j, b := range blocks(m.Content) {
			if b.Type == "image" && b.Source != nil && b.Source.Type == "base64" && len(b.Source.Data) > r.MaxImageBase64Bytes {
				at := "messages." + strconv.Itoa(i) + ".content." + strconv.Itoa(j) + ".image.source.base64"
				return invalid(fill(r.Messages.ImageTooLarge, "{at}", at, "{found}", strconv.Itoa(len(b.Source.Data)), "{max}", strconv.Itoa(r.MaxImageBase64Bytes)))
			}
		}
	}
	return nil
}
