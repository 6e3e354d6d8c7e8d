package emulator

import (
	"encoding/json"
	"net/http"
	"strings"

	"golang.org/x/mod/semver"
)

// errVersionTooOld is the error_code of the Claude Code version gate.
const errVersionTooOld = "claude_code_version_too_old"

// claudeCodeVersion extracts <v> from "claude-cli/<v> (…)". shown is what
// the version gate's message names ("unknown" without the prefix); ok is
// false when the version is missing or not a version.
func claudeCodeVersion(ua string) (shown string, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(ua), "claude-cli/")
	if !found {
		return "unknown", false
	}
	v, _, _ := strings.Cut(rest, " ")
	if v == "" {
		return "unknown", false
	}
	return v, semver.IsValid("v" + v)
}

// hasIdentity reports whether system starts with an accepted identity:
// exactly the identity text (as a string or a first text block), or a
// billing-attestation text block followed by the identity block.
func (r *rules) hasIdentity(system json.RawMessage) bool {
	var s string
	if json.Unmarshal(system, &s) == nil {
		return s == r.IdentityText
	}
	bs := blocks(system)
	text := func(i int) (string, bool) {
		if i >= len(bs) || bs[i].Type != "text" {
			return "", false
		}
		return bs[i].Text, true
	}
	first, ok := text(0)
	if !ok {
		return false
	}
	if first == r.IdentityText {
		return true
	}
	second, ok := text(1)
	return ok && strings.HasPrefix(first, r.BillingHeaderPrefix) && second == r.IdentityText
}

// oauthGates applies the rules only OAuth requests meet, in order: the
// Claude Code version floor of the model, the identity (a fake 429 for the
// gated families) and the third-party tool classifier. Each refusal is
// counted in Stats.
func (e *Emulator) oauthGates(r *http.Request, req *messagesRequest, m *Model) *failure {
	rs := e.rules
	if floor := rs.VersionFloors[m.ID]; floor != "" {
		sent, ok := claudeCodeVersion(r.Header.Get("User-Agent"))
		if !ok || semver.Compare("v"+sent, "v"+floor) < 0 {
			e.bump(&e.stats.VersionRefused)
			f := invalid(fill(rs.Messages.VersionTooOld, "{sent}", sent, "{floor}", floor))
			f.code = errVersionTooOld
			return f
		}
	}
	if rs.gated(*m) && !rs.hasIdentity(req.System) {
		e.bump(&e.stats.IdentityRefused)
		// The real answer carries no retry-after and no rate-limit headers.
		return &failure{status: http.StatusTooManyRequests, typ: "rate_limit_error", msg: rs.Messages.IdentityRefused}
	}
	for _, t := range req.Tools {
		if t.custom() && rs.thirdParty(t.Name) {
			e.bump(&e.stats.ThirdPartyRefused)
			return invalid(rs.Messages.ThirdParty)
		}
	}
	return nil
}

// bump increments one of e.stats' counters.
func (e *Emulator) bump(counter *int64) {
	e.mu.Lock()
	*counter++
	e.mu.Unlock()
}
