package redisstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cowrie-enrich/cowrie-enrich/internal/streamq"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

const sampleYAML = `redis_url: redis://127.0.0.1:6379/0
stream: cowrie:refresh-ips
group: workers
consumer: ""            # empty: <hostname>-<pid>, unique per process
count: 100              # entries per read
block: 1s               # how long one read waits for new entries
claim_idle: 30s         # take over entries another worker left pending this long
idle_exit: 0s           # end the run after the stream stayed empty this long; 0 = never
`

// Spec registers the redis_stream source.
var Spec = pipeline.SourceSpec("redis_stream",
	"Read records from a Redis stream as one worker of a consumer group; acknowledge them once the inventory committed them.",
	sampleYAML, DefaultConfig, New)

// Config holds the source's options.
type Config struct {
	RedisURL string `koanf:"redis_url"`
	Stream   string `koanf:"stream"`
	Group    string `koanf:"group"`
	// Consumer names this worker in the group; empty is <hostname>-<pid>.
	Consumer string `koanf:"consumer"`
	// Count is the most entries one read returns.
	Count int64 `koanf:"count"`
	// Block is how long one read waits for new entries.
	Block time.Duration `koanf:"block"`
	// ClaimIdle is how long an entry stays pending with a worker before
	// another takes it over; it must exceed the time a live worker needs
	// to commit a record, or records are processed twice (harmless, but
	// wasted lookups).
	ClaimIdle time.Duration `koanf:"claim_idle"`
	// IdleExit ends Run once the stream stayed empty this long; 0 never.
	IdleExit time.Duration `koanf:"idle_exit"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() *Config {
	return &Config{RedisURL: "redis://127.0.0.1:6379/0", Stream: "cowrie:refresh-ips", Group: "workers",
		Count: 100, Block: time.Second, ClaimIdle: 30 * time.Second}
}

// Validate checks the options without I/O.
func (c *Config) Validate() error {
	errs := streamq.ValidateTarget(c.RedisURL, c.Stream, c.Group)
	if c.Count < 1 {
		errs = append(errs, fmt.Errorf("count %d: must be positive", c.Count))
	}
	if c.Block < time.Millisecond {
		errs = append(errs, fmt.Errorf("block %s: must be at least 1ms", c.Block))
	}
	if c.ClaimIdle < time.Millisecond {
		errs = append(errs, fmt.Errorf("claim_idle %s: must be at least 1ms", c.ClaimIdle))
	}
	if c.IdleExit < 0 {
		errs = append(errs, fmt.Errorf("idle_exit %s: must not be negative (0 = run until interrupted)", c.IdleExit))
	}
	return errors.Join(errs...)
}

// Source reads a stream as one consumer of a group.
type Source struct {
	rdb      *redis.Client
	cfg      Config
	consumer string
	env      pipeline.Env

	// inflight holds the ids emitted and not yet committed. XAUTOCLAIM
	// also returns this worker's own idle entries, which are still on
	// their way through its pipeline; they are not emitted twice.
	mu       sync.Mutex
	inflight map[string]struct{}

	closeOnce sync.Once
	closeErr  error
}

var (
	_ pipeline.Source    = (*Source)(nil)
	_ pipeline.Committer = (*Source)(nil)
	_ pipeline.Closer    = (*Source)(nil)
)

// New builds the source without connecting.
func New(env pipeline.Env, cfg *Config) (pipeline.Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("source %q: %w", env.ID, err)
	}
	rdb, err := streamq.Client(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", env.ID, err)
	}
	consumer := cfg.Consumer
	if consumer == "" {
		host, _ := os.Hostname()
		consumer = host + "-" + strconv.Itoa(os.Getpid())
	}
	return &Source{rdb: rdb, cfg: *cfg, consumer: consumer, env: env.WithDefaults(), inflight: map[string]struct{}{}}, nil
}

// Run reads entries (reclaimed ones first) and emits them until ctx ends,
// emit fails, or the stream stayed empty for idle_exit.
func (s *Source) Run(ctx context.Context, emit func(*pipeline.Record) error) error {
	if err := streamq.EnsureGroup(ctx, s.rdb, s.cfg.Stream, s.cfg.Group); err != nil {
		return fmt.Errorf("redis_stream: %w", err)
	}
	// Reads block at most half the claim idle time so a dead worker's
	// entries wait no longer than about 1.5 × claim_idle.
	block := min(s.cfg.Block, max(s.cfg.ClaimIdle/2, time.Millisecond))
	var lastClaim, emptySince time.Time
	for {
		got := 0
		if now := time.Now(); now.Sub(lastClaim) >= s.cfg.ClaimIdle/2 {
			n, err := s.claim(ctx, emit)
			if err != nil {
				return err
			}
			got += n
			lastClaim = now
		}
		n, err := s.read(ctx, block, emit)
		if err != nil {
			return err
		}
		if got += n; got > 0 || s.cfg.IdleExit == 0 {
			emptySince = time.Time{}
			continue
		}
		length, err := s.rdb.XLen(ctx, s.cfg.Stream).Result()
		if err != nil {
			return fmt.Errorf("redis_stream: length of %q: %w", s.cfg.Stream, err)
		}
		switch {
		case length > 0:
			// Entries are pending with other workers; one may die.
			emptySince = time.Time{}
		case emptySince.IsZero():
			emptySince = time.Now()
		case time.Since(emptySince) >= s.cfg.IdleExit:
			s.env.Logger.DebugContext(ctx, "redis_stream drained", "stream", s.cfg.Stream)
			return nil
		}
	}
}

// read emits the next new entries, waiting up to block for some.
func (s *Source) read(ctx context.Context, block time.Duration, emit func(*pipeline.Record) error) (int, error) {
	res, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: s.cfg.Group, Consumer: s.consumer, Streams: []string{s.cfg.Stream, ">"},
		Count: s.cfg.Count, Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("redis_stream: read %q: %w", s.cfg.Stream, err)
	}
	n := 0
	for _, st := range res {
		if err := s.emitAll(st.Messages, emit); err != nil {
			return n, err
		}
		n += len(st.Messages)
	}
	return n, nil
}

// claim takes over every entry pending longer than claim_idle with any
// consumer and emits it.
func (s *Source) claim(ctx context.Context, emit func(*pipeline.Record) error) (int, error) {
	n, start := 0, "0-0"
	for {
		msgs, next, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: s.cfg.Stream, Group: s.cfg.Group, Consumer: s.consumer,
			MinIdle: s.cfg.ClaimIdle, Start: start, Count: s.cfg.Count,
		}).Result()
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			return n, fmt.Errorf("redis_stream: reclaim from %q: %w", s.cfg.Stream, err)
		}
		if len(msgs) > 0 {
			s.env.Progress.Add("redis_stream_reclaimed", int64(len(msgs)))
			s.env.Logger.DebugContext(ctx, "redis_stream reclaimed entries", "count", len(msgs))
		}
		if err := s.emitAll(msgs, emit); err != nil {
			return n, err
		}
		n += len(msgs)
		if next == "0-0" || next == "" {
			return n, nil
		}
		start = next
	}
}

func (s *Source) emitAll(msgs []redis.XMessage, emit func(*pipeline.Record) error) error {
	for _, m := range msgs {
		s.mu.Lock()
		_, mine := s.inflight[m.ID]
		s.inflight[m.ID] = struct{}{}
		s.mu.Unlock()
		if mine {
			continue
		}
		r, err := streamq.Decode(m.Values)
		if err != nil {
			raw, _ := m.Values["raw"].(string)
			r = pipeline.NewRecord(raw)
			r.Reject("redis_stream", err)
		}
		r.Token = m.ID
		if err := emit(r); err != nil {
			return err
		}
	}
	return nil
}

// Committed acknowledges and deletes the entries of b's records, which
// the main sink made durable.
func (s *Source) Committed(ctx context.Context, b pipeline.Batch) error {
	ids := make([]string, 0, len(b))
	for _, r := range b {
		if id, ok := r.Token.(string); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	s.mu.Lock()
	for _, id := range ids {
		delete(s.inflight, id)
	}
	s.mu.Unlock()
	pipe := s.rdb.TxPipeline()
	pipe.XAck(ctx, s.cfg.Stream, s.cfg.Group, ids...)
	pipe.XDel(ctx, s.cfg.Stream, ids...)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis_stream: acknowledge %d entries: %w", len(ids), err)
	}
	return nil
}

// Close releases the Redis client. It is safe to call again.
func (s *Source) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.rdb.Close() })
	return s.closeErr
}
