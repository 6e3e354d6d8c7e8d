package keystore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Options configures Open.
type Options struct {
	Dir     string      // agent dir; "" → ResolveDir("")
	Mode    KeyringMode // ModeAuto, ModeOn or ModeOff
	Keyring Keyring     // nil → NewOSKeyring(Service, DefaultKeyringTimeout)
	Service string      // keyring service; "" → KeyringService
	Warn    io.Writer   // one-line warnings (mode fixes, keyring fallback); nil → discarded
	Now     func() time.Time
}

// Store is piauth's view of the agent directory and the keyring mirror. It is
// safe for concurrent use; cross-process safety comes from the file locks.
type Store struct {
	dir      string
	mode     KeyringMode
	kr       Keyring
	warn     io.Writer
	now      func() time.Time
	lockOpts LockOptions

	mu     sync.Mutex
	krDown string // reason the keyring was given up on ("" = usable)
}

// Open returns a Store for opts.Dir. It touches neither files nor the keyring.
func Open(opts Options) (*Store, error) {
	dir := opts.Dir
	if dir == "" {
		d, err := ResolveDir("")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	s := &Store{dir: dir, mode: opts.Mode, kr: opts.Keyring, warn: opts.Warn, now: opts.Now}
	if s.warn == nil {
		s.warn = io.Discard
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.kr == nil && s.mode != ModeOff {
		svc := opts.Service
		if svc == "" {
			svc = KeyringService
		}
		s.kr = NewOSKeyring(svc, DefaultKeyringTimeout)
	}
	return s, nil
}

// Dir is the agent directory.
func (s *Store) Dir() string { return s.dir }

// AuthPath is the path of auth.json.
func (s *Store) AuthPath() string { return filepath.Join(s.dir, AuthFileName) }

// PoolPath is the path of key-rotation.json.
func (s *Store) PoolPath() string { return filepath.Join(s.dir, PoolFileName) }

func (s *Store) fixMode(path string, perm fs.FileMode) {
	fmt.Fprintf(s.warn, "piauth: warning: %s: mode %04o, fixing to 0600\n", path, perm)
	if err := os.Chmod(path, 0o600); err != nil {
		fmt.Fprintf(s.warn, "piauth: warning: %s: %v\n", path, err)
	}
}

// ---- auth.json ----

// readAuth returns auth.json's members, the anthropic entry (nil if absent) and
// the raw bytes (nil if the file is missing).
func (s *Store) readAuth() (map[string]json.RawMessage, *Credential, []byte, error) {
	path := s.AuthPath()
	data, err := readFile(path, s.fixMode)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]json.RawMessage{}, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	d, err := parseDoc(path, data)
	if err != nil {
		return nil, nil, nil, err
	}
	top, err := d.object("", data)
	if err != nil {
		return nil, nil, nil, err
	}
	raw, ok := top[authProvider]
	if !ok {
		return top, nil, data, nil
	}
	c, err := parseCredential(d, raw)
	if err != nil {
		return nil, nil, nil, err
	}
	return top, c, data, nil
}

// Auth returns the anthropic entry of auth.json; ErrNotFound when there is no
// file or no entry.
func (s *Store) Auth() (*Credential, error) {
	_, c, _, err := s.readAuth()
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("%s: no %q entry: %w", s.AuthPath(), authProvider, ErrNotFound)
	}
	return c, nil
}

// UpdateAuth changes the anthropic entry under pi's auth.json.lock: it re-reads
// the file, calls fn with the current entry (nil if none) and writes fn's
// result; a nil result deletes the entry. Other providers are kept as they are.
func (s *Store) UpdateAuth(ctx context.Context, fn func(cur *Credential) (*Credential, error)) error {
	unlock, err := Lock(ctx, s.AuthPath(), s.lockOpts)
	if err != nil {
		return err
	}
	defer unlock()
	top, cur, raw, err := s.readAuth()
	if err != nil {
		return err
	}
	next, err := fn(cur)
	if err != nil {
		return err
	}
	return s.writeAuth(top, cur, next, raw)
}

func (s *Store) writeAuth(top map[string]json.RawMessage, cur, next *Credential, raw []byte) error {
	if next == nil {
		if _, ok := top[authProvider]; !ok {
			return nil
		}
		delete(top, authProvider)
	} else {
		if next.extra == nil && cur != nil {
			next.extra = cur.extra
		}
		b, err := next.marshal()
		if err != nil {
			return fmt.Errorf("encode %s: %w", s.AuthPath(), err)
		}
		if sameJSON(top[authProvider], b) {
			return nil // unchanged: leave pi's file (and its key order) alone
		}
		top[authProvider] = b
	}
	out, err := marshalObject(top)
	if err != nil {
		return fmt.Errorf("encode %s: %w", s.AuthPath(), err)
	}
	if bytes.Equal(out, raw) {
		return nil
	}
	return WriteFileAtomic(s.AuthPath(), out, 0o600)
}

func sameJSON(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return false
	}
	var va, vb any
	return json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil && reflect.DeepEqual(va, vb)
}

// ---- key-rotation.json ----

func (s *Store) readPool() (*Pool, []byte, error) {
	path := s.PoolPath()
	data, err := readFile(path, s.fixMode)
	if errors.Is(err, fs.ErrNotExist) {
		return &Pool{States: map[string]*KeyState{}}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	p, err := parsePool(path, data)
	if err != nil {
		return nil, nil, err
	}
	return p, data, nil
}

// Pool reads key-rotation.json; a missing file is an empty pool.
func (s *Store) Pool() (*Pool, error) {
	p, _, err := s.readPool()
	return p, err
}

// UpdatePool runs fn on the pool under key-rotation.json.lock (re-read, fn,
// atomic write), then mirrors the change into the keyring while still holding
// the lock. Nothing is written when the file is malformed or fn fails.
func (s *Store) UpdatePool(ctx context.Context, fn func(p *Pool) error) (*Pool, error) {
	unlock, err := Lock(ctx, s.PoolPath(), s.lockOpts)
	if err != nil {
		return nil, err
	}
	defer unlock()
	p, raw, err := s.readPool()
	if err != nil {
		return nil, err
	}
	old := p.clone()
	if err := fn(p); err != nil {
		return nil, err
	}
	return p, s.writePool(old, p, raw)
}

func (s *Store) writePool(old, p *Pool, raw []byte) error {
	out, err := p.marshal()
	if err != nil {
		return fmt.Errorf("encode %s: %w", s.PoolPath(), err)
	}
	if !bytes.Equal(out, raw) && (raw != nil || len(p.Keys) > 0) {
		if err := WriteFileAtomic(s.PoolPath(), out, 0o600); err != nil {
			return err
		}
	}
	return s.mirror(old, p)
}

// UpdateBoth runs fn on auth.json's anthropic entry and the pool together,
// taking auth.json.lock then key-rotation.json.lock. auth.json.lock is released
// as soon as auth.json is written (pi gives up on a busy lock after ~200 ms).
func (s *Store) UpdateBoth(ctx context.Context, fn func(auth **Credential, p *Pool) error) (*Pool, error) {
	unlockAuth, err := Lock(ctx, s.AuthPath(), s.lockOpts)
	if err != nil {
		return nil, err
	}
	defer unlockAuth()
	unlockPool, err := Lock(ctx, s.PoolPath(), s.lockOpts)
	if err != nil {
		return nil, err
	}
	defer unlockPool()
	top, cur, rawAuth, err := s.readAuth()
	if err != nil {
		return nil, err
	}
	p, rawPool, err := s.readPool()
	if err != nil {
		return nil, err
	}
	old := p.clone()
	next := cur
	if err := fn(&next, p); err != nil {
		return nil, err
	}
	if err := s.writeAuth(top, cur, next, rawAuth); err != nil {
		return nil, err
	}
	if err := unlockAuth(); err != nil {
		return nil, err
	}
	return p, s.writePool(old, p, rawPool)
}

// ---- keyring mirror ----

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
	s.mu.Unlock()
	if down != "" {
		if explicit || s.mode == ModeOn {
			return nil, fmt.Errorf("%w: %s", ErrKeyringUnavailable, down)
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

// SyncKeyring makes the keyring match key-rotation.json (hand edits included):
// it writes missing or outdated items, deletes items of keys no longer pooled
// and rewrites the index.
func (s *Store) SyncKeyring(ctx context.Context) (added, removed int, err error) {
	kr, err := s.keyring(true)
	if err != nil {
		return 0, 0, err
	}
	unlock, err := Lock(ctx, s.PoolPath(), s.lockOpts)
	if err != nil {
		return 0, 0, err
	}
	defer unlock()
	p, _, err := s.readPool()
	if err != nil {
		return 0, 0, err
	}
	fps, err := readIndex(kr)
	if err != nil {
		return 0, 0, s.failed(err, true)
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
	unlock, err := Lock(ctx, s.PoolPath(), s.lockOpts)
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
