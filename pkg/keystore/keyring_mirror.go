package keystore

// The keyring mirror: one item per pooled key plus an index item, kept in
// step with key-rotation.json by every pool write (Store.mirror), checked and
// repaired by SyncKeyring, and read back by RestoreFromKeyring.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
)

const indexItem = "index"

func itemName(fp string) string { return "key:" + fp }

type keyringItem struct {
	Token   string `json:"token"`
	Refresh string `json:"refresh,omitempty"`
	Expires int64  `json:"expires,omitempty"`
	Label   string `json:"label,omitempty"`
}

func (p *Pool) item(i int) string {
	st := p.States[Fingerprint(p.Keys[i])]
	if st == nil {
		st = &KeyState{}
	}
	b, _ := json.Marshal(keyringItem{Token: p.Keys[i], Refresh: st.Refresh, Expires: st.Expires, Label: st.Label})
	return string(b)
}

func (p *Pool) hasFingerprint(fp string) bool {
	return slices.ContainsFunc(p.Keys, func(k string) bool { return Fingerprint(k) == fp })
}

func (p *Pool) index() string {
	fps := make([]string, len(p.Keys))
	for i, k := range p.Keys {
		fps[i] = Fingerprint(k)
	}
	b, _ := json.Marshal(fps)
	return string(b)
}

// keyring returns the keyring to use, or nil when it is off or was given up on
// (ModeAuto). explicit commands (sync, restore) and ModeOn get an error instead.
func (s *Store) keyring(explicit bool) (Keyring, error) {
	if s.mode == ModeOff {
		if explicit {
			return nil, fmt.Errorf("keyring is off: %w", ErrKeyringUnavailable)
		}
		return nil, nil
	}
	s.mu.Lock()
	down := s.krDown
	warnBus := s.noBus && !s.busWarned && s.mode == ModeAuto && !explicit
	if warnBus {
		s.busWarned = true
	}
	s.mu.Unlock()
	if down != "" {
		if explicit || s.mode == ModeOn {
			return nil, fmt.Errorf("%w: %s", ErrKeyringUnavailable, down)
		}
		if warnBus {
			s.warnNoBus()
		}
		return nil, nil
	}
	return s.kr, nil
}

// failed records a keyring error. Unavailability in ModeAuto warns once,
// disables the keyring and returns nil unless explicit; everything else is
// returned as is.
func (s *Store) failed(err error, explicit bool) error {
	if err == nil || !errors.Is(err, ErrKeyringUnavailable) {
		return err
	}
	s.mu.Lock()
	first := s.krDown == ""
	if first {
		s.krDown = err.Error()
	}
	s.mu.Unlock()
	if s.mode == ModeAuto && first {
		fmt.Fprintf(s.warn, "piauth: warning: OS keyring unavailable (%v); using files only\n", err)
	}
	if s.mode == ModeAuto && !explicit {
		return nil
	}
	return err
}

// mirror writes the difference between old and p into the keyring.
func (s *Store) mirror(old, p *Pool) error {
	kr, err := s.keyring(false)
	if kr == nil {
		return err
	}
	oldItems := map[string]string{}
	for i, k := range old.Keys {
		oldItems[Fingerprint(k)] = old.item(i)
	}
	for i, k := range p.Keys {
		fp := Fingerprint(k)
		item := p.item(i)
		if oldItems[fp] == item {
			continue
		}
		if err := kr.Set(itemName(fp), item); err != nil {
			return s.failed(err, false)
		}
	}
	if old.index() != p.index() {
		if err := kr.Set(indexItem, p.index()); err != nil {
			return s.failed(err, false)
		}
	}
	for fp := range oldItems {
		if p.hasFingerprint(fp) {
			continue
		}
		if err := kr.Delete(itemName(fp)); err != nil && !errors.Is(err, ErrNotFound) {
			return s.failed(err, false)
		}
	}
	return nil
}

// InKeyring reports whether the keyring holds the item for fingerprint fp.
func (s *Store) InKeyring(fp string) bool {
	kr, _ := s.keyring(false)
	if kr == nil {
		return false
	}
	_, err := kr.Get(itemName(fp))
	if err != nil {
		_ = s.failed(err, false)
		return false
	}
	return true
}

func readIndex(kr Keyring) ([]string, error) {
	v, err := kr.Get(indexItem)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var fps []string
	if json.Unmarshal([]byte(v), &fps) != nil {
		return nil, nil // a garbled index is rebuilt
	}
	return fps, nil
}

// ErrPoolGone means key-rotation.json is missing or holds no keys while the
// keyring still mirrors keys: SyncKeyring removes nothing then (the keyring is
// the backup `piauth key restore` rebuilds the file from). Carried by
// *PoolGoneError.
var ErrPoolGone = errors.New("key-rotation.json is missing or empty")

// PoolGoneError is SyncKeyring's refusal to empty the keyring.
type PoolGoneError struct {
	Path      string
	Missing   bool // the file does not exist (else it holds no keys)
	InKeyring int  // keys the keyring's index still lists
}

func (e *PoolGoneError) Error() string {
	what := "holds no keys"
	if e.Missing {
		what = "does not exist"
	}
	return fmt.Sprintf("%s %s but the keyring still holds %d %s; nothing was removed from the keyring",
		e.Path, what, e.InKeyring, plural(e.InKeyring, "key", "keys"))
}

// Is makes errors.Is(err, ErrPoolGone) true.
func (e *PoolGoneError) Is(target error) bool { return target == ErrPoolGone }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// SyncKeyring makes the keyring match key-rotation.json (hand edits included):
// it writes missing or outdated items, deletes items of keys no longer pooled
// and rewrites the index. A missing or empty file is never taken to mean
// "delete everything": when the keyring still lists keys, SyncKeyring changes
// nothing and returns a *PoolGoneError (errors.Is ErrPoolGone).
func (s *Store) SyncKeyring(ctx context.Context) (added, removed int, err error) {
	kr, err := s.keyring(true)
	if err != nil {
		return 0, 0, err
	}
	unlock, err := s.lock(ctx, s.PoolPath())
	if err != nil {
		return 0, 0, err
	}
	defer unlock()
	p, raw, err := s.readPool()
	if err != nil {
		return 0, 0, err
	}
	fps, err := readIndex(kr)
	if err != nil {
		return 0, 0, s.failed(err, true)
	}
	if len(p.Keys) == 0 {
		if len(fps) > 0 {
			return 0, 0, &PoolGoneError{Path: s.PoolPath(), Missing: raw == nil, InKeyring: len(fps)}
		}
		return 0, 0, nil // nothing on either side
	}
	for i, k := range p.Keys {
		item := p.item(i)
		got, err := kr.Get(itemName(Fingerprint(k)))
		if err != nil && !errors.Is(err, ErrNotFound) {
			return added, removed, s.failed(err, true)
		}
		if got == item {
			continue
		}
		if err := kr.Set(itemName(Fingerprint(k)), item); err != nil {
			return added, removed, s.failed(err, true)
		}
		added++
	}
	want := p.index()
	for _, fp := range fps {
		if p.hasFingerprint(fp) {
			continue
		}
		err := kr.Delete(itemName(fp))
		if err != nil && !errors.Is(err, ErrNotFound) {
			return added, removed, s.failed(err, true)
		}
		if err == nil {
			removed++
		}
	}
	if cur, _ := json.Marshal(fps); string(cur) != want || fps == nil {
		if err := kr.Set(indexItem, want); err != nil {
			return added, removed, s.failed(err, true)
		}
	}
	return added, removed, nil
}

// RestoreFromKeyring rebuilds key-rotation.json from the keyring's index and
// items. A malformed file is kept as PATH.corrupt-<UTC time>; a valid file that
// still holds keys is never overwritten.
func (s *Store) RestoreFromKeyring(ctx context.Context) (*Pool, error) {
	kr, err := s.keyring(true)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lock(ctx, s.PoolPath())
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, _, readErr := s.readPool()
	if readErr == nil && len(cur.Keys) > 0 {
		return nil, fmt.Errorf("%s holds %d keys; refusing to overwrite it (remove it first)", s.PoolPath(), len(cur.Keys))
	}
	if readErr != nil && !errors.Is(readErr, ErrMalformed) {
		return nil, readErr
	}
	fps, err := readIndex(kr)
	if err != nil {
		return nil, s.failed(err, true)
	}
	if len(fps) == 0 {
		return nil, fmt.Errorf("keyring has no piauth key index: %w", ErrNotFound)
	}
	p := &Pool{States: map[string]*KeyState{}}
	if cur != nil {
		p = cur // keep unknown fields of an empty but valid file
	}
	for _, fp := range fps {
		v, err := kr.Get(itemName(fp))
		if errors.Is(err, ErrNotFound) {
			fmt.Fprintf(s.warn, "piauth: warning: keyring item %s is missing; skipped\n", itemName(fp))
			continue
		}
		if err != nil {
			return nil, s.failed(err, true)
		}
		var it keyringItem
		if json.Unmarshal([]byte(v), &it) != nil || Fingerprint(it.Token) != fp {
			fmt.Fprintf(s.warn, "piauth: warning: keyring item %s is garbled; skipped\n", itemName(fp))
			continue
		}
		p.Add(it.Token, KeyState{Label: it.Label, Refresh: it.Refresh, Expires: it.Expires})
	}
	if len(p.Keys) == 0 {
		return nil, fmt.Errorf("keyring index lists no readable key: %w", ErrNotFound)
	}
	if readErr != nil {
		corrupt := s.PoolPath() + ".corrupt-" + s.now().UTC().Format("20060102T150405Z")
		if err := os.Rename(s.PoolPath(), corrupt); err != nil {
			return nil, fmt.Errorf("keep corrupt %s: %w", s.PoolPath(), err)
		}
		fmt.Fprintf(s.warn, "piauth: kept the malformed file as %s\n", corrupt)
	}
	out, err := p.marshal()
	if err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(s.PoolPath(), out, 0o600); err != nil {
		return nil, err
	}
	return p, nil
}

// KeyringState describes the keyring for `status`: "off", "on (secret
// service)" (or the platform's store), or "unavailable: REASON". It probes the
// keyring once when it has not been used yet.
func (s *Store) KeyringState() string {
	if s.mode == ModeOff {
		return "off"
	}
	kr, _ := s.keyring(false)
	if kr == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return "unavailable: " + s.krDown
	}
	if _, err := kr.Get(indexItem); err != nil && !errors.Is(err, ErrNotFound) {
		_ = s.failed(err, false)
		return "unavailable: " + err.Error()
	}
	if _, ok := kr.(*osKeyring); !ok {
		return "on"
	}
	switch runtime.GOOS {
	case "darwin":
		return "on (macOS keychain)"
	case "windows":
		return "on (credential manager)"
	}
	return "on (secret service)"
}
