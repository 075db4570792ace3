package greynoise

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// windowMargin is added to the sliding window so that requests spaced
// exactly one window apart on our side still arrive more than a window
// apart despite scheduling and network jitter. 20 ms proved too little for
// three worker processes on a loaded two-core machine (rate+1 arrivals in
// one second); 50 ms costs 5% of the rate at 20 requests per second.
const windowMargin = 50 * time.Millisecond

// throttle decides when the next request may be sent: after the token
// bucket allows it, after the last `per` send times leave the window, and
// after any pause a 429 asked for. It is shared by all of a stage's
// workers. With shared set, the same ceiling is also kept in Redis for
// every process using the key, last, so that the shared admission is as
// close as possible to the actual send.
//
// The token bucket alone is not enough for the "no one-second window holds
// more than rate requests" ceiling: the limiter schedules from planned
// times, so a request that woke late followed by one on time can put
// rate+1 requests in one second. The window of actual send times closes
// that gap.
type throttle struct {
	lim    *rate.Limiter
	span   time.Duration // the window; `per` requests at most in any span
	shared *sharedRate   // nil: this process is the only one using the key

	mu          sync.Mutex
	sent        []time.Time // ring of the last len(sent) send times
	next        int
	pausedUntil time.Time
}

func newThrottle(r float64, burst int) *throttle {
	per, span := window(r)
	return &throttle{
		lim:  rate.NewLimiter(rate.Limit(r), burst),
		span: span + windowMargin,
		sent: make([]time.Time, per),
	}
}

// window returns the ceiling as `per` requests in any span.
func window(r float64) (per int, span time.Duration) {
	per, span = int(math.Floor(r)), time.Second
	if per < 1 {
		// Slower than one a second: one request per 1/r.
		per, span = 1, time.Duration(float64(time.Second)/r)
	}
	return per, span
}

// wait blocks until a request may be sent and records it as sent.
func (t *throttle) wait(ctx context.Context) error {
	if err := t.local(ctx); err != nil {
		return err
	}
	if t.shared != nil {
		return t.shared.wait(ctx)
	}
	return nil
}

// local waits for this process's limiter, window and pause.
func (t *throttle) local(ctx context.Context) error {
	if err := t.lim.Wait(ctx); err != nil {
		return err
	}
	for {
		t.mu.Lock()
		now := time.Now()
		until := t.pausedUntil
		if free := t.sent[t.next].Add(t.span); free.After(until) {
			until = free
		}
		if !until.After(now) {
			t.sent[t.next] = now
			t.next = (t.next + 1) % len(t.sent)
			t.mu.Unlock()
			return nil
		}
		t.mu.Unlock()
		if err := sleep(ctx, until.Sub(now)); err != nil {
			return err
		}
	}
}

// sharedRate is the rate ceiling kept in Redis for every process using
// one API key: GCRA through github.com/go-redis/redis_rate, whose Lua
// script takes the time from the Redis server, so the processes' clocks do
// not matter. The limit is `per` requests in span plus windowMargin, the
// local window's margin, so that jitter between admission and arrival does
// not put rate+1 requests into one of GreyNoise's windows.
type sharedRate struct {
	lim   *redis_rate.Limiter
	key   string
	limit redis_rate.Limit
}

func newSharedRate(rdb *redis.Client, key string, r float64, burst int) *sharedRate {
	per, span := window(r)
	return &sharedRate{lim: redis_rate.NewLimiter(rdb), key: key,
		limit: redis_rate.Limit{Rate: per, Period: span + windowMargin, Burst: burst}}
}

// wait blocks until Redis admits one request.
func (s *sharedRate) wait(ctx context.Context) error {
	for {
		res, err := s.lim.Allow(ctx, s.key, s.limit)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("shared rate limit in redis: %w", err)
		}
		if res.Allowed > 0 {
			return nil
		}
		if err := sleep(ctx, res.RetryAfter); err != nil {
			return err
		}
	}
}

// pause stops every request for d from now.
func (t *throttle) pause(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if until := time.Now().Add(d); until.After(t.pausedUntil) {
		t.pausedUntil = until
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
