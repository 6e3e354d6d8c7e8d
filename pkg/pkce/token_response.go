package pkce

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/piauth/piauth/internal/secret"
)

// parseTokenResponse reads a 2xx token answer field by field, so that one odd field
// (a float or string expires_in, a wrong-typed account) never costs the tokens: the
// server has already rotated the refresh token when it answers. A body that is not
// JSON at all is searched for the token fields. Without an access token it returns
// the partial Token (when it holds a refresh token) and an error wrapping
// ErrIncompleteToken.
func parseTokenResponse(status int, data []byte) (*Token, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil || top == nil {
		top = salvageFields(data)
	}
	tok := &Token{
		AccessToken:  jsonString(top["access_token"]),
		RefreshToken: jsonString(top["refresh_token"]),
		ExpiresIn:    clampExpiresIn(jsonSeconds(top["expires_in"])),
	}
	var acct struct {
		UUID         any `json:"uuid"`
		EmailAddress any `json:"email_address"`
	}
	if raw, ok := top["account"]; ok && json.Unmarshal(raw, &acct) == nil {
		uuid, _ := acct.UUID.(string)
		email, _ := acct.EmailAddress.(string)
		if uuid != "" || email != "" {
			tok.Account = &Account{UUID: uuid, Email: email}
		}
	}
	if tok.AccessToken == "" {
		err := fmt.Errorf("%w: token response (HTTP %d) has no access_token", ErrIncompleteToken, status)
		if tok.RefreshToken == "" {
			return nil, err
		}
		return tok, err
	}
	return tok, nil
}

// jsonString is raw as a string, "" when absent or not a non-empty string.
func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

// jsonSeconds reads a lifetime given as a JSON number (integer or not) or a numeric
// string; 0 when absent, unreadable or not finite.
func jsonSeconds(raw json.RawMessage) int {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return 0
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case string:
		p, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0
		}
		f = p
	default:
		return 0
	}
	switch {
	case math.IsNaN(f) || f <= 0:
		return 0
	case f > MaxExpiresIn:
		return MaxExpiresIn
	}
	return int(math.Ceil(f))
}

var salvageRE = regexp.MustCompile(`"(access_token|refresh_token|expires_in)"\s*:\s*("(?:[^"\\]|\\.)*"|-?[0-9.eE+-]+)`)

// salvageFields finds the token fields in a body that does not parse (truncated, or
// with junk around it).
func salvageFields(data []byte) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, m := range salvageRE.FindAllSubmatch(data, -1) {
		if _, seen := out[string(m[1])]; !seen {
			out[string(m[1])] = json.RawMessage(m[2])
		}
	}
	return out
}

// parseTokenError reads an OAuth ({"error","error_description"}) or Anthropic
// ({"error":{"type","message"}}) error body.
func parseTokenError(status int, data []byte) *TokenError {
	e := &TokenError{Status: status}
	var body struct {
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	if json.Unmarshal(data, &body) == nil && len(body.Error) > 0 {
		var code string
		var obj struct{ Type, Message string }
		switch {
		case json.Unmarshal(body.Error, &code) == nil:
			e.Code, e.Description = code, body.ErrorDescription
		case json.Unmarshal(body.Error, &obj) == nil:
			e.Code, e.Description = obj.Type, obj.Message
		}
	}
	if e.Code == "" && e.Description == "" {
		e.Description = http.StatusText(status)
	}
	e.Code = secret.MaskAll(e.Code)
	e.Description = secret.MaskAll(e.Description)
	return e
}
