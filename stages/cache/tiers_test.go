package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// tier is a place the tests put answers, and how.
type tier struct {
	name     string
	counter  string // the hit counter the tier must raise
	negative bool   // the tier can hold "not found" answers
	put      func(t *testing.T, f *fixture, src, ip string, e entry)
}

// fixture is a stage with every tier on, and handles to put answers there.
type fixture struct {
	cfg    *Config
	db     *store.DB
	prefix string
	env    pipeline.Env
}

func newFixture(t *testing.T, dbURL string) *fixture {
	t.Helper()
	url := redisURL(t)
	f := &fixture{cfg: DefaultConfig(), db: testdb.Migrated(t, dbURL)}
	f.cfg.RedisURL, f.cfg.FileDir = url, t.TempDir()
	f.prefix = keyPrefix(t, url)
	f.cfg.KeyPrefix = f.prefix
	f.env = env(f.db)
	return f
}

func (f *fixture) stage(t *testing.T) *Stage { return newStage(t, f.env, f.cfg) }

func mustEncode(t *testing.T, e entry) []byte {
	t.Helper()
	raw, err := encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func putInventory(t *testing.T, db *store.DB, ip string, doc string) {
	t.Helper()
	if err := db.Exec(context.Background(), `INSERT INTO ip_inventory (ip_address, first_seen, last_seen, enrichment, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		ip, testNow, testNow, doc, testNow, testNow); err != nil {
		t.Fatalf("insert inventory row: %v", err)
	}
}

func putCacheRow(t *testing.T, db *store.DB, src, ip, value string, created time.Time) {
	t.Helper()
	if err := db.Exec(context.Background(), `INSERT INTO enrichment_cache (service, cache_key, cache_value, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		src, ip, value, created, created.Add(time.Hour)); err != nil {
		t.Fatalf("insert enrichment_cache row: %v", err)
	}
}

var tiers = []tier{
	{name: "redis", counter: "l1_hits", negative: true, put: func(t *testing.T, f *fixture, src, ip string, e entry) {
		// The Redis TTL is longer than the answer's age allows: freshness
		// must come from cached_at, not from Redis expiring the key.
		c := redisClient(t, f.cfg.RedisURL)
		if err := c.Set(context.Background(), f.prefix+":"+src+":"+ip, mustEncode(t, e), 24*time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}},
	{name: "inventory", counter: "l2_hits", put: func(t *testing.T, f *fixture, src, ip string, e entry) {
		putInventory(t, f.db, ip, fmt.Sprintf(`{%q: %s, "dshield": {"x": 1}}`, src, mustEncode(t, e)))
	}},
	{name: "enrichment_cache", counter: "l2_hits", negative: true, put: func(t *testing.T, f *fixture, src, ip string, e entry) {
		putCacheRow(t, f.db, src, ip, string(mustEncode(t, e)), testNow.Add(-time.Minute))
	}},
	{name: "files", counter: "l3_hits", negative: true, put: func(t *testing.T, f *fixture, src, ip string, e entry) {
		if err := (&files{dir: f.cfg.FileDir}).write(src, ip, e, time.Hour); err != nil {
			t.Fatal(err)
		}
	}},
}

// TestFreshness puts one answer per source and case into one tier at a
// time and checks which ones settle the source.
func TestFreshnessIntegration(t *testing.T) {
	type freshCase struct {
		name     string
		age      func(c *Config, src string) time.Duration // <0: put nothing
		negative bool
		hit      bool
	}
	cases := []freshCase{
		{name: "fresh", age: func(c *Config, src string) time.Duration { return c.ttl(src) - time.Hour }, hit: true},
		{name: "expired", age: func(c *Config, src string) time.Duration { return c.ttl(src) + time.Hour }},
		{name: "missing", age: func(*Config, string) time.Duration { return -1 }},
		{name: "negative fresh", negative: true, age: func(c *Config, _ string) time.Duration { return c.NegativeTTL - time.Minute }, hit: true},
		{name: "negative expired", negative: true, age: func(c *Config, _ string) time.Duration { return c.NegativeTTL + time.Minute }},
	}
	testdb.Dialects(t, func(t *testing.T, dbURL string) {
		for ti, tr := range tiers {
			t.Run(tr.name, func(t *testing.T) {
				f := newFixture(t, dbURL)
				st := f.stage(t)
				type probe struct {
					src string
					c   freshCase
					r   *pipeline.Record
				}
				var probes []probe
				var b pipeline.Batch
				n := 0
				for _, src := range sources {
					for _, c := range cases {
						if c.negative && !tr.negative {
							continue
						}
						n++
						ip := fmt.Sprintf("203.0.%d.%d", ti, n) // the tiers share the database
						if age := c.age(f.cfg, src); age >= 0 {
							e := entry{cachedAt: testNow.Add(-age)}
							if !c.negative {
								e.value = answerAt(src, e.cachedAt)
							}
							tr.put(t, f, src, ip, e)
						}
						r := records(ip)[0]
						b = append(b, r)
						probes = append(probes, probe{src, c, r})
					}
				}
				if _, err := st.Process(t.Context(), b); err != nil {
					t.Fatal(err)
				}
				hits := int64(0)
				for _, p := range probes {
					got := p.r.Source(p.src).State
					if !p.c.hit {
						if got != pipeline.StateNone {
							t.Errorf("%s %s: state %v, want untouched", p.src, p.c.name, got)
						}
						continue
					}
					hits++
					if got != pipeline.StateCached {
						t.Errorf("%s %s: state %v, want cached", p.src, p.c.name, got)
						continue
					}
					v, ok := p.r.Enrichment[p.src]
					if p.c.negative {
						if ok {
							t.Errorf("%s %s: enrichment %v, want none for a negative answer", p.src, p.c.name, v)
						}
						continue
					}
					want := answerAt(p.src, testNow.Add(-p.c.age(f.cfg, p.src)))
					if gj, wj := mustJSON(t, v), mustJSON(t, want); gj != wj {
						t.Errorf("%s %s: got %s\nwant %s", p.src, p.c.name, gj, wj)
					}
				}
				if got, _ := f.env.Progress.Value(tr.counter); got != hits {
					t.Errorf("%s = %d, want %d", tr.counter, got, hits)
				}
				if got, _ := f.env.Progress.Value("cache_hits"); got != hits {
					t.Errorf("cache_hits = %d, want %d", got, hits)
				}
				if got, _ := f.env.Progress.Value("cache_misses"); got != int64(3*len(b))-hits {
					t.Errorf("cache_misses = %d, want %d", got, int64(3*len(b))-hits)
				}
				if got, _ := f.env.Progress.Value("cache_errors"); got != 0 {
					t.Errorf("cache_errors = %d, want 0", got)
				}
			})
		}
	})
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNotInInventoryIntegration: a record its source found absent from
// ip_inventory is not looked for there, and still is in enrichment_cache.
func TestNotInInventoryIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, dbURL string) {
		f := newFixture(t, dbURL)
		src := sources[0]
		e := entry{cachedAt: testNow.Add(-time.Minute)}
		e.value = answerAt(src, e.cachedAt)
		// The hint is wrong for 203.0.113.2 on purpose: the stage trusts it
		// and asks the provider instead, which costs a request, not a result.
		tiers[1].put(t, f, src, "203.0.113.1", e)
		tiers[1].put(t, f, src, "203.0.113.2", e)
		tiers[2].put(t, f, src, "203.0.113.3", e)
		b := records("203.0.113.1", "203.0.113.2", "203.0.113.3")
		b[1].NotInInventory, b[2].NotInInventory = true, true
		if _, err := f.stage(t).Process(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		for i, want := range []pipeline.SourceState{pipeline.StateCached, pipeline.StateNone, pipeline.StateCached} {
			if got := b[i].Source(src).State; got != want {
				t.Errorf("%s (NotInInventory %v): %s state %v, want %v", b[i].Raw, b[i].NotInInventory, src, got, want)
			}
		}
	})
}
