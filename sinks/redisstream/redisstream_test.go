package redisstream_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cowrie-enrich/cowrie-enrich/internal/streamq"
	"github.com/cowrie-enrich/cowrie-enrich/internal/streamq/streamqtest"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/redisstream"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		mutate      func(*redisstream.Config)
		errContains string
	}{
		{name: "defaults", mutate: func(*redisstream.Config) {}},
		{name: "bad url hides password", mutate: func(c *redisstream.Config) { c.RedisURL = "http://u:hunter2@h" }, errContains: "redis_url: not a redis"},
		{name: "no stream", mutate: func(c *redisstream.Config) { c.Stream = "" }, errContains: "stream: required"},
		{name: "no group", mutate: func(c *redisstream.Config) { c.Group = "" }, errContains: "group: required"},
		{name: "no bound", mutate: func(c *redisstream.Config) { c.MaxLen = 0 }, errContains: "max_len 0"},
		{name: "no poll", mutate: func(c *redisstream.Config) { c.Poll = 0 }, errContains: "poll 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := redisstream.DefaultConfig()
			tt.mutate(c)
			err := c.Validate()
			switch {
			case tt.errContains == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.errContains != "" && (err == nil || !strings.Contains(err.Error(), tt.errContains)):
				t.Fatalf("Validate = %v, want it to contain %q", err, tt.errContains)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Fatalf("the password reached the error: %v", err)
			}
		})
	}
}

// setup returns a config on a fresh stream and a client; the stream is
// deleted when the test ends.
func setup(t *testing.T) (*redisstream.Config, *redis.Client) {
	t.Helper()
	url, stream, rdb := streamqtest.Stream(t)
	cfg := redisstream.DefaultConfig()
	cfg.RedisURL, cfg.Stream, cfg.Poll = url, stream, 10*time.Millisecond
	return cfg, rdb
}

func newSink(t *testing.T, cfg *redisstream.Config) *redisstream.Sink {
	t.Helper()
	s, err := redisstream.New(pipelinetest.Env("redis_stream"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestWriteAddsEntriesIntegration(t *testing.T) {
	cfg, rdb := setup(t)
	s := newSink(t, cfg)
	first := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
	r := pipeline.NewRecord(" 1.2.3.4")
	r.FirstSeen, r.LastSeen, r.Sessions = first, first.Add(time.Hour), 7
	if err := s.Write(t.Context(), pipeline.Batch{r, pipeline.NewRecord("garbage")}); err != nil {
		t.Fatal(err)
	}
	msgs, err := rdb.XRange(t.Context(), cfg.Stream, "-", "+").Result()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("XRANGE = %d entries, %v; want 2", len(msgs), err)
	}
	got, err := streamq.Decode(msgs[0].Values)
	if err != nil {
		t.Fatal(err)
	}
	if got.Raw != " 1.2.3.4" || !got.FirstSeen.Equal(r.FirstSeen) || !got.LastSeen.Equal(r.LastSeen) || got.Sessions != 7 {
		t.Errorf("decoded %q %s %s %d; want the record as written", got.Raw, got.FirstSeen, got.LastSeen, got.Sessions)
	}
	if g, err := streamq.Decode(msgs[1].Values); err != nil || g.Raw != "garbage" || !g.FirstSeen.IsZero() || g.Sessions != 0 {
		t.Errorf("second entry %+v, %v; want raw garbage without statistics", g, err)
	}
	groups, err := rdb.XInfoGroups(t.Context(), cfg.Stream).Result()
	if err != nil || len(groups) != 1 || groups[0].Name != cfg.Group {
		t.Errorf("groups %+v, %v; want %q", groups, err, cfg.Group)
	}
}

// TestWriteWaitsForRoomIntegration fills the stream to max_len: the next
// Write must wait until a worker deleted entries, and end with ctx.
func TestWriteWaitsForRoomIntegration(t *testing.T) {
	cfg, rdb := setup(t)
	cfg.MaxLen = 2
	s := newSink(t, cfg)
	if err := s.Write(t.Context(), pipeline.Batch{pipeline.NewRecord("1.1.1.1"), pipeline.NewRecord("1.1.1.2")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	// The deadline may fall during the sink's Redis call, which wraps it.
	if err := s.Write(ctx, pipeline.Batch{pipeline.NewRecord("1.1.1.3")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write on a full stream = %v, want it to wait until the deadline", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Write(t.Context(), pipeline.Batch{pipeline.NewRecord("1.1.1.3")}) }()
	msgs := rdb.XRange(t.Context(), cfg.Stream, "-", "+").Val()
	rdb.XDel(t.Context(), cfg.Stream, msgs[0].ID)
	if err := <-done; err != nil {
		t.Fatalf("Write after room was made: %v", err)
	}
	if n := rdb.XLen(t.Context(), cfg.Stream).Val(); n != 2 {
		t.Errorf("length %d, want 2 (never above max_len)", n)
	}
}
