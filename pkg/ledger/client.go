package ledger

import "strings"

// maxClientLen bounds a stored client family.
const maxClientLen = 40

// ClientFamily is the family of a user-agent, the ledger's client column:
// its first product, without a version, lowercased — "claude-cli/2.1.3
// (external, cli)" → "claude-cli", "curl/8.5.0" → "curl", "Anthropic/Python
// 0.49.0" → "anthropic/python". An empty user-agent is "unknown".
func ClientFamily(ua string) string {
	tok, _, _ := strings.Cut(strings.TrimSpace(ua), " ")
	if name, ver, ok := strings.Cut(tok, "/"); ok && (ver == "" || ver[0] >= '0' && ver[0] <= '9' || ver[0] == 'v') {
		tok = name
	}
	var b strings.Builder
	for _, c := range strings.ToLower(tok) {
		if b.Len() >= maxClientLen {
			break
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._/-", c) {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}
