package cymru

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// Modes of looking addresses up.
const (
	// ModeBulk sends each batch over one bulk whois connection.
	ModeBulk = "bulk"
	// ModeDNS asks the origin zones one address at a time (answers are
	// cacheable by resolvers; prefix reuse saves most queries).
	ModeDNS = "dns"
)

// Limits of the options; Cymru asks for bulk queries but publishes no cap,
// so these are our own etiquette (reference/protocols.md §1.3).
const (
	MaxWindowSize  = 1000
	MaxConcurrency = 4
	MaxRetries     = 10
)

// Config holds the stage's options.
type Config struct {
	// WhoisAddr is the bulk whois server, host:port.
	WhoisAddr string `koanf:"whois_addr"`
	// DNSServer is the resolver for DNS mode and AS names, host:port;
	// empty means the first server of /etc/resolv.conf.
	DNSServer string `koanf:"dns_server"`
	// Mode is "bulk" (default) or "dns".
	Mode string `koanf:"mode"`
	// Window shapes the batches the runtime hands the stage: one whois
	// query per batch.
	Window WindowConfig `koanf:"window"`
	// Concurrency is the most batches, hence whois connections, in flight.
	Concurrency int `koanf:"concurrency"`
	// RedisURL, when set, makes SharedConcurrency the most whois
	// connections in flight across every process using this Redis (the
	// workers of a multi-process run); empty limits this process only.
	RedisURL          string `koanf:"redis_url"`
	SharedConcurrency int    `koanf:"shared_concurrency"`
	// Timeout bounds one attempt: a whole whois exchange, or one DNS query.
	Timeout time.Duration `koanf:"timeout"`
	// Retries is how often a failed attempt (timeout, reset, truncated
	// answer, SERVFAIL) is repeated before its records are marked failed.
	Retries int `koanf:"retries"`
	// Backoff is the wait before the first retry; it doubles for each
	// further retry.
	Backoff time.Duration `koanf:"backoff"`
	// PrefixCache is how many answered BGP prefixes are remembered, so
	// addresses inside them are filled without a query.
	PrefixCache int `koanf:"prefix_cache"`
	// NameCache is how many AS names are remembered.
	NameCache int `koanf:"name_cache"`
}

// WindowConfig is the size-or-age batch window.
type WindowConfig struct {
	Size    int           `koanf:"size"`
	MaxWait time.Duration `koanf:"max_wait"`
}

// DefaultConfig returns the defaults of DESIGN.md §3.
func DefaultConfig() *Config {
	return &Config{
		WhoisAddr:         "whois.cymru.com:43",
		Mode:              ModeBulk,
		Window:            WindowConfig{Size: 500, MaxWait: 2 * time.Second},
		Concurrency:       1,
		SharedConcurrency: 1,
		Timeout:           30 * time.Second,
		Retries:           2,
		Backoff:           time.Second,
		PrefixCache:       65536,
		NameCache:         16384,
	}
}

// Validate checks the options without any I/O.
func (c *Config) Validate() error {
	switch c.Mode {
	case ModeBulk:
		if err := checkHostPort(c.WhoisAddr); err != nil {
			return fmt.Errorf("whois_addr %q: %w", c.WhoisAddr, err)
		}
	case ModeDNS:
	default:
		return fmt.Errorf("mode %q: %w: want %q or %q", c.Mode, ErrConfig, ModeBulk, ModeDNS)
	}
	if c.DNSServer != "" {
		if err := checkHostPort(c.DNSServer); err != nil {
			return fmt.Errorf("dns_server %q: %w", c.DNSServer, err)
		}
	}
	checks := []struct {
		ok   bool
		what string
	}{
		{c.Window.Size >= 1 && c.Window.Size <= MaxWindowSize, fmt.Sprintf("window.size %d: want 1..%d", c.Window.Size, MaxWindowSize)},
		{c.Window.MaxWait > 0, fmt.Sprintf("window.max_wait %s: want more than 0", c.Window.MaxWait)},
		{c.Concurrency >= 1 && c.Concurrency <= MaxConcurrency, fmt.Sprintf("concurrency %d: want 1..%d", c.Concurrency, MaxConcurrency)},
		{c.SharedConcurrency >= 1 && c.SharedConcurrency <= MaxConcurrency, fmt.Sprintf("shared_concurrency %d: want 1..%d", c.SharedConcurrency, MaxConcurrency)},
		// The parse error would echo the URL and its password.
		{c.RedisURL == "" || validRedisURL(c.RedisURL), "redis_url: not a redis:// or rediss:// URL"},
		{c.Timeout > 0, fmt.Sprintf("timeout %s: want more than 0", c.Timeout)},
		{c.Retries >= 0 && c.Retries <= MaxRetries, fmt.Sprintf("retries %d: want 0..%d", c.Retries, MaxRetries)},
		{c.Backoff >= 0, fmt.Sprintf("backoff %s: want 0 or more", c.Backoff)},
		{c.PrefixCache >= 0, fmt.Sprintf("prefix_cache %d: want 0 or more", c.PrefixCache)},
		{c.NameCache >= 0, fmt.Sprintf("name_cache %d: want 0 or more", c.NameCache)},
	}
	for _, ch := range checks {
		if !ch.ok {
			return fmt.Errorf("%s: %w", ch.what, ErrConfig)
		}
	}
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if host == "" {
		return fmt.Errorf("%w: empty host", ErrConfig)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%w: port %q", ErrConfig, port)
	}
	return nil
}
