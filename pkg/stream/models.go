package stream

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrRetiredModel reports a model id that Anthropic has retired. Resolve
// returns it wrapped in a *RetiredModelError naming the replacement.
var ErrRetiredModel = errors.New("model retired")

// Prices are list prices in USD per million tokens.
type Prices struct {
	Input        float64 `json:"input"`
	Output       float64 `json:"output"`
	CacheWrite5m float64 `json:"cache_write_5m"` // cache write with a 5-minute TTL
	CacheWrite1h float64 `json:"cache_write_1h"` // cache write with a 1-hour TTL
	CacheRead    float64 `json:"cache_read"`
}

// PriceTier replaces a model's prices for requests whose prompt (input +
// cache writes + cache reads) exceeds AbovePromptTokens.
type PriceTier struct {
	AbovePromptTokens int64  `json:"above_prompt_tokens"`
	Prices            Prices `json:"prices"`
}

// Model is one entry of the model table.
type Model struct {
	ID               string   `json:"id"`                          // API model id, e.g. claude-opus-5-5
	DisplayName      string   `json:"display_name,omitempty"`      // e.g. "Claude Opus 5.5"
	Aliases          []string `json:"aliases,omitempty"`           // short names resolving to this model, e.g. "opus"
	ContextWindow    int      `json:"context_window,omitempty"`    // input tokens; 0 = unknown
	MaxOutput        int      `json:"max_output,omitempty"`        // max_tokens ceiling; 0 = unknown
	AdaptiveThinking bool     `json:"adaptive_thinking,omitempty"` // true: no interleaved-thinking beta needed
	MinClaudeCode    string   `json:"min_claude_code,omitempty"`   // Claude Code version floor when known, e.g. "2.1.280"
	// Prices are the base list prices; Tiers override them for long
	// prompts (ascending). Derived names the price fields that are derived
	// rather than published (e.g. "cache_write_1h").
	Prices  Prices      `json:"prices"`
	Tiers   []PriceTier `json:"tiers,omitempty"`
	Derived []string    `json:"derived,omitempty"`
	// Listed is false for an id that is not in the table: Resolve returns
	// it as given, since the API may know models newer than this data.
	Listed bool `json:"listed"`
	// Retired models carry their retirement date (when known) and the
	// current model that replaces them.
	Retired     bool   `json:"retired,omitempty"`
	RetiredOn   string `json:"retired_on,omitempty"`
	Replacement string `json:"replacement,omitempty"`
}

// priced reports whether the model has prices.
func (m Model) priced() bool { return m.Prices != (Prices{}) }

// PricesFor returns the prices that apply to a request with a prompt of
// promptTokens (input + cache writes + cache reads).
func (m Model) PricesFor(promptTokens int64) Prices {
	p := m.Prices
	for _, t := range m.Tiers {
		if promptTokens > t.AbovePromptTokens {
			p = t.Prices
		}
	}
	return p
}

// RetiredModelError is the error Resolve returns for a retired model. It
// matches ErrRetiredModel with errors.Is.
type RetiredModelError struct {
	ID          string // the retired id as asked for
	RetiredOn   string // YYYY-MM-DD; "" when unknown
	Replacement string // current model id
	Alias       string // an alias of Replacement; "" when none
}

// Error reads e.g. "claude-sonnet-4-5 was retired on 2026-11-30; use
// claude-sonnet-5-5 (alias sonnet)".
func (e *RetiredModelError) Error() string {
	var b strings.Builder
	b.WriteString(e.ID)
	if e.RetiredOn != "" {
		b.WriteString(" was retired on " + e.RetiredOn)
	} else {
		b.WriteString(" is retired")
	}
	b.WriteString("; use " + e.Replacement)
	if e.Alias != "" {
		b.WriteString(" (alias " + e.Alias + ")")
	}
	return b.String()
}

// Unwrap returns ErrRetiredModel.
func (e *RetiredModelError) Unwrap() error { return ErrRetiredModel }

// Resolve looks a model up by id or alias (case-insensitive; the Model's ID
// is lower case; a dated id such as claude-haiku-4-5-20251001 finds its
// undated entry but keeps its date).
//
//   - A current model returns it with Listed true.
//   - A retired model returns its entry (Retired true, with prices when
//     known, so old usage still prices) and a *RetiredModelError wrapping
//     ErrRetiredModel that names the replacement.
//   - Any other non-empty name returns Model{ID: name} with Listed false and
//     no error: the API may know models newer than this table.
//
// An empty name is an error wrapping ErrInvalidParams.
func (s *Service) Resolve(name string) (Model, error) {
	given := strings.TrimSpace(name)
	key := strings.ToLower(given)
	if key == "" {
		return Model{}, fmt.Errorf("%w: model is empty", ErrInvalidParams)
	}
	if id, ok := s.d.Aliases[key]; ok {
		return s.current(id, id), nil
	}
	base := stripDate(key)
	for _, k := range []string{key, base} {
		if _, ok := s.d.Models[k]; ok {
			return s.current(k, key), nil
		}
	}
	for _, k := range []string{key, base} {
		if r, ok := s.d.Retired[k]; ok {
			return s.retired(key, r)
		}
	}
	// Globs ("claude-3-*"): the longest matching prefix wins.
	best := ""
	for k := range s.d.Retired {
		if p, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(key, p) && len(p) > len(best) {
			best = p
		}
	}
	if best != "" {
		return s.retired(key, s.d.Retired[best+"*"])
	}
	return Model{ID: given}, nil
}

// stripDate removes a trailing -YYYYMMDD.
func stripDate(id string) string {
	i := len(id) - 9
	if i <= 0 || id[i] != '-' {
		return id
	}
	for _, c := range id[i+1:] {
		if c < '0' || c > '9' {
			return id
		}
	}
	return id[:i]
}

// current builds the Model of the table entry key, with the given id.
func (s *Service) current(key, id string) Model {
	d := s.d.Models[key]
	return Model{
		ID: id, DisplayName: d.DisplayName, Aliases: s.aliasesOf(key),
		ContextWindow: d.ContextWindow, MaxOutput: d.MaxOutput,
		AdaptiveThinking: d.AdaptiveThinking, MinClaudeCode: d.MinClaudeCode,
		Prices: d.Prices, Tiers: append([]PriceTier(nil), d.Tiers...), Derived: append([]string(nil), d.Derived...),
		Listed: true,
	}
}

func (s *Service) retired(id string, r retiredData) (Model, error) {
	m := Model{ID: id, Listed: true, Retired: true, RetiredOn: r.RetiredOn, Replacement: r.Replacement}
	if r.Prices != nil {
		m.Prices = *r.Prices
	}
	e := &RetiredModelError{ID: id, RetiredOn: r.RetiredOn, Replacement: r.Replacement}
	if a := s.aliasesOf(r.Replacement); len(a) > 0 {
		e.Alias = a[0]
	}
	return m, e
}

// aliasesOf returns the aliases of model id, sorted.
func (s *Service) aliasesOf(id string) []string {
	var out []string
	for a, target := range s.d.Aliases {
		if target == id {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// Models returns the current models with their aliases, ordered by id
// descending (families together, newest first).
func (s *Service) Models() []Model {
	out := make([]Model, 0, len(s.d.Models))
	for id := range s.d.Models {
		out = append(out, s.current(id, id))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out
}
