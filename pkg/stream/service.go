package stream

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// builtinData is the service data this build ships with (see anthropic.json).
//
//go:embed anthropic.json
var builtinData []byte

// ErrServiceData reports service data (the built-in file or an override)
// that cannot be used: malformed JSON, a wrong type, an unknown field or an
// inconsistent table. Messages carry the line and column where known.
var ErrServiceData = errors.New("invalid service data")

// serviceData is the JSON shape of anthropic.json and of override files.
type serviceData struct {
	Source                string                 `json:"_source,omitempty"`
	RetiredSource         string                 `json:"_retired_source,omitempty"`
	Version               string                 `json:"claude_code_version,omitempty"`
	VersionSource         string                 `json:"claude_code_version_source,omitempty"`
	AnthropicVersion      string                 `json:"anthropic_version,omitempty"`
	Identity              string                 `json:"identity,omitempty"`
	BillingHeaderPrefix   string                 `json:"billing_header_prefix,omitempty"`
	OAuthBetas            []string               `json:"oauth_betas,omitempty"`
	ThinkingBeta          string                 `json:"thinking_beta,omitempty"`
	ForbiddenBetaPrefixes []string               `json:"forbidden_beta_prefixes,omitempty"`
	MaxCacheControl       int                    `json:"max_cache_control_blocks,omitempty"`
	Limits                Limits                 `json:"limits"`
	ClaudeCodeTools       []string               `json:"claude_code_tools,omitempty"`
	WebSearchPer1000      float64                `json:"web_search_usd_per_1000,omitempty"`
	DefaultModel          string                 `json:"default_model,omitempty"`
	Aliases               map[string]string      `json:"aliases,omitempty"`
	Models                map[string]modelData   `json:"models,omitempty"`
	Retired               map[string]retiredData `json:"retired,omitempty"`
}

type modelData struct {
	DisplayName      string      `json:"display_name,omitempty"`
	ContextWindow    int         `json:"context_window,omitempty"`
	MaxOutput        int         `json:"max_output,omitempty"`
	AdaptiveThinking bool        `json:"adaptive_thinking,omitempty"`
	MinClaudeCode    string      `json:"min_claude_code,omitempty"`
	Prices           Prices      `json:"prices"`
	Tiers            []PriceTier `json:"tiers,omitempty"`
	Derived          []string    `json:"derived,omitempty"`
	Notes            string      `json:"notes,omitempty"`
}

type retiredData struct {
	RetiredOn   string  `json:"retired_on,omitempty"`
	Replacement string  `json:"replacement"`
	Prices      *Prices `json:"prices,omitempty"`
	Notes       string  `json:"notes,omitempty"`
}

// Service is what piauth knows about Anthropic's service: the Claude Code
// version it claims, the OAuth betas and identity, Claude Code's own tool
// names, and the model table with prices. The built-in value comes from the
// embedded anthropic.json; an override file (ParseService) is merged over it
// with Merge. A *Service is immutable: WithVersion and Merge return new
// values, so one may be shared between goroutines. The zero Service is not
// usable: start from Builtin().
type Service struct {
	d     serviceData
	patch []byte          // the JSON this value was parsed from, for Merge
	tools map[string]bool // Claude Code's own tool names
}

// builtin parses the embedded data once. It panics on invalid data, which
// TestBuiltinService rules out.
var builtin = sync.OnceValue(func() *Service {
	s, err := ParseService(builtinData)
	if err == nil {
		err = s.validate()
	}
	if err != nil {
		panic(fmt.Sprintf("stream: embedded anthropic.json: %v", err))
	}
	return s
})

// Builtin returns the service data this build ships with. The value is
// shared and immutable.
func Builtin() *Service { return builtin() }

// ParseService parses service data in anthropic.json's shape. The data may
// hold only some fields (an override for Merge); it is checked for syntax,
// types and unknown fields, not for completeness. Errors wrap ErrServiceData
// and name the line and column.
func ParseService(data []byte) (*Service, error) {
	var d serviceData
	if err := decodeStrict(data, &d); err != nil {
		return nil, err
	}
	return newService(d, data), nil
}

func newService(d serviceData, patch []byte) *Service {
	s := &Service{d: d, patch: patch, tools: make(map[string]bool, len(d.ClaudeCodeTools))}
	for _, t := range d.ClaudeCodeTools {
		s.tools[t] = true
	}
	return s
}

// Merge returns s with over's fields laid over it as a JSON merge patch
// (RFC 7386): objects (models, aliases, retired, a model's prices) merge key
// by key, arrays and scalars replace, and null removes a key. The result must
// be complete and consistent (the default model and every alias and
// replacement must name a current model), else the error wraps
// ErrServiceData. A nil over returns s.
func (s *Service) Merge(over *Service) (*Service, error) {
	if over == nil {
		return s, nil
	}
	base, err := json.Marshal(s.d)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrServiceData, err)
	}
	merged, err := mergePatch(base, over.patch)
	if err != nil {
		return nil, fmt.Errorf("%w: merge: %v", ErrServiceData, err)
	}
	out, err := ParseService(merged)
	if err != nil {
		return nil, err
	}
	if err := out.validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// WithVersion returns a copy of s that claims Claude Code version v (a
// configured or learnt version, see RequiredVersion). v may carry a leading
// "v" or trailing text, as `claude --version` prints ("2.1.300 (Claude
// Code)"). An empty or malformed v returns s unchanged.
func (s *Service) WithVersion(v string) *Service {
	c := canonical(v)
	if c == "" {
		return s
	}
	d := s.d
	d.Version = c[1:]
	patch, err := setKey(s.patch, "claude_code_version", d.Version)
	if err != nil { // s.patch was parsed by ParseService: cannot happen
		patch = nil
	}
	return newService(d, patch)
}

// Version returns the Claude Code version s claims, e.g. "2.1.280".
func (s *Service) Version() string { return s.d.Version }

// UserAgent returns the user-agent of OAuth requests:
// "claude-cli/<version> (external, cli)".
func (s *Service) UserAgent() string { return "claude-cli/" + s.d.Version + " (external, cli)" }

// Identity returns the system text an OAuth request must start with.
func (s *Service) Identity() string { return s.d.Identity }

// AnthropicVersion returns the anthropic-version header value.
func (s *Service) AnthropicVersion() string { return s.d.AnthropicVersion }

// ClaudeCodeTools returns Claude Code's own tool names, which OAuth requests
// send unchanged (case-sensitive).
func (s *Service) ClaudeCodeTools() []string {
	return append([]string(nil), s.d.ClaudeCodeTools...)
}

// DefaultModel returns the default model as written in the data (an alias
// or an id); Resolve it for the model.
func (s *Service) DefaultModel() string { return s.d.DefaultModel }

// OAuthBetas returns the anthropic-beta values an OAuth request for model
// carries: the OAuth betas, plus the interleaved-thinking beta unless the
// model is known to think adaptively. model may be an alias or "" (unknown:
// the thinking beta is included).
func (s *Service) OAuthBetas(model string) []string {
	betas := append([]string(nil), s.d.OAuthBetas...)
	if s.d.ThinkingBeta == "" {
		return betas
	}
	if model != "" {
		if m, _ := s.Resolve(model); m.AdaptiveThinking {
			return betas
		}
	}
	return append(betas, s.d.ThinkingBeta)
}

// forbiddenBeta reports whether the beta b must never be sent.
func (s *Service) forbiddenBeta(b string) bool {
	for _, p := range s.d.ForbiddenBetaPrefixes {
		if strings.HasPrefix(b, p) {
			return true
		}
	}
	return false
}

// Limits are the Messages API's size limits on what a request carries.
type Limits struct {
	ImageBase64Bytes int `json:"image_base64_bytes,omitempty"` // one image's base64 data
	PDFBytes         int `json:"pdf_bytes,omitempty"`          // one PDF file
	RequestBytes     int `json:"request_bytes,omitempty"`      // the whole request body
}

// Limits returns the request size limits (anthropic.json's "limits").
func (s *Service) Limits() Limits { return s.d.Limits }

// maxCacheControl is the most cache_control blocks one request may carry.
func (s *Service) maxCacheControl() int {
	if s.d.MaxCacheControl > 0 {
		return s.d.MaxCacheControl
	}
	return 4
}

// validate checks that a complete service is consistent.
func (s *Service) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrServiceData, fmt.Sprintf(format, a...))
	}
	d := s.d
	switch {
	case !validVersion(d.Version):
		return bad("claude_code_version %q is not a version", d.Version)
	case d.Identity == "":
		return bad("identity is empty")
	case d.AnthropicVersion == "":
		return bad("anthropic_version is empty")
	case len(d.OAuthBetas) == 0:
		return bad("oauth_betas is empty")
	case len(d.Models) == 0:
		return bad("models is empty")
	}
	if l := d.Limits; l.ImageBase64Bytes <= 0 || l.PDFBytes <= 0 || l.RequestBytes <= 0 {
		return bad("limits: image_base64_bytes, pdf_bytes and request_bytes must be positive")
	}
	current := func(field, id string) error {
		if _, ok := d.Models[id]; !ok {
			return bad("%s %q is not a current model", field, id)
		}
		return nil
	}
	for a, id := range d.Aliases {
		if a != strings.ToLower(a) {
			return bad("alias %q must be lower case", a)
		}
		if _, clash := d.Models[a]; clash {
			return bad("alias %q is also a model id", a)
		}
		if err := current("alias "+a+" →", id); err != nil {
			return err
		}
	}
	def := d.DefaultModel
	if id, ok := d.Aliases[def]; ok {
		def = id
	}
	if err := current("default_model", def); err != nil {
		return err
	}
	for id, r := range d.Retired {
		if err := current("replacement of "+id, r.Replacement); err != nil {
			return err
		}
		if _, clash := d.Models[id]; clash {
			return bad("%q is both current and retired", id)
		}
	}
	for id, m := range d.Models {
		if id != strings.ToLower(id) {
			return bad("model id %q must be lower case", id)
		}
		if m.MinClaudeCode != "" && !validVersion(m.MinClaudeCode) {
			return bad("model %s: min_claude_code %q is not a version", id, m.MinClaudeCode)
		}
		for i, t := range m.Tiers {
			if t.AbovePromptTokens <= 0 || i > 0 && t.AbovePromptTokens <= m.Tiers[i-1].AbovePromptTokens {
				return bad("model %s: tiers must have increasing positive above_prompt_tokens", id)
			}
		}
	}
	return nil
}
