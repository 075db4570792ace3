package cache

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// l1Cooldown is how long the stage leaves Redis alone after a failed call,
// so an outage costs one timeout now and then rather than one per batch;
// lookups go on from the lower tiers meanwhile.
const l1Cooldown = 30 * time.Second

// l1 is the Redis tier: key <prefix>:<source>:<ip>, the encoded entry as
// value, expiring when the entry goes stale.
type l1 struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration

	mu        sync.Mutex
	downUntil time.Time
}

// l1Item is one value to store.
type l1Item struct {
	key   string
	value []byte
	ttl   time.Duration
}

func (l *l1) key(source, ip string) string { return l.prefix + ":" + source + ":" + ip }

// available reports whether the tier may be used at now.
func (l *l1) available(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !now.Before(l.downUntil)
}

// down takes the tier out of use for l1Cooldown.
func (l *l1) down(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.downUntil = now.Add(l1Cooldown)
}

// get reads keys in one MGET; a missing key gives a nil slice.
func (l *l1) get(ctx context.Context, keys []string) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	vals, err := l.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = []byte(s)
		}
	}
	return out, nil
}

// set stores items in one pipelined round trip.
func (l *l1) set(ctx context.Context, items []l1Item) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	_, err := l.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, it := range items {
			p.Set(ctx, it.key, it.value, it.ttl)
		}
		return nil
	})
	return err
}
