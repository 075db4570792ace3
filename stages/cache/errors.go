package cache

import (
	"errors"
	"fmt"
)

// Sentinels returned by Config.Validate.
var (
	// ErrTTL means a time-to-live is zero or negative.
	ErrTTL = errors.New("ttl must be positive")
	// ErrTimeout means the Redis timeout is zero or negative.
	ErrTimeout = errors.New("timeout must be positive")
	// ErrConcurrency rejects a concurrency below 1.
	ErrConcurrency = errors.New("concurrency must be at least 1")
	// ErrWindow rejects a window size outside 1..MaxWindowSize or a
	// max_wait that is not positive.
	ErrWindow = fmt.Errorf("window.size must be between 1 and %d and window.max_wait positive", MaxWindowSize)
	// ErrKeyPrefix means the Redis key prefix is empty or has a space.
	ErrKeyPrefix = errors.New("key_prefix must be non-empty and without spaces")
	// ErrRedisURL means redis_url does not parse.
	ErrRedisURL = errors.New("invalid redis_url")
)

// ErrCorrupt is wrapped by every entry that cannot be decoded: bad JSON,
// a wrong type, a timestamp that does not parse.
var ErrCorrupt = errors.New("corrupt cache entry")

// TierError is a problem of one cache tier during one operation. The stage
// counts it, warns once per run and goes on without that tier's answer.
type TierError struct {
	Tier string // "l1", "l2" or "l3"
	Op   string // what the tier was doing: "read", "write", "back-fill"
	Err  error
}

func (e *TierError) Error() string { return fmt.Sprintf("cache %s %s: %v", e.Tier, e.Op, e.Err) }

// Unwrap returns the underlying error.
func (e *TierError) Unwrap() error { return e.Err }
