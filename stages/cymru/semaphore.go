package cymru

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// leaseMargin is added to the whois timeout to get a slot's lease: a
// process killed mid-exchange frees its slot once the lease ends, and a
// live one never holds a slot longer than its timeout.
const leaseMargin = 5 * time.Second

// Waits between attempts while every shared slot is taken.
const (
	firstPoll = 10 * time.Millisecond
	maxPoll   = 200 * time.Millisecond
)

// acquireScript takes a slot of KEYS[1] for ARGV[1] when fewer than
// ARGV[2] unexpired holders exist; a holder's score is its lease end in
// Redis server milliseconds, so the processes' clocks do not matter.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
`)

// semaphore bounds whois connections across processes: a sorted set of
// holders with lease ends in Redis. Neither redis_rate (a rate, not a
// count of open connections) nor go-redis offers a counting semaphore
// whose slots expire with their holder, which a killed worker needs.
type semaphore struct {
	rdb   *redis.Client
	key   string
	limit int
	lease time.Duration
}

func newSemaphore(url, whoisAddr string, limit int, timeout time.Duration) (*semaphore, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis_url: %w", ErrConfig)
	}
	return &semaphore{rdb: redis.NewClient(opts), key: "cowrie:cymru:whois:" + whoisAddr, limit: limit, lease: timeout + leaseMargin}, nil
}

func validRedisURL(url string) bool {
	_, err := redis.ParseURL(url)
	return err == nil
}

// acquire waits for a slot and returns the function that frees it.
func (s *semaphore) acquire(ctx context.Context) (release func(), err error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	wait := firstPoll
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		ok, err := acquireScript.Run(ctx, s.rdb, []string{s.key}, token, s.limit, s.lease.Milliseconds()).Int()
		if err != nil {
			return nil, fmt.Errorf("shared whois slot in redis: %w", err)
		}
		if ok == 1 {
			return func() {
				// A failed release only keeps the slot until the lease ends.
				_ = s.rdb.ZRem(context.WithoutCancel(ctx), s.key, token).Err()
			}, nil
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
		}
		wait = min(2*wait, maxPoll)
	}
}

func (s *semaphore) close() error { return s.rdb.Close() }
