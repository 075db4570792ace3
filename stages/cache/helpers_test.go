package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// testNow is the clock of the tests: answers are dated relative to it.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// redisURL returns the test Redis URL; a missing server fails the test.
func redisURL(t testing.TB) string { t.Helper(); return testdb.RedisURL(t) }

// keyPrefix returns a key prefix of the test's own and deletes its keys
// when the test ends.
func keyPrefix(t testing.TB, url string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "cowrie-enrich-test:" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		c := redisClient(t, url)
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return prefix
}

func redisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// env returns a stage environment on db (nil: no database) with the test
// clock.
func env(db *store.DB) pipeline.Env {
	e := pipelinetest.Env("cache")
	e.Store = db
	e.Now = func() time.Time { return testNow }
	e.Progress = pipeline.NewProgress(testNow)
	return e
}

func newStage(t testing.TB, e pipeline.Env, cfg *Config) *Stage {
	t.Helper()
	st, err := New(e, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { st.(*Stage).Close() })
	return st.(*Stage)
}

// records builds validated, routable records.
func records(ips ...string) pipeline.Batch {
	b := make(pipeline.Batch, len(ips))
	for i, ip := range ips {
		b[i] = pipeline.NewRecord(ip)
		b[i].Addr = netip.MustParseAddr(ip)
		b[i].Validation = &pipeline.Validation{}
	}
	return b
}

func i64(v int64) *int64 { return &v }

func ptrOf[T any](v T) *T { return &v }

// answers of each source, dated at.
func maxmindAt(at time.Time) *pipeline.MaxMindResult {
	return &pipeline.MaxMindResult{Country: "US", CountryName: "United States", City: "Mountain View",
		Latitude: ptrOf(37.4), Longitude: ptrOf(-122.1), ASN: i64(15169), ASNOrg: "GOOGLE", AccuracyRadius: ptrOf(1000),
		Network: "8.8.8.0/24", DatabaseBuild: pipeline.At(testNow.Add(-48 * time.Hour)), CachedAt: pipeline.At(at)}
}

func cymruAt(at time.Time) *pipeline.CymruResult {
	return &pipeline.CymruResult{ASN: i64(13335), ASNOrg: "CLOUDFLARENET, US", Country: "US", Registry: "arin",
		Prefix: "1.1.1.0/24", AllocationDate: "2010-07-14", CachedAt: pipeline.At(at)}
}

func greynoiseAt(at time.Time) *pipeline.GreyNoiseResult {
	return &pipeline.GreyNoiseResult{Noise: true, Classification: "malicious", Name: "unknown",
		LastSeen: "2026-02-27T00:00:00+00:00", CachedAt: pipeline.At(at)}
}

func answerAt(source string, at time.Time) any {
	switch source {
	case pipeline.SourceMaxMind:
		return maxmindAt(at)
	case pipeline.SourceCymru:
		return cymruAt(at)
	}
	return greynoiseAt(at)
}

// countingHook counts Redis round trips: single commands and pipelines,
// leaving out the handshake of a new connection.
type countingHook struct{ calls atomic.Int64 }

func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select", "ping":
		return true
	}
	return false
}

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			h.calls.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !handshake(cmds[0]) {
			h.calls.Add(1)
		}
		return next(ctx, cmds)
	}
}
