package keystore

import (
	"encoding/json"
	"fmt"
)

// Field returns the raw JSON of a field of the auth.json entry that Credential
// does not model (nil when absent). pi drops such fields when it rewrites the
// entry, so they are hints, never the only copy of anything that matters.
func (c *Credential) Field(name string) json.RawMessage {
	return c.extra[name]
}

// SetField sets a field Credential does not model to v (JSON-encoded); a nil v
// removes it. Modelled fields (type, access, refresh, expires, key) cannot be
// set this way.
func (c *Credential) SetField(name string, v any) error {
	switch name {
	case "type", "access", "refresh", "expires", "key":
		return fmt.Errorf("credential field %q is modelled; set it directly", name)
	}
	if v == nil {
		delete(c.extra, name)
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if c.extra == nil {
		c.extra = map[string]json.RawMessage{}
	}
	c.extra[name] = b
	return nil
}
