package greynoise

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	fake "github.com/cowrie-enrich/cowrie-enrich/internal/simulate/greynoise"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// randomKey gives each test its own quota counter.
func randomKey(t *testing.T) secret {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	return secret("test-" + hex.EncodeToString(b[:]))
}

func redisURL(t testing.TB) string { t.Helper(); return testdb.RedisURL(t) }

// twoRuns runs two stage instances at once, built by newEnv and mutate,
// against one fake whose own quota equals the configured one, and checks
// that together they spent exactly the quota and the fake saw no lookup
// past it.
func twoRuns(t *testing.T, newEnv func(i int) pipeline.Env, mutate func(*Config)) {
	t.Helper()
	const quota, each = 10, 15
	srv := newFake(t, fake.Options{DailyQuota: quota})
	key := randomKey(t)
	batches := make([]pipeline.Batch, 2)
	stages := make([]*Stage, 2)
	for i := range stages {
		cfg := testConfig(srv)
		cfg.APIKey, cfg.DailyQuota = key, quota
		mutate(cfg)
		stages[i] = newStage(t, newEnv(i), cfg)
		for j := range each {
			batches[i] = append(batches[i], record(fmt.Sprintf("45.84.%d.%d", i, j+1), 1))
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range stages {
		wg.Go(func() { _, errs[i] = stages[i].Process(t.Context(), batches[i]) })
	}
	wg.Wait()
	answered, skipped := 0, 0
	for i, b := range batches {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		for _, r := range b {
			switch s := r.Source(source); {
			case s.State == pipeline.StateSucceeded:
				answered++
			case s.State == pipeline.StateSkipped && s.Reason == ReasonQuota:
				skipped++
			default:
				t.Errorf("%s: %v %q", r.IP(), s.State, s.Reason)
			}
		}
	}
	if answered != quota || skipped != 2*each-quota {
		t.Errorf("answered %d, skipped %d; want %d and %d", answered, skipped, quota, 2*each-quota)
	}
	if v := srv.Violations(); v.Quota != 0 || srv.Used() != quota {
		t.Errorf("fake counted %d lookups and %d over quota; want %d and none", srv.Used(), v.Quota, quota)
	}
}

func TestSharedQuotaRedisIntegration(t *testing.T) {
	url := redisURL(t)
	var key secret
	twoRuns(t, func(int) pipeline.Env { return pipelinetest.Env("greynoise") }, func(c *Config) {
		c.RedisURL, key = url, c.APIKey
	})
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	k := "cowrie:greynoise:quota:" + keyID(key) + ":" + day(time.Now())
	used, err := rdb.Get(t.Context(), k).Int64()
	if err != nil || used != 10 {
		t.Errorf("redis %s = %d, %v; want 10", k, used, err)
	}
	if ttl := rdb.TTL(t.Context(), k).Val(); ttl <= 24*time.Hour || ttl > redisTTL {
		t.Errorf("ttl %s; want about %s", ttl, redisTTL)
	}
	rdb.Del(context.WithoutCancel(t.Context()), k)
}

func TestSharedQuotaDatabaseIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		// Two stores on one database, as two processes would have.
		dbs := []*store.DB{testdb.Migrated(t, url), testdb.Open(t, url)}
		twoRuns(t, func(i int) pipeline.Env {
			env := pipelinetest.Env("greynoise")
			env.Store = dbs[i]
			return env
		}, func(*Config) {})
		var used int64
		if err := dbs[0].QueryRow(t.Context(), "SELECT sum(used) FROM cowrie_enrich_quota", nil, &used); err != nil || used != 10 {
			t.Errorf("cowrie_enrich_quota holds %d, %v; want 10", used, err)
		}
	})
}

// TestQuotaBackends checks partial reservations and exhaust on every
// counter: what fits is granted, the rest refused, never more.
func TestQuotaBackendsIntegration(t *testing.T) {
	check := func(t *testing.T, q quota) {
		t.Helper()
		ctx, d := t.Context(), "2026-11-26"
		for _, step := range []struct{ n, granted, remaining int64 }{{5, 5, 2}, {5, 2, 0}, {1, 0, 0}} {
			g, rem, err := q.reserve(ctx, d, step.n, 7)
			if err != nil || g != step.granted || rem != step.remaining {
				t.Fatalf("reserve(%d) = %d, %d, %v; want %d, %d", step.n, g, rem, err, step.granted, step.remaining)
			}
		}
		if g, rem, err := q.reserve(ctx, "2026-11-27", 3, 7); err != nil || g != 3 || rem != 4 {
			t.Fatalf("next day reserve = %d, %d, %v; want a fresh budget", g, rem, err)
		}
		if err := q.exhaust(ctx, "2026-11-27", 7); err != nil {
			t.Fatal(err)
		}
		if g, _, err := q.reserve(ctx, "2026-11-27", 1, 7); err != nil || g != 0 {
			t.Fatalf("reserve after exhaust = %d, %v; want 0", g, err)
		}
	}
	t.Run("memory", func(t *testing.T) { check(t, &memQuota{}) })
	t.Run("redis", func(t *testing.T) {
		key := randomKey(t)
		q, err := newRedisQuota(redisURL(t), key)
		if err != nil {
			t.Fatal(err)
		}
		defer q.close()
		defer q.rdb.Del(context.WithoutCancel(t.Context()), q.prefix+"2026-11-26", q.prefix+"2026-11-27")
		check(t, q)
	})
	testdb.Dialects(t, func(t *testing.T, url string) {
		check(t, &sqlQuota{db: testdb.Migrated(t, url), name: "greynoise:" + keyID(randomKey(t))})
	})
}

// TestSharedRateRedisIntegration runs two stage instances at once, each
// allowed the fake's whole rate: only the limit shared in Redis keeps
// them together under it (without it they send twice the rate).
func TestSharedRateRedisIntegration(t *testing.T) {
	url := redisURL(t)
	const rate, each = 10, 8
	// The fake's bucket leaves room for arrival jitter on a loaded
	// machine; the strict check is the sliding window below.
	srv := newFake(t, fake.Options{Rate: rate, Burst: 3})
	key := randomKey(t)
	stages := make([]*Stage, 2)
	batches := make([]pipeline.Batch, 2)
	for i := range stages {
		cfg := testConfig(srv)
		cfg.APIKey, cfg.RedisURL, cfg.Rate, cfg.Retries = key, url, rate, 0
		stages[i] = newStage(t, pipelinetest.Env("greynoise"), cfg)
		for j := range each {
			batches[i] = append(batches[i], record(fmt.Sprintf("45.85.%d.%d", i, j+1), 1))
		}
	}
	defer func() {
		rdb := stages[0].quota.(*redisQuota).rdb
		ctx := context.WithoutCancel(t.Context())
		rdb.Del(ctx, "rate:"+rateKey(key), "cowrie:greynoise:quota:"+keyID(key)+":"+day(time.Now()))
	}()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range stages {
		wg.Go(func() { _, errs[i] = stages[i].Process(t.Context(), batches[i]) })
	}
	wg.Wait()
	for i, b := range batches {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		for _, r := range b {
			if s := r.Source(source); s.State != pipeline.StateSucceeded {
				t.Errorf("%s: %v %q", r.IP(), s.State, s.Reason)
			}
		}
	}
	if v, most := srv.Violations(), srv.MaxInWindow(time.Second); v.Rate != 0 || most > rate {
		t.Errorf("fake refused %d requests for rate and saw %d in one second; want none and at most %d", v.Rate, most, rate)
	}
}
