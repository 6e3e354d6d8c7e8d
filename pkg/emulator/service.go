package emulator

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/mod/semver"
)

// defaultServiceJSON holds the facts of Anthropic's service as of late 2026.
//
//go:embed service.json
var defaultServiceJSON []byte

// Service is the data the emulator enforces: models, version floors, the
// identity and tool rules, token markers and error messages. DefaultService
// returns the late-2026 facts from the embedded service.json; a scenario's
// "service" object is decoded on top of them (objects merge key by key,
// arrays replace).
type Service struct {
	// IdentityText is the system block an OAuth request must start with.
	IdentityText string `json:"identity_text"`
	// BillingHeaderPrefix starts the optional attestation block that may
	// precede the identity.
	BillingHeaderPrefix string `json:"billing_header_prefix"`
	// Models are the served models, listed by GET /v1/models in this order.
	Models []Model `json:"models"`
	// RetiredModels are refused with 404 and not listed, even when in
	// Models; an entry ending in "*" is a prefix.
	RetiredModels []string `json:"retired_models"`
	// VersionFloors map a model id to the oldest Claude Code version
	// (user-agent claude-cli/<v>) an OAuth request may use; "" means none.
	VersionFloors map[string]string `json:"version_floors"`
	// IdentityGatedFamilies answer a fake 429 to OAuth requests without the
	// identity; other families answer normally.
	IdentityGatedFamilies []string `json:"identity_gated_families"`
	// MaxCacheControl is the most blocks with cache_control per request.
	MaxCacheControl int `json:"max_cache_control"`
	// MaxImageBase64Bytes is the largest base64 data an image block may
	// carry (0: no limit).
	MaxImageBase64Bytes int `json:"max_image_base64_bytes"`
	// ToolNamePattern is the regexp every custom tool name must match.
	ToolNamePattern string `json:"tool_name_pattern"`
	// Classifier is the third-party tool-name classifier for OAuth requests.
	Classifier Classifier `json:"classifier"`
	// ModelsRejectOAuth makes GET /v1/models refuse OAuth tokens with 401.
	ModelsRejectOAuth bool `json:"models_reject_oauth"`
	// UsageUserAgentPrefix is the user-agent prefix /api/oauth/usage requires (else 429).
	UsageUserAgentPrefix string `json:"usage_user_agent_prefix"`
	// Markers map a substring of a token the emulator did not mint to the
	// outcome of every request with it. Checked in key order.
	Markers map[string]Marker `json:"markers"`
	// Messages are the error messages of the rules above.
	Messages Messages `json:"messages"`
}

// Model is one served model, as GET /v1/models lists it.
type Model struct {
	ID             string `json:"id"`
	DisplayName    string `json:"display_name"`
	Family         string `json:"family"` // opus, sonnet, haiku, fable
	CreatedAt      string `json:"created_at"`
	MaxInputTokens int64  `json:"max_input_tokens"`
	MaxTokens      int64  `json:"max_tokens"`
}

// UnmarshalJSON decodes m afresh: a scenario's models replace the default
// ones instead of merging into them element by element.
func (m *Model) UnmarshalJSON(data []byte) error {
	type plain Model
	var p plain
	if err := decodeStrict(data, &p); err != nil {
		return err
	}
	*m = Model(p)
	return nil
}

// Classifier decides which tool names an OAuth request may send. A name
// matching a Refused pattern is refused; otherwise one of Tools (exact,
// case-sensitive), starting with one of ToolPrefixes, or matching an Allowed
// pattern is accepted; anything else is refused.
type Classifier struct {
	Disabled     bool     `json:"disabled"`
	Refused      []string `json:"refused_patterns"`
	Tools        []string `json:"tools"`
	ToolPrefixes []string `json:"tool_prefixes"`
	Allowed      []string `json:"allowed_patterns"`
}

// Marker is the outcome of a request whose token carries the marker.
// AtAuth markers are checked with the credentials, on every endpoint
// (messages, count_tokens, models, usage); the others on Messages only.
type Marker struct {
	AtAuth bool `json:"at_auth,omitempty"`
	Outcome
}

// Messages are the service's error messages. {sent}, {floor}, {max} and
// {found} are replaced by the values of the refused request.
type Messages struct {
	ThirdParty      string `json:"third_party"`
	VersionTooOld   string `json:"version_too_old"`
	IdentityRefused string `json:"identity_refused"`
	CacheControl    string `json:"cache_control"`
	ImageTooLarge   string `json:"image_too_large"`
	UsageUserAgent  string `json:"usage_user_agent"`
}

// DefaultService returns a fresh copy of the embedded late-2026 service facts.
func DefaultService() *Service {
	var s Service
	if err := decodeStrict(defaultServiceJSON, &s); err != nil {
		panic(fmt.Sprintf("emulator: embedded service.json: %v", err))
	}
	return &s
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// rules is a Service compiled for lookups.
type rules struct {
	*Service
	models   map[string]Model
	toolName *regexp.Regexp
	refused  []*regexp.Regexp
	allowed  []*regexp.Regexp
	markers  []string // Markers keys, sorted
}

// compile validates s and prepares its lookups.
func (s *Service) compile() (*rules, error) {
	r := &rules{Service: s, models: map[string]Model{}}
	for i, m := range s.Models {
		if m.ID == "" {
			return nil, fmt.Errorf("models[%d]: id is required", i)
		}
		r.models[m.ID] = m
	}
	for id, v := range s.VersionFloors {
		if v != "" && !semver.IsValid("v"+v) {
			return nil, fmt.Errorf("version_floors[%s]: %q is not a version", id, v)
		}
	}
	if s.MaxCacheControl < 0 {
		return nil, errors.New("max_cache_control must not be negative")
	}
	if s.MaxImageBase64Bytes < 0 {
		return nil, errors.New("max_image_base64_bytes must not be negative")
	}
	var err error
	if r.toolName, err = regexp.Compile(s.ToolNamePattern); err != nil {
		return nil, fmt.Errorf("tool_name_pattern: %w", err)
	}
	if r.refused, err = compileAll(s.Classifier.Refused); err != nil {
		return nil, fmt.Errorf("classifier.refused_patterns: %w", err)
	}
	if r.allowed, err = compileAll(s.Classifier.Allowed); err != nil {
		return nil, fmt.Errorf("classifier.allowed_patterns: %w", err)
	}
	for k, m := range s.Markers {
		if k == "" {
			return nil, errors.New("markers: empty marker")
		}
		if err := m.Outcome.validate(); err != nil {
			return nil, fmt.Errorf("markers[%s]: %w", k, err)
		}
		r.markers = append(r.markers, k)
	}
	sort.Strings(r.markers)
	return r, nil
}

func compileAll(patterns []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(patterns))
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, re)
	}
	return out, nil
}

// model returns the served model id; false for unknown and retired ids.
func (r *rules) model(id string) (Model, bool) {
	if r.retired(id) {
		return Model{}, false
	}
	m, ok := r.models[id]
	return m, ok
}

func (r *rules) retired(id string) bool {
	for _, p := range r.RetiredModels {
		if pre, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(id, pre) || p == id {
			return true
		}
	}
	return false
}

// listed returns the models GET /v1/models shows, in order.
func (r *rules) listed() []Model {
	var out []Model
	for _, m := range r.Models {
		if !r.retired(m.ID) {
			out = append(out, m)
		}
	}
	return out
}

// thirdParty reports whether the classifier refuses the tool name.
func (r *rules) thirdParty(name string) bool {
	c := r.Classifier
	if c.Disabled {
		return false
	}
	for _, re := range r.refused {
		if re.MatchString(name) {
			return true
		}
	}
	for _, t := range c.Tools {
		if t == name {
			return false
		}
	}
	for _, p := range c.ToolPrefixes {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	for _, re := range r.allowed {
		if re.MatchString(name) {
			return false
		}
	}
	return true
}

// gated reports whether a missing identity earns the fake 429 for m.
func (r *rules) gated(m Model) bool {
	for _, f := range r.IdentityGatedFamilies {
		if f == m.Family {
			return true
		}
	}
	return false
}

// marker returns the marker outcome tok carries, if any.
func (r *rules) marker(tok string, atAuth bool) (Outcome, bool) {
	for _, k := range r.markers {
		if m := r.Markers[k]; m.AtAuth == atAuth && strings.Contains(tok, k) {
			return m.Outcome, true
		}
	}
	return Outcome{}, false
}

// fill replaces {name} placeholders in msg.
func fill(msg string, kv ...string) string {
	return strings.NewReplacer(kv...).Replace(msg)
}
