package keystore

import (
	"encoding/json"
	"time"
)

// authProvider is this package's entry in auth.json.
const authProvider = "anthropic"

// Credential is the "anthropic" entry of auth.json. Unknown fields of the entry
// are preserved on rewrite.
type Credential struct {
	Type    string // "oauth" or "api_key"
	Access  string // oauth access token
	Refresh string // oauth refresh token
	Expires int64  // epoch ms (already minus the 5-minute margin, pi's convention)
	Key     string // api_key

	extra map[string]json.RawMessage
}

// Token returns the bearer secret: Access for OAuth, Key for an API key.
func (c *Credential) Token() string {
	if c.Type == "api_key" {
		return c.Key
	}
	if c.Access != "" {
		return c.Access
	}
	return c.Key
}

// Expired reports whether an OAuth credential is at or past its expiry (an
// unknown, zero expiry counts as valid: ExpiredAt).
func (c *Credential) Expired(now time.Time) bool {
	return c.Type == "oauth" && ExpiredAt(c.Expires, now)
}

func parseCredential(d *doc, raw json.RawMessage) (*Credential, error) {
	const ptr = "/" + authProvider
	m, err := d.object(ptr, raw)
	if err != nil {
		return nil, err
	}
	c := &Credential{extra: map[string]json.RawMessage{}}
	fields := map[string]any{"type": &c.Type, "access": &c.Access, "refresh": &c.Refresh, "key": &c.Key, "expires": &c.Expires}
	for k, v := range m {
		dst, known := fields[k]
		if !known {
			c.extra[k] = v
			continue
		}
		want := "a string"
		if k == "expires" {
			want = "an integer (epoch milliseconds)"
		}
		if string(v) == "null" {
			continue
		}
		if err := d.decode(ptr+"/"+k, v, dst, want); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Credential) marshal() (json.RawMessage, error) {
	m := make(map[string]json.RawMessage, len(c.extra)+5)
	for k, v := range c.extra {
		m[k] = v
	}
	put := func(k string, v any, present bool) {
		if present {
			b, _ := json.Marshal(v)
			m[k] = b
		} else {
			delete(m, k)
		}
	}
	put("type", c.Type, c.Type != "")
	put("access", c.Access, c.Access != "")
	put("refresh", c.Refresh, c.Refresh != "")
	put("expires", c.Expires, c.Expires != 0)
	put("key", c.Key, c.Key != "")
	return json.Marshal(m)
}
