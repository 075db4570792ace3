package cache

import (
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Spec registers the cache stage.
var Spec = pipeline.StageSpec("cache",
	"Answer maxmind, cymru and greynoise from Redis, the database and upstream's cache files before asking providers.",
	`redis_url: ""
file_dir: ""
ttl: {maxmind: 168h, cymru: 2160h, greynoise: 168h}
negative_ttl: 24h
key_prefix: cowrie:enrichment
timeout: 2s
concurrency: 2
window: {size: 1000, max_wait: 250ms}
`, DefaultConfig, New)

// MaxWindowSize bounds window.size: one batch is one Redis MGET and one
// query per database table, whose parameters grow with it.
const MaxWindowSize = 10000

// Config holds the stage's options. Every tier is optional: an empty
// redis_url means no L1, an empty file_dir no L3, and a run without a
// database no L2.
type Config struct {
	// RedisURL is the L1 server, e.g. redis://127.0.0.1:6379/0.
	RedisURL string `koanf:"redis_url"`
	// FileDir is the L3 directory, laid out as upstream's cache_dir
	// (<dir>/<source>/<sha256[:2]>/<sha256>.json).
	FileDir string `koanf:"file_dir"`
	// TTL is how long an answer stays fresh, per source.
	TTL TTL `koanf:"ttl"`
	// NegativeTTL is how long a "not found" answer stays fresh.
	NegativeTTL time.Duration `koanf:"negative_ttl"`
	// KeyPrefix starts every Redis key: <key_prefix>:<source>:<ip>.
	KeyPrefix string `koanf:"key_prefix"`
	// Timeout bounds each Redis round trip.
	Timeout time.Duration `koanf:"timeout"`
	// Concurrency is the number of batches looked up at once: a batch
	// spends most of its time waiting on Redis and the database, so a
	// second one in flight keeps the stage from pacing the run.
	Concurrency int `koanf:"concurrency"`
	// Window shapes the batches the stage looks up: each costs a Redis
	// round trip and a database query whatever its size, so a batch of a
	// thousand addresses costs much less per address than the runtime's
	// default of 256.
	Window pipeline.Window `koanf:"window"`
}

// TTL is the freshness limit of each source's answers.
type TTL struct {
	MaxMind   time.Duration `koanf:"maxmind"`
	Cymru     time.Duration `koanf:"cymru"`
	GreyNoise time.Duration `koanf:"greynoise"`
}

// DefaultConfig returns the defaults: no L1, no L3, upstream's TTLs (a
// week for MaxMind and GreyNoise, 90 days for Cymru), a day for negative
// answers and upstream's Redis key prefix.
func DefaultConfig() *Config {
	return &Config{
		TTL:         TTL{MaxMind: 168 * time.Hour, Cymru: 2160 * time.Hour, GreyNoise: 168 * time.Hour},
		NegativeTTL: 24 * time.Hour,
		KeyPrefix:   "cowrie:enrichment",
		Timeout:     2 * time.Second,
		Concurrency: 2,
		Window:      pipeline.Window{Size: 1000, MaxWait: 250 * time.Millisecond},
	}
}

// Validate checks durations, the key prefix and the Redis URL's syntax
// (no connection is made).
func (c *Config) Validate() error {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"ttl.maxmind", c.TTL.MaxMind}, {"ttl.cymru", c.TTL.Cymru}, {"ttl.greynoise", c.TTL.GreyNoise}, {"negative_ttl", c.NegativeTTL}} {
		if d.v <= 0 {
			return fmt.Errorf("%s %v: %w", d.key, d.v, ErrTTL)
		}
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("timeout %v: %w", c.Timeout, ErrTimeout)
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("concurrency %d: %w", c.Concurrency, ErrConcurrency)
	}
	if c.Window.Size < 1 || c.Window.Size > MaxWindowSize || c.Window.MaxWait <= 0 {
		return fmt.Errorf("window {size: %d, max_wait: %s}: %w", c.Window.Size, c.Window.MaxWait, ErrWindow)
	}
	if c.KeyPrefix == "" || strings.ContainsAny(c.KeyPrefix, " \t\r\n") {
		return fmt.Errorf("key_prefix %q: %w", c.KeyPrefix, ErrKeyPrefix)
	}
	if _, err := c.redisOptions(); err != nil {
		return err
	}
	return nil
}

// redisOptions returns the L1 client options, or nil when L1 is off.
func (c *Config) redisOptions() (*redis.Options, error) {
	if strings.TrimSpace(c.RedisURL) == "" {
		return nil, nil
	}
	o, err := redis.ParseURL(strings.TrimSpace(c.RedisURL))
	if err != nil {
		// The parser's message may quote the URL, password included.
		return nil, fmt.Errorf("%w: expected redis://[user:password@]host:port/db or rediss://…", ErrRedisURL)
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = c.Timeout, c.Timeout, c.Timeout
	o.PoolTimeout = c.Timeout
	// A cache must not slow the run down: one attempt per call, and the
	// stage itself stops calling an unreachable server for a while.
	o.MaxRetries = -1
	o.DialerRetries = 1
	o.ContextTimeoutEnabled = true
	return o, nil
}

// ttl returns the freshness limit of source's positive answers.
func (c *Config) ttl(source string) time.Duration {
	switch source {
	case pipeline.SourceMaxMind:
		return c.TTL.MaxMind
	case pipeline.SourceCymru:
		return c.TTL.Cymru
	default:
		return c.TTL.GreyNoise
	}
}
