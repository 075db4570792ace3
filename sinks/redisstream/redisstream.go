package redisstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cowrie-enrich/cowrie-enrich/internal/streamq"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

const sampleYAML = `redis_url: redis://127.0.0.1:6379/0
stream: cowrie:refresh-ips
group: workers
max_len: 10000          # backpressure: wait while the stream holds this many entries
poll: 200ms             # how often to look again while the stream is full
`

// Spec registers the redis_stream sink.
var Spec = pipeline.SinkSpec("redis_stream",
	"Add records to a Redis stream for redis_stream workers (producer side), waiting while the stream is full.",
	sampleYAML, DefaultConfig, newSink)

// Config holds the sink's options.
type Config struct {
	RedisURL string `koanf:"redis_url"`
	Stream   string `koanf:"stream"`
	Group    string `koanf:"group"`
	// MaxLen bounds the stream: Write waits while adding a batch would
	// take it past MaxLen entries.
	MaxLen int64 `koanf:"max_len"`
	// Poll is how often a waiting Write looks at the length again.
	Poll time.Duration `koanf:"poll"`
}

// DefaultConfig returns the defaults: local Redis, 10,000 entries.
func DefaultConfig() *Config {
	return &Config{RedisURL: "redis://127.0.0.1:6379/0", Stream: "cowrie:refresh-ips", Group: "workers",
		MaxLen: 10000, Poll: 200 * time.Millisecond}
}

// Validate checks the options without I/O.
func (c *Config) Validate() error {
	errs := streamq.ValidateTarget(c.RedisURL, c.Stream, c.Group)
	if c.MaxLen < 1 {
		errs = append(errs, fmt.Errorf("max_len %d: must be positive", c.MaxLen))
	}
	if c.Poll <= 0 {
		errs = append(errs, fmt.Errorf("poll %s: must be positive", c.Poll))
	}
	return errors.Join(errs...)
}

// Sink adds records to a stream.
type Sink struct {
	rdb *redis.Client
	cfg Config
	env pipeline.Env

	groupOnce sync.Once
	groupErr  error
	closeOnce sync.Once
	closeErr  error
}

var (
	_ pipeline.Sink   = (*Sink)(nil)
	_ pipeline.Closer = (*Sink)(nil)
)

// New builds the sink without connecting.
func New(env pipeline.Env, cfg *Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sink %q: %w", env.ID, err)
	}
	rdb, err := streamq.Client(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("sink %q: %w", env.ID, err)
	}
	return &Sink{rdb: rdb, cfg: *cfg, env: env.WithDefaults()}, nil
}

func newSink(env pipeline.Env, cfg *Config) (pipeline.Sink, error) {
	s, err := New(env, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Write waits for room, then adds every record of b in one round trip.
func (s *Sink) Write(ctx context.Context, b pipeline.Batch) error {
	if len(b) == 0 {
		return nil
	}
	s.groupOnce.Do(func() { s.groupErr = streamq.EnsureGroup(ctx, s.rdb, s.cfg.Stream, s.cfg.Group) })
	if s.groupErr != nil {
		return fmt.Errorf("redis_stream: %w", s.groupErr)
	}
	if err := s.room(ctx, int64(len(b))); err != nil {
		return err
	}
	pipe := s.rdb.Pipeline()
	for _, r := range b {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: s.cfg.Stream, Values: streamq.Encode(r)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis_stream: add to %q: %w", s.cfg.Stream, err)
	}
	s.env.Logger.DebugContext(ctx, "redis_stream batch added", "batch_size", len(b))
	return nil
}

// room waits until n more entries fit under max_len. A batch larger than
// max_len waits for an empty stream.
func (s *Sink) room(ctx context.Context, n int64) error {
	limit := max(s.cfg.MaxLen-n, 0)
	var timer *time.Timer
	for {
		length, err := s.rdb.XLen(ctx, s.cfg.Stream).Result()
		if err != nil {
			return fmt.Errorf("redis_stream: length of %q: %w", s.cfg.Stream, err)
		}
		if length <= limit {
			return nil
		}
		s.env.Progress.Add("redis_stream_full_waits", 1)
		if timer == nil {
			timer = time.NewTimer(s.cfg.Poll)
			defer timer.Stop()
		} else {
			timer.Reset(s.cfg.Poll)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// Close releases the Redis client. It is safe to call again.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.rdb.Close() })
	return s.closeErr
}
