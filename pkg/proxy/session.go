package proxy

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Session bounds: the table forgets the least recently used session beyond
// DefaultMaxSessions and any session idle for DefaultSessionIdle (a prompt
// cache lives 5 minutes, at most an hour).
const (
	DefaultMaxSessions = 10000
	DefaultSessionIdle = time.Hour
)

// SessionHeader is the header Claude Code sends with a per-session id.
const SessionHeader = "X-Claude-Code-Session-Id"

// maxSessionID bounds a session id kept in the table.
const maxSessionID = 256

// sessionID is the id that keeps a conversation on one key: the
// X-Claude-Code-Session-Id header, else the body's metadata.user_id (Claude
// Code and the SDKs put one there); "" when neither is present.
func sessionID(r *http.Request, body []byte) string {
	if id := strings.TrimSpace(r.Header.Get(SessionHeader)); id != "" {
		return truncate(id, maxSessionID)
	}
	if !bytes.Contains(body, []byte(`"user_id"`)) {
		return ""
	}
	var req struct {
		Metadata struct {
			UserID string `json:"user_id"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(body, &req)
	return truncate(strings.TrimSpace(req.Metadata.UserID), maxSessionID)
}

// shortSession is the session id the log shows: its first 8 characters, or
// for a metadata.user_id naming a session ("user_…_session_<uuid>") the first
// 8 of that session.
func shortSession(id string) string {
	if _, s, ok := strings.Cut(id, "_session_"); ok && s != "" {
		id = s
	}
	return truncate(id, 8)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// sessions maps a session id to the fingerprint of the key it is on. It is
// an LRU bounded by max entries, and entries idle longer than idle expire.
type sessions struct {
	mu    sync.Mutex
	max   int
	idle  time.Duration
	byID  map[string]*list.Element
	order *list.List // front = most recently used
}

type sessionEntry struct {
	id   string
	fp   string
	used time.Time
}

func newSessions(maxN int, idle time.Duration) *sessions {
	return &sessions{max: maxN, idle: idle, byID: map[string]*list.Element{}, order: list.New()}
}

// key is the fingerprint session id is on ("" when unknown or expired).
func (s *sessions) key(id string, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byID[id]
	if !ok {
		return ""
	}
	e := el.Value.(*sessionEntry)
	if now.Sub(e.used) > s.idle {
		s.remove(el)
		return ""
	}
	return e.fp
}

// set records that session id is on fp, now.
func (s *sessions) set(id, fp string, now time.Time) {
	if id == "" || fp == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byID[id]; ok {
		e := el.Value.(*sessionEntry)
		e.fp, e.used = fp, now
		s.order.MoveToFront(el)
		return
	}
	s.expire(now)
	for s.order.Len() >= s.max {
		s.remove(s.order.Back())
	}
	s.byID[id] = s.order.PushFront(&sessionEntry{id: id, fp: fp, used: now})
}

// expire drops the idle entries at the back.
func (s *sessions) expire(now time.Time) {
	for el := s.order.Back(); el != nil; el = s.order.Back() {
		if now.Sub(el.Value.(*sessionEntry).used) <= s.idle {
			return
		}
		s.remove(el)
	}
}

func (s *sessions) remove(el *list.Element) {
	delete(s.byID, el.Value.(*sessionEntry).id)
	s.order.Remove(el)
}

// pinned is the number of sessions on a key, idle ones dropped first.
func (s *sessions) pinned(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	return s.order.Len()
}

// sharedSessionWait bounds a shared-store session lookup or write: a slow
// store costs a request this much at most, then the local table decides.
const sharedSessionWait = 250 * time.Millisecond

// sessionKey is the fingerprint session sid is pinned to: the shared
// store's when there is one and it answers, else this proxy's table.
func (p *Proxy) sessionKey(ctx context.Context, sid string) string {
	now := p.opts.Now()
	if p.opts.SharedSessions != nil {
		ctx, cancel := context.WithTimeout(ctx, sharedSessionWait)
		defer cancel()
		if fp, err := p.opts.SharedSessions.SessionKey(ctx, sid); err == nil && fp != "" {
			p.sessions.set(sid, fp, now)
			return fp
		}
	}
	return p.sessions.key(sid, now)
}

// setSessionKey records that session sid is on fp: in this proxy's table,
// and in the shared store (each answer renews the pin's lifetime there).
func (p *Proxy) setSessionKey(ctx context.Context, sid, fp string) {
	p.sessions.set(sid, fp, p.opts.Now())
	if p.opts.SharedSessions == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedSessionWait)
	defer cancel()
	_ = p.opts.SharedSessions.SetSessionKey(ctx, sid, fp, p.sessions.idle) // the local table still has it
}
