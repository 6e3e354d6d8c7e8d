package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/mod/semver"

	"github.com/piauth/piauth/pkg/keystore"
)

// learnedTTL is how long a read of the learnt version is reused: the
// Transport asks on every request, the version changes about never.
const learnedTTL = time.Second

var _ keystore.VersionBackend = (*Backend)(nil)

type learnedDoc struct {
	Version   string    `json:"claude_code_version"`
	LearnedAt time.Time `json:"claude_code_version_learned_at"`
}

// ClaudeCodeVersion is the Claude Code version learnt by any machine
// (piauth:{NAME}:learned), read at most once a second.
func (b *Backend) ClaudeCodeVersion(ctx context.Context) (string, error) {
	b.mu.Lock()
	if time.Since(b.learnedAt) < learnedTTL {
		v := b.learned
		b.mu.Unlock()
		return v, nil
	}
	b.mu.Unlock()
	d, err := b.readLearned(ctx, b.rdb)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	b.learned, b.learnedAt = d.Version, time.Now()
	b.mu.Unlock()
	return d.Version, nil
}

func (b *Backend) readLearned(ctx context.Context, c redis.Cmdable) (learnedDoc, error) {
	var d learnedDoc
	raw, err := c.Get(ctx, b.key("learned")).Bytes()
	if errors.Is(err, redis.Nil) {
		return d, nil
	}
	if err != nil {
		return d, b.unavailable("read the learnt version", err)
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("store %s: %s: %w", b.url, b.key("learned"), err)
	}
	return d, nil
}

// RaiseClaudeCodeVersion records v for every machine unless the same or a
// newer version is recorded (WATCH/MULTI, never lowered).
func (b *Backend) RaiseClaudeCodeVersion(ctx context.Context, v string, now time.Time) (string, error) {
	if !semver.IsValid("v" + v) {
		return "", fmt.Errorf("record Claude Code version %q: not a version", v)
	}
	for range 50 {
		var rec string
		err := b.rdb.Watch(ctx, func(tx *redis.Tx) error {
			d, err := b.readLearned(ctx, tx)
			if err != nil {
				return err
			}
			if d.Version != "" && semver.Compare("v"+d.Version, "v"+v) >= 0 {
				rec = d.Version
				return nil
			}
			data, _ := json.Marshal(learnedDoc{Version: v, LearnedAt: now.UTC()})
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, b.key("learned"), data, 0)
				return nil
			})
			rec = v
			return err
		}, b.key("learned"))
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return "", b.unavailable("record the learnt version", err)
		}
		b.mu.Lock()
		b.learned, b.learnedAt = rec, time.Now()
		b.mu.Unlock()
		return rec, nil
	}
	return "", fmt.Errorf("store %s: %s keeps changing", b.url, b.key("learned"))
}
