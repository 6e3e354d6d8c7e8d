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
	"sync"
	"time"
)

// Options configures Open.
type Options struct {
	Dir     string      // agent dir (required: the caller resolves it, see ResolveDir)
	Mode    KeyringMode // ModeAuto, ModeOn or ModeOff
	Keyring Keyring     // nil → NewOSKeyring(Service, DefaultKeyringTimeout)
	Service string      // keyring service; "" → KeyringService
	Warn    io.Writer   // one-line warnings (mode fixes, keyring fallback); nil → discarded
	Now     func() time.Time
	// Getenv is the caller's environment (os.Getenv in the CLI, a map in tests).
	// With it, Open finds out whether a D-Bus session bus exists without asking
	// go-keyring (which would start one): with no bus the OS keyring counts as
	// unavailable, and ModeAuto warns once per shell session. nil skips that
	// check (go-keyring decides, and may start a bus).
	Getenv func(string) string
	// Backend, when set, keeps the pool and its state (pkg/redisstore);
	// nil keeps them in key-rotation.json.
	Backend PoolBackend
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
	backend  PoolBackend // nil: key-rotation.json

	getenv func(string) string // never nil

	auth authMemo // auth.json's entry as last parsed (Auth)

	mu        sync.Mutex
	krDown    string // reason the keyring was given up on ("" = usable)
	noBus     bool   // krDown because there is no session bus (warned per session)
	busWarned bool
}

// Open returns a Store for opts.Dir. It touches neither files nor the keyring
// (it only looks for a D-Bus session bus socket, see Options.Getenv).
func Open(opts Options) (*Store, error) {
	dir := opts.Dir
	if dir == "" {
		return nil, errors.New("keystore: no agent dir given")
	}
	s := &Store{dir: dir, mode: opts.Mode, kr: opts.Keyring, warn: opts.Warn, now: opts.Now, backend: opts.Backend}
	if s.warn == nil {
		s.warn = io.Discard
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.getenv = opts.Getenv
	if s.getenv == nil {
		s.getenv = func(string) string { return "" }
	}
	if s.kr == nil && s.mode != ModeOff && opts.Getenv != nil {
		if why := noSessionBus(opts.Getenv); why != "" {
			s.krDown, s.noBus = why, true
		}
	}
	if s.kr == nil && s.mode != ModeOff && !s.noBus {
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

// lock takes target's lock after checking that the agent dir can be trusted.
func (s *Store) lock(ctx context.Context, target string) (func() error, error) {
	if err := s.checkDir(); err != nil {
		return nil, err
	}
	return Lock(ctx, target, s.lockOpts)
}

// ---- auth.json ----

// readAuth returns auth.json's members, the anthropic entry (nil if absent) and
// the raw bytes (nil if the file is missing).
func (s *Store) readAuth() (map[string]json.RawMessage, *Credential, []byte, error) {
	if err := s.checkDir(); err != nil {
		return nil, nil, nil, err
	}
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
// file or no entry. The file is looked at on every call and parsed again
// only when it changed (authMemo).
func (s *Store) Auth() (*Credential, error) {
	if err := s.checkDir(); err != nil {
		return nil, err
	}
	fi, statErr := os.Lstat(s.AuthPath())
	if statErr == nil {
		if c, ok := s.auth.get(fi); ok {
			return c, nil
		}
	}
	_, c, _, err := s.readAuth()
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("%s: no %q entry: %w", s.AuthPath(), authProvider, ErrNotFound)
	}
	if statErr == nil {
		s.auth.put(fi, c)
	}
	return c, nil
}

// UpdateAuth changes the anthropic entry under pi's auth.json.lock: it re-reads
// the file, calls fn with the current entry (nil if none) and writes fn's
// result; a nil result deletes the entry. Other providers are kept as they are.
func (s *Store) UpdateAuth(ctx context.Context, fn func(cur *Credential) (*Credential, error)) error {
	unlock, err := s.lock(ctx, s.AuthPath())
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
	s.auth.forget() // the rename gives a new file anyway; say so
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
	if err := s.checkDir(); err != nil {
		return nil, nil, err
	}
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

// Pool reads key-rotation.json (or the backend); a missing file is an empty
// pool.
func (s *Store) Pool() (*Pool, error) {
	if s.backend != nil {
		return s.backend.ReadPool(context.Background())
	}
	p, _, err := s.readPool()
	return p, err
}

// UpdatePool runs fn on the pool under key-rotation.json.lock (re-read, fn,
// atomic write), then mirrors the change into the keyring while still holding
// the lock. Nothing is written when the file is malformed or fn fails. With a
// backend, the update is the backend's atomic one (fn may run more than once)
// and the keyring is not involved.
func (s *Store) UpdatePool(ctx context.Context, fn func(p *Pool) error) (*Pool, error) {
	if s.backend != nil {
		return s.updateBackend(ctx, fn)
	}
	unlock, err := s.lock(ctx, s.PoolPath())
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
// With a backend, the pool side is the backend's exclusive update: fn runs
// once while every machine sharing the backend waits (a refresh is
// single-flight across machines).
func (s *Store) UpdateBoth(ctx context.Context, fn func(auth **Credential, p *Pool) error) (*Pool, error) {
	if s.backend != nil {
		return s.updateBothBackend(ctx, fn)
	}
	unlockAuth, err := s.lock(ctx, s.AuthPath())
	if err != nil {
		return nil, err
	}
	defer unlockAuth()
	unlockPool, err := s.lock(ctx, s.PoolPath())
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
