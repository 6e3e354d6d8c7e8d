package keystore

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
)

// helperEnv selects a child-process mode of the test binary (see runHelper).
const helperEnv = "KEYSTORE_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := runHelper(mode); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper is the body of a child process. Inputs come from env vars:
// DIR (agent dir), TOKEN, SERVICE (real keyring service; "" = keyring off),
// MODE (auto|on|off), TARGET (file to lock), FILE/CONTENT (write while holding).
func runHelper(mode string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	open := func() (*Store, error) {
		km, err := ParseKeyringMode(os.Getenv("MODE"))
		if err != nil {
			return nil, err
		}
		return Open(Options{Dir: os.Getenv("DIR"), Mode: km, Service: os.Getenv("SERVICE"), Warn: os.Stderr})
	}
	switch mode {
	case "add": // add TOKEN to the pool
		s, err := open()
		if err != nil {
			return err
		}
		_, err = s.UpdatePool(ctx, func(p *Pool) error {
			p.Add(os.Getenv("TOKEN"), KeyState{Label: "proc"})
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Println(s.KeyringState())
		return nil
	case "hold": // lock TARGET, say "locked", on a stdin line write CONTENT to FILE and unlock
		unlock, err := Lock(ctx, os.Getenv("TARGET"), LockOptions{})
		if err != nil {
			return err
		}
		fmt.Println("locked")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			select {} // stdin closed: hold until killed
		}
		if err := WriteFileAtomic(os.Getenv("FILE"), []byte(os.Getenv("CONTENT")), 0o600); err != nil {
			return err
		}
		return unlock()
	case "churn": // rewrite auth.json and the pool forever, one generation at a time
		s, err := open()
		if err != nil {
			return err
		}
		for gen := 0; ; gen++ {
			if err := s.UpdateAuth(ctx, func(*Credential) (*Credential, error) {
				return &Credential{Type: "oauth", Access: fmt.Sprintf("acc-%d", gen), Refresh: "r", Expires: int64(gen)}, nil
			}); err != nil {
				return err
			}
			if _, err := s.UpdatePool(ctx, func(p *Pool) error {
				p.Keys, p.States = nil, nil
				for i := range churnSize(gen) {
					p.Add(fmt.Sprintf("tok-%d-%d-%s", gen, i, strings.Repeat("z", 40)), KeyState{Label: fmt.Sprintf("gen-%d", gen)})
				}
				return nil
			}); err != nil {
				return err
			}
			if gen == 0 {
				fmt.Println("ready")
			}
		}
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

func churnSize(gen int) int { return 10 + gen%40 }

func helper(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+mode), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// startHolder starts a child holding target's lock and waits until it holds it.
func startHolder(t *testing.T, target string, env ...string) (cmd *exec.Cmd, stdin io.WriteCloser) {
	t.Helper()
	cmd = helper(t, "hold", append(env, "TARGET="+target)...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)
	return cmd, stdin
}

// TestConcurrentAddProcesses: 32 processes each add one key at the same time;
// none is lost, in the file or in the (real) keyring.
func TestConcurrentAddProcesses(t *testing.T) {
	svc := testenv.KeyringService(t)
	dir := t.TempDir()
	const n = 32
	toks := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		toks[i] = fakeTok("oat01", 1000+i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := helper(t, "add", "DIR="+dir, "TOKEN="+toks[i], "MODE=on", "SERVICE="+svc).Output()
			assert.NoError(t, err)
			assert.Equal(t, "on (secret service)\n", string(out))
		}()
	}
	wg.Wait()

	s, err := Open(Options{Dir: dir, Mode: ModeOn, Service: svc})
	require.NoError(t, err)
	p, err := s.Pool()
	require.NoError(t, err)
	assert.ElementsMatch(t, toks, p.Keys)
	kr := NewOSKeyring(svc, 0)
	idx, err := readIndex(kr)
	require.NoError(t, err)
	assert.Len(t, idx, n)
	for i, tok := range p.Keys {
		assert.Equal(t, Fingerprint(tok), idx[i], "index in pool order")
		assert.True(t, s.InKeyring(Fingerprint(tok)))
	}
}

// TestWriterWaitsForLockHeldByOtherProcess covers both pi's auth.json.lock and
// key-rotation.json.lock held by another process.
func TestWriterWaitsForLockHeldByOtherProcess(t *testing.T) {
	a, b := fakeTok("oat01", 1), fakeTok("oat01", 2)
	tests := []struct {
		name    string
		file    func(s *Store) string
		content string
		write   func(ctx context.Context, s *Store) error
		check   func(t *testing.T, s *Store)
	}{
		{
			name: "auth.json (pi's lock)", file: (*Store).AuthPath,
			content: `{"google": {"type": "api_key", "key": "g"}}`,
			write: func(ctx context.Context, s *Store) error {
				return s.UpdateAuth(ctx, func(*Credential) (*Credential, error) {
					return &Credential{Type: "api_key", Key: "k"}, nil
				})
			},
			check: func(t *testing.T, s *Store) {
				raw, err := os.ReadFile(s.AuthPath())
				require.NoError(t, err)
				var m map[string]any
				require.NoError(t, json.Unmarshal(raw, &m))
				assert.Contains(t, m, "google", "the holder's write survived")
				assert.Contains(t, m, "anthropic")
			},
		},
		{
			name: "key-rotation.json", file: (*Store).PoolPath,
			content: `{"keys": ["` + a + `"]}`,
			write: func(ctx context.Context, s *Store) error {
				_, err := s.UpdatePool(ctx, func(p *Pool) error { p.Add(b, KeyState{}); return nil })
				return err
			},
			check: func(t *testing.T, s *Store) {
				p, err := s.Pool()
				require.NoError(t, err)
				assert.Equal(t, []string{a, b}, p.Keys)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t, ModeOff, nil)
			cmd, stdin := startHolder(t, tt.file(s), "FILE="+tt.file(s), "CONTENT="+tt.content)

			short, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			err := tt.write(short, s)
			require.ErrorIs(t, err, ErrLockTimeout, "the writer must wait while the lock is held")
			assert.NoFileExists(t, tt.file(s))

			done := make(chan error, 1)
			go func() { done <- tt.write(context.Background(), s) }()
			_, err = io.WriteString(stdin, "go\n")
			require.NoError(t, err)
			require.NoError(t, <-done)
			require.NoError(t, cmd.Wait())
			tt.check(t, s)
		})
	}
}

// TestStaleLockOfKilledProcessIsTakenOver: a SIGKILLed holder leaves its lock
// behind; once its mtime is 31 s old, a writer takes it over.
func TestStaleLockOfKilledProcessIsTakenOver(t *testing.T) {
	s, _ := openTest(t, ModeOff, nil)
	cmd, stdin := startHolder(t, s.PoolPath())
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.DirExists(t, s.PoolPath()+".lock")

	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := s.UpdatePool(short, func(p *Pool) error { return nil })
	require.ErrorIs(t, err, ErrLockTimeout, "a fresh lock is respected")

	old := time.Now().Add(-31 * time.Second)
	require.NoError(t, os.Chtimes(s.PoolPath()+".lock", old, old))
	_, err = s.UpdatePool(context.Background(), func(p *Pool) error { p.Add(fakeTok("oat01", 1), KeyState{}); return nil })
	require.NoError(t, err)
	assert.NoDirExists(t, s.PoolPath()+".lock")
}

// TestKilledWriterNeverLeavesHalfFile SIGKILLs a process that rewrites
// auth.json and key-rotation.json in a loop at random moments; after every
// kill both files parse and hold one complete generation.
func TestKilledWriterNeverLeavesHalfFile(t *testing.T) {
	runs := 200
	if testing.Short() {
		runs = 20
	}
	s, _ := openTest(t, ModeOff, nil)
	writeFile(t, s.AuthPath(), `{"google": {"type": "api_key", "key": "g"}}`, 0o600)
	for run := range runs {
		cmd := helper(t, "churn", "DIR="+s.Dir(), "MODE=off")
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		_, err = bufio.NewReader(out).ReadString('\n')
		require.NoError(t, err, "run %d: child became ready", run)
		time.Sleep(time.Duration(rand.IntN(20_000)) * time.Microsecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()

		c, err := s.Auth()
		require.NoError(t, err, "run %d", run)
		assert.True(t, strings.HasPrefix(c.Access, "acc-"), "run %d: %q", run, c.Access)
		raw, err := os.ReadFile(s.AuthPath())
		require.NoError(t, err)
		assert.Contains(t, string(raw), `"google"`, "run %d: other provider kept", run)

		p, err := s.Pool()
		require.NoError(t, err, "run %d", run)
		require.NotEmpty(t, p.Keys, "run %d", run)
		gen, err := strconv.Atoi(strings.Split(p.Keys[0], "-")[1])
		require.NoError(t, err)
		assert.Len(t, p.Keys, churnSize(gen), "run %d: whole generation %d", run, gen)
		for i, k := range p.Keys {
			assert.True(t, strings.HasPrefix(k, fmt.Sprintf("tok-%d-%d-", gen, i)), "run %d: key %d from gen %d", run, i, gen)
			assert.Equal(t, fmt.Sprintf("gen-%d", gen), p.State(i).Label)
		}
		// The killed holder's locks become stale; age them so the next run
		// exercises the takeover instead of waiting 30 s.
		old := time.Now().Add(-time.Minute)
		for _, l := range []string{s.AuthPath() + ".lock", s.PoolPath() + ".lock"} {
			_ = os.Chtimes(l, old, old)
		}
		tmps, _ := filepath.Glob(filepath.Join(s.Dir(), ".*.tmp-*"))
		for _, tmp := range tmps {
			_ = os.Remove(tmp) // a killed writer may leave its temp file behind
		}
	}
}
