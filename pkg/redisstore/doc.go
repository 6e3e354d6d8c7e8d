package redisstore

import (
	"encoding/json"
	"fmt"

	"github.com/piauth/piauth/pkg/keystore"
)

// The pool in Redis is key-rotation.json's document (keystore.Pool.Encode)
// with its secrets sealed: "keys" becomes a list of {"fp", "token"} where
// fp is the key's fingerprint in clear and token the sealed key, and each
// state's "refresh" holds the sealed refresh token. Everything else (active,
// rotated, cooldowns, needs-reauth, utilisation, unknown fields) is kept in
// clear, so `redis-cli get` shows the state but no secret.

type sealedKey struct {
	FP    string `json:"fp"`
	Token string `json:"token"`
}

// sealPool turns key-rotation.json's bytes into the stored document.
func sealPool(clear []byte, s *sealer) ([]byte, error) {
	top, pa, states, err := splitDoc(clear)
	if err != nil {
		return nil, err
	}
	var keys []string
	if err := json.Unmarshal(top["keys"], &keys); err != nil {
		return nil, fmt.Errorf("seal pool: %w", err)
	}
	sk := make([]sealedKey, len(keys))
	for i, k := range keys {
		fp := keystore.Fingerprint(k)
		tok, err := s.seal(k, "token:"+fp)
		if err != nil {
			return nil, err
		}
		sk[i] = sealedKey{FP: fp, Token: tok}
	}
	err = mapRefresh(states, func(fp, v string) (string, error) { return s.seal(v, "refresh:"+fp) })
	if err != nil {
		return nil, err
	}
	return joinDoc(top, pa, states, sk)
}

// openPool turns the stored document back into key-rotation.json's bytes.
// A secret that does not open wraps keystore.ErrWrongStoreKey.
func openPool(stored []byte, s *sealer) ([]byte, error) {
	top, pa, states, err := splitDoc(stored)
	if err != nil {
		return nil, err
	}
	var sk []sealedKey
	if err := json.Unmarshal(top["keys"], &sk); err != nil {
		return nil, fmt.Errorf("stored pool: \"keys\": %w", err)
	}
	keys := make([]string, len(sk))
	for i, k := range sk {
		tok, err := s.open(k.Token, "token:"+k.FP)
		if err != nil {
			return nil, err
		}
		if keystore.Fingerprint(tok) != k.FP {
			return nil, fmt.Errorf("stored pool: key %d does not match its fingerprint %s", i+1, k.FP)
		}
		keys[i] = tok
	}
	err = mapRefresh(states, func(fp, v string) (string, error) { return s.open(v, "refresh:"+fp) })
	if err != nil {
		return nil, err
	}
	return joinDoc(top, pa, states, keys)
}

// splitDoc decodes the top level, "piauth" and its "states".
func splitDoc(data []byte) (top, pa map[string]json.RawMessage, states map[string]map[string]json.RawMessage, err error) {
	if err := json.Unmarshal(data, &top); err != nil || top == nil {
		return nil, nil, nil, fmt.Errorf("stored pool: not a JSON object: %v", err)
	}
	if raw, ok := top["piauth"]; ok {
		if err := json.Unmarshal(raw, &pa); err != nil {
			return nil, nil, nil, fmt.Errorf("stored pool: \"piauth\": %w", err)
		}
	}
	if raw, ok := pa["states"]; ok {
		if err := json.Unmarshal(raw, &states); err != nil {
			return nil, nil, nil, fmt.Errorf("stored pool: \"piauth.states\": %w", err)
		}
	}
	return top, pa, states, nil
}

func joinDoc(top, pa map[string]json.RawMessage, states map[string]map[string]json.RawMessage, keys any) ([]byte, error) {
	var err error
	if top["keys"], err = json.Marshal(keys); err != nil {
		return nil, err
	}
	if pa != nil {
		if states != nil {
			if pa["states"], err = json.Marshal(states); err != nil {
				return nil, err
			}
		}
		if top["piauth"], err = json.Marshal(pa); err != nil {
			return nil, err
		}
	}
	return json.Marshal(top)
}

// mapRefresh replaces every state's "refresh" string by f(fp, value).
func mapRefresh(states map[string]map[string]json.RawMessage, f func(fp, v string) (string, error)) error {
	for fp, st := range states {
		raw, ok := st["refresh"]
		if !ok {
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("stored pool: state %s: \"refresh\": %w", fp, err)
		}
		out, err := f(fp, v)
		if err != nil {
			return err
		}
		st["refresh"], _ = json.Marshal(out)
	}
	return nil
}
