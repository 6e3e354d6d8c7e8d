package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Redis is a throwaway redis-server on a free loopback port, with no
// persistence, killed when the test ends.
type Redis struct {
	t    testing.TB
	Port int
	dir  string // persistence dir ("" = none)
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// RedisServer starts a redis-server (the Debian package; scripts/test.sh
// installs it) on a free loopback port and waits until it answers PING. The
// test fails when redis-server is missing.
func RedisServer(t testing.TB) *Redis {
	t.Helper()
	return startRedis(t, "")
}

// PersistentRedisServer is RedisServer keeping its data in an append-only
// file fsynced on every write, so Kill and Start bring back what was
// written (a server restarted after a crash).
func PersistentRedisServer(t testing.TB) *Redis {
	t.Helper()
	return startRedis(t, t.TempDir())
}

func startRedis(t testing.TB, dir string) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is needed (apt-get install redis-server, or run scripts/test.sh): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &Redis{t: t, Port: port, dir: dir}
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// URL is the server's redis:// URL (database 0).
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Addr is "127.0.0.1:PORT".
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// Start (re)starts the server on its port (empty unless persistent) and
// waits for PING.
func (r *Redis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	args := []string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "", "--protected-mode", "no", "--loglevel", "warning"}
	if r.dir != "" {
		args = append(args, "--dir", r.dir, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	for deadline := time.Now().Add(10 * time.Second); ; { // a hang bound, not a speed claim
		if r.ping() {
			return
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			r.t.Fatalf("redis-server on port %d did not answer PING in 10 s", r.Port)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Do sends one command (inline protocol) and returns the first reply line.
func (r *Redis) Do(args ...string) string {
	r.t.Helper()
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		r.t.Fatalf("redis %s: %v", r.Addr(), err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s\r\n", strings.Join(args, " "))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		r.t.Fatalf("redis %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimRight(line, "\r\n")
}

func (r *Redis) ping() bool {
	c, err := net.DialTimeout("tcp", r.Addr(), 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprint(c, "PING\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
