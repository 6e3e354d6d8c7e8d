package keystore

import (
	"io/fs"
	"maps"
	"os"
	"sync"
	"time"
)

// authMemo remembers auth.json's anthropic entry as last parsed, with what
// the file looked like then (Lstat), so that a process asking for it on
// every request (the proxy asks twice per request: which credential, and
// is it fresh) reads and parses the file only when it changed. Every call
// still looks at the file, so a change by pi or another piauth is seen at
// once, as before.
type authMemo struct {
	mu   sync.Mutex
	fi   fs.FileInfo // nil: nothing remembered
	cred Credential
}

// racyWindow: a file changed within this long of being read is not
// remembered. A file system whose times are coarse (a second, two on FAT)
// could otherwise hide a same-size rewrite made in the same tick as the
// read (the "racy clean" case git's index knows); one older than the window
// can only change by moving its time past it.
const racyWindow = 3 * time.Second

// same reports whether a and b describe the same file in the same state.
func same(a, b fs.FileInfo) bool {
	return a.Mode() == b.Mode() && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && os.SameFile(a, b)
}

// get returns a copy of the remembered credential when fi is the file it
// was parsed from, unchanged.
func (m *authMemo) get(fi fs.FileInfo) (*Credential, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fi == nil || !same(m.fi, fi) {
		return nil, false
	}
	c := m.cred
	c.extra = maps.Clone(m.cred.extra) // SetField on the copy must not reach the memo
	return &c, true
}

// put remembers c as parsed from the file fi described before the read,
// unless the file had changed too recently to be trusted (racyWindow, on
// the wall clock the file system's times come from, never a Store's
// injected one).
func (m *authMemo) put(fi fs.FileInfo, c *Credential) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(fi.ModTime()) < racyWindow {
		m.fi = nil
		return
	}
	m.fi, m.cred = fi, *c
	m.cred.extra = maps.Clone(c.extra)
}

// forget drops what is remembered (after this process wrote the file).
func (m *authMemo) forget() {
	m.mu.Lock()
	m.fi = nil
	m.mu.Unlock()
}
