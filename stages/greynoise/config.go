package greynoise

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// APIs the stage can speak.
const (
	APICommunity  = "community"
	APIEnterprise = "enterprise"
)

// filePrefix marks an api_key read from a file (a Docker or systemd
// secret) instead of given in the config.
const filePrefix = "file:"

// Config holds the stage's options.
type Config struct {
	// BaseURL is the API's base URL; tests point it at a fake.
	BaseURL string `koanf:"base_url"`
	// APIKey is the key, from ${GREYNOISE_API_KEY} expansion or a
	// file:/path reference read by New. Empty uses the Community API's
	// unauthenticated plan.
	APIKey secret `koanf:"api_key"`
	// API is "community" (GET /v3/community/{ip}) or "enterprise" (the
	// paid v3 lookups, many addresses per request).
	API string `koanf:"api"`
	// Rate is the ceiling in requests per second; Burst the limiter's
	// bucket (1: requests evenly spaced).
	Rate  float64 `koanf:"rate"`
	Burst int     `koanf:"burst"`
	// DailyQuota is the lookups allowed per UTC day across every process
	// using the key; 0 is unlimited. QuotaWarn is the share of it at which
	// a warning is logged once.
	DailyQuota int64   `koanf:"daily_quota"`
	QuotaWarn  float64 `koanf:"quota_warn"`
	// RedisURL, when set, holds the shared quota counter and the shared
	// rate limit; empty keeps the counter in the database
	// (cowrie_enrich_quota) and the rate per process.
	RedisURL string `koanf:"redis_url"`
	// Timeout bounds one request; Retries is how often a 5xx, timeout or
	// 429 is retried, waiting Backoff, then twice that, and so on.
	Timeout time.Duration `koanf:"timeout"`
	Retries int           `koanf:"retries"`
	Backoff time.Duration `koanf:"backoff"`
	// Concurrency is how many requests may be in flight at once, so that
	// the rate is reached even when one answer takes longer than 1/rate.
	Concurrency int `koanf:"concurrency"`
}

// DefaultConfig returns the defaults: the Community API at 10 requests per
// second and 10,000 lookups a day, as upstream's client.
func DefaultConfig() *Config {
	return &Config{
		BaseURL: "https://api.greynoise.io", API: APICommunity,
		Rate: 10, Burst: 1, DailyQuota: 10000, QuotaWarn: 0.9,
		Timeout: 10 * time.Second, Retries: 2, Backoff: 500 * time.Millisecond,
		Concurrency: 4,
	}
}

// Validate checks the options without any I/O (a file: key is read by New).
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("base_url %q: want an http:// or https:// URL", c.BaseURL))
	}
	if c.API != APICommunity && c.API != APIEnterprise {
		errs = append(errs, fmt.Errorf("api %q: want %q or %q", c.API, APICommunity, APIEnterprise))
	}
	if path, ok := strings.CutPrefix(string(c.APIKey), filePrefix); ok && strings.TrimSpace(path) == "" {
		errs = append(errs, errors.New("api_key: file: needs a path, e.g. file:/run/secrets/greynoise"))
	}
	if c.Rate <= 0 {
		errs = append(errs, fmt.Errorf("rate %v: must be positive", c.Rate))
	}
	if c.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst %d: must be at least 1", c.Burst))
	}
	if c.DailyQuota < 0 {
		errs = append(errs, fmt.Errorf("daily_quota %d: must not be negative (0 = unlimited)", c.DailyQuota))
	}
	if c.QuotaWarn <= 0 || c.QuotaWarn > 1 {
		errs = append(errs, fmt.Errorf("quota_warn %v: want a share in (0, 1]", c.QuotaWarn))
	}
	if c.RedisURL != "" {
		// The parse error would echo the URL and its password.
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			errs = append(errs, errors.New("redis_url: not a redis:// or rediss:// URL"))
		}
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %s: must be positive", c.Timeout))
	}
	if c.Retries < 0 || c.Retries > 10 {
		errs = append(errs, fmt.Errorf("retries %d: want 0 to 10", c.Retries))
	}
	if c.Backoff <= 0 {
		errs = append(errs, fmt.Errorf("backoff %s: must be positive", c.Backoff))
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("concurrency %d: want 1 to 64", c.Concurrency))
	}
	return errors.Join(errs...)
}

// key returns the API key, reading a file: reference.
func (c *Config) key() (secret, error) {
	path, ok := strings.CutPrefix(string(c.APIKey), filePrefix)
	if !ok {
		return c.APIKey, nil
	}
	b, err := os.ReadFile(strings.TrimSpace(path))
	if err != nil {
		// The path is not secret; the file's content never reaches here.
		return "", fmt.Errorf("read api_key file: %w", err)
	}
	return secret(strings.TrimRight(string(b), "\r\n")), nil
}

// secret is a string that redacts itself wherever it could be printed:
// fmt verbs, JSON and slog. Only reveal gives the value, for the header.
type secret string

const redacted = "[redacted]"

func (s secret) String() string   { return s.mask() }
func (s secret) GoString() string { return s.mask() }

// MarshalJSON keeps the key out of JSON renderings of the config.
func (s secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.mask()) }

// LogValue keeps the key out of structured logs.
func (s secret) LogValue() slog.Value { return slog.StringValue(s.mask()) }

func (s secret) mask() string {
	if s == "" {
		return ""
	}
	return redacted
}

func (s secret) reveal() string { return string(s) }
