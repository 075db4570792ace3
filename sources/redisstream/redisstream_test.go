package redisstream_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cowrie-enrich/cowrie-enrich/internal/streamq"
	"github.com/cowrie-enrich/cowrie-enrich/internal/streamq/streamqtest"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
	"github.com/cowrie-enrich/cowrie-enrich/sources/redisstream"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		mutate      func(*redisstream.Config)
		errContains string
	}{
		{name: "defaults", mutate: func(*redisstream.Config) {}},
		{name: "bad url", mutate: func(c *redisstream.Config) { c.RedisURL = "postgres://x" }, errContains: "redis_url: not a redis"},
		{name: "no stream", mutate: func(c *redisstream.Config) { c.Stream = "" }, errContains: "stream: required"},
		{name: "no group", mutate: func(c *redisstream.Config) { c.Group = "" }, errContains: "group: required"},
		{name: "no count", mutate: func(c *redisstream.Config) { c.Count = 0 }, errContains: "count 0"},
		{name: "no block", mutate: func(c *redisstream.Config) { c.Block = 0 }, errContains: "block 0s"},
		{name: "no claim idle", mutate: func(c *redisstream.Config) { c.ClaimIdle = 0 }, errContains: "claim_idle 0s"},
		{name: "negative idle exit", mutate: func(c *redisstream.Config) { c.IdleExit = -time.Second }, errContains: "idle_exit -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := redisstream.DefaultConfig()
			tt.mutate(c)
			err := c.Validate()
			if tt.errContains == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.errContains != "" && (err == nil || !strings.Contains(err.Error(), tt.errContains)) {
				t.Fatalf("Validate = %v, want it to contain %q", err, tt.errContains)
			}
		})
	}
}

// setup returns a config on a fresh stream (fast reclaim and exit) and a
// client; the stream is deleted when the test ends.
func setup(t *testing.T) (*redisstream.Config, *redis.Client) {
	t.Helper()
	url, stream, rdb := streamqtest.Stream(t)
	cfg := redisstream.DefaultConfig()
	cfg.RedisURL, cfg.Stream = url, stream
	cfg.Block, cfg.ClaimIdle, cfg.IdleExit = 20*time.Millisecond, 200*time.Millisecond, 50*time.Millisecond
	return cfg, rdb
}

func newSource(t *testing.T, cfg *redisstream.Config) *redisstream.Source {
	t.Helper()
	s, err := redisstream.New(pipelinetest.Env("redis_stream"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.(*redisstream.Source).Close() })
	return s.(*redisstream.Source)
}

func add(t *testing.T, rdb *redis.Client, stream string, values ...map[string]any) {
	t.Helper()
	for _, v := range values {
		if err := rdb.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: v}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func rec(raw string, sessions int64) map[string]any {
	r := pipeline.NewRecord(raw)
	r.Sessions = sessions
	r.FirstSeen = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	r.LastSeen = r.FirstSeen.Add(time.Minute)
	return streamq.Encode(r)
}

// TestRunAcknowledgesOnCommitIntegration reads entries, commits them as
// the runtime would, and ends once the stream is empty: committed entries
// are acknowledged and deleted, a malformed one arrives rejected.
func TestRunAcknowledgesOnCommitIntegration(t *testing.T) {
	cfg, rdb := setup(t)
	if err := streamq.EnsureGroup(t.Context(), rdb, cfg.Stream, cfg.Group); err != nil {
		t.Fatal(err)
	}
	add(t, rdb, cfg.Stream, rec("1.2.3.4", 3), rec("5.6.7.8", 1), map[string]any{"raw": "9.9.9.9", "sessions": "many"})
	src := newSource(t, cfg)
	var got []string
	err := src.Run(t.Context(), func(r *pipeline.Record) error {
		if r.Rejected() {
			got = append(got, "rejected "+r.Raw)
		} else {
			got = append(got, r.Raw)
			if r.Sessions == 0 || r.FirstSeen.IsZero() {
				t.Errorf("%s: statistics lost: %d %s", r.Raw, r.Sessions, r.FirstSeen)
			}
		}
		if _, ok := r.Token.(string); !ok {
			t.Errorf("%s: token %v, want the entry id", r.Raw, r.Token)
		}
		return src.Committed(t.Context(), pipeline.Batch{r})
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := []string{"1.2.3.4", "5.6.7.8", "rejected 9.9.9.9"}; !slices.Equal(got, want) {
		t.Errorf("emitted %q, want %q", got, want)
	}
	if n := rdb.XLen(t.Context(), cfg.Stream).Val(); n != 0 {
		t.Errorf("%d entries left, want none", n)
	}
}

// TestReclaimFromDeadWorkerIntegration leaves entries pending with a
// consumer that never acknowledges (a killed worker): a second worker
// must take them over after claim_idle and finish the stream.
func TestReclaimFromDeadWorkerIntegration(t *testing.T) {
	cfg, rdb := setup(t)
	if err := streamq.EnsureGroup(t.Context(), rdb, cfg.Stream, cfg.Group); err != nil {
		t.Fatal(err)
	}
	add(t, rdb, cfg.Stream, rec("1.0.0.1", 1), rec("1.0.0.2", 1), rec("1.0.0.3", 1))

	dead := *cfg
	dead.Consumer = "dead"
	deadSrc := newSource(t, &dead)
	stop := errors.New("killed")
	n := 0
	if err := deadSrc.Run(t.Context(), func(*pipeline.Record) error {
		if n++; n == 2 {
			return stop
		}
		return nil
	}); !errors.Is(err, stop) {
		t.Fatalf("dead worker Run = %v", err)
	}
	pending := rdb.XPending(t.Context(), cfg.Stream, cfg.Group).Val()
	if pending.Count != 3 {
		t.Fatalf("pending %d, want the 3 entries the dead worker read", pending.Count)
	}

	cfg.Consumer = "alive"
	src := newSource(t, cfg)
	start := time.Now()
	var got []string
	if err := src.Run(t.Context(), func(r *pipeline.Record) error {
		got = append(got, r.Raw)
		return src.Committed(t.Context(), pipeline.Batch{r})
	}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	slices.Sort(got)
	if want := []string{"1.0.0.1", "1.0.0.2", "1.0.0.3"}; !slices.Equal(got, want) {
		t.Errorf("reclaimed %q, want %q", got, want)
	}
	if since := time.Since(start); since < cfg.ClaimIdle/2 {
		t.Errorf("reclaimed after %s, before the entries were idle for claim_idle", since)
	}
	if n := rdb.XLen(t.Context(), cfg.Stream).Val(); n != 0 {
		t.Errorf("%d entries left, want none", n)
	}
}

// TestRunWaitsForOtherWorkersIntegration: with an entry pending at a live
// worker, the stream is not drained and Run must not return.
func TestRunWaitsForOtherWorkersIntegration(t *testing.T) {
	cfg, rdb := setup(t)
	cfg.ClaimIdle = time.Hour
	if err := streamq.EnsureGroup(t.Context(), rdb, cfg.Stream, cfg.Group); err != nil {
		t.Fatal(err)
	}
	add(t, rdb, cfg.Stream, rec("1.0.0.1", 1))
	if err := rdb.XReadGroup(t.Context(), &redis.XReadGroupArgs{Group: cfg.Group, Consumer: "busy", Streams: []string{cfg.Stream, ">"}}).Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*cfg.IdleExit)
	defer cancel()
	err := newSource(t, cfg).Run(ctx, func(r *pipeline.Record) error {
		t.Errorf("emitted %s, held by another worker", r.Raw)
		return nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v, want it to keep waiting until the deadline", err)
	}
}

// TestOwnEntriesNotReemittedIntegration: entries this worker read and has
// not committed yet (still in its pipeline) go idle, and XAUTOCLAIM
// returns them to it; they must not be emitted a second time.
func TestOwnEntriesNotReemittedIntegration(t *testing.T) {
	cfg, rdb := setup(t)
	cfg.ClaimIdle = 50 * time.Millisecond
	if err := streamq.EnsureGroup(t.Context(), rdb, cfg.Stream, cfg.Group); err != nil {
		t.Fatal(err)
	}
	add(t, rdb, cfg.Stream, rec("1.0.0.1", 1), rec("1.0.0.2", 1))
	ctx, cancel := context.WithTimeout(t.Context(), 8*cfg.ClaimIdle)
	defer cancel()
	var got []string
	err := newSource(t, cfg).Run(ctx, func(r *pipeline.Record) error {
		got = append(got, r.Raw)
		return nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v", err)
	}
	if want := []string{"1.0.0.1", "1.0.0.2"}; !slices.Equal(got, want) {
		t.Errorf("emitted %q, want each entry once: %q", got, want)
	}
}
