package redisstore

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/rotate"
)

// BenchmarkStoreRequest is what the store adds to one request: the
// Transport's read of the pool and the login, the key choice, and the state
// write of the answer (its utilisation changed), with the pool in
// key-rotation.json (file) and in Redis on loopback (redis), in one run.
// It reports the median per request (p50-ms) beside ns/op; scripts/bench.sh
// takes redis − file as redis_store_added_ms.
func BenchmarkStoreRequest(b *testing.B) {
	r := testenv.RedisServer(b)
	backend, err := Open(context.Background(), Options{URL: r.URL(), Passphrase: testPass})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = backend.Close() })
	stores := []struct {
		name    string
		backend keystore.PoolBackend
	}{{"file", nil}, {"redis", backend}}
	for _, sc := range stores {
		b.Run(sc.name, func(b *testing.B) {
			s, err := keystore.Open(keystore.Options{Dir: b.TempDir(), Mode: keystore.ModeOff, Backend: sc.backend})
			if err != nil {
				b.Fatal(err)
			}
			_, err = s.UpdatePool(context.Background(), func(p *keystore.Pool) error {
				for i := range 3 {
					p.Add(tok("oat01", i+1), keystore.KeyState{Refresh: tok("ort01", i+1), Expires: 4102444800000, Label: "bench"})
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			times := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				if err := storeRequest(s, i); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2])/1e6, "p50-ms")
		})
	}
}

// storeRequest is one request's store work (rotate.Transport's Files, choice
// and succeed).
func storeRequest(s *keystore.Store, i int) error {
	p, err := s.Pool()
	if err != nil {
		return err
	}
	if _, err := s.Auth(); err != nil && !errors.Is(err, keystore.ErrNotFound) {
		return err
	}
	k, err := rotate.Next(p, time.Now())
	if err != nil {
		return err
	}
	tok := p.Keys[k]
	_, err = s.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		if j := p.Find(tok); j >= 0 {
			p.State(j).FiveHour = float64(i%100) / 100
		}
		return nil
	})
	return err
}
