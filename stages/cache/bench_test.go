package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// The lookup benchmarks put 100,000 addresses with all three answers in one
// tier and measure lookups (addresses answered) per second through Process,
// in batches of 500 as a pipeline would send them:
//
//	go test -run '^$' -bench 'BenchmarkLookup' -benchtime 1x ./stages/cache/
const (
	benchIPs   = 100_000
	benchBatch = 500
)

func benchAddrs() []string {
	out := make([]string, benchIPs)
	for i := range out {
		out[i] = fmt.Sprintf("11.%d.%d.%d", i/62500, i/250%250, i%250+1)
	}
	return out
}

// fetchedBatches returns the addresses as records answered by providers.
func fetchedBatches(ips []string, now time.Time) []pipeline.Batch {
	var out []pipeline.Batch
	for i := 0; i < len(ips); i += benchBatch {
		b := records(ips[i:min(i+benchBatch, len(ips))]...)
		for _, r := range b {
			r.Set("maxmind", maxmindAt(now))
			r.Set("cymru", cymruAt(now))
			r.Set("greynoise", greynoiseAt(now))
		}
		out = append(out, b)
	}
	return out
}

func benchLookups(b *testing.B, e pipeline.Env, cfg *Config, ips []string, wantHits int64) {
	st := newStage(b, e, cfg)
	ctx := context.Background()
	var elapsed time.Duration
	for b.Loop() {
		e.Progress = pipeline.NewProgress(time.Now())
		st.progress = e.Progress
		start := time.Now()
		for i := 0; i < len(ips); i += benchBatch {
			if _, err := st.Process(ctx, records(ips[i:min(i+benchBatch, len(ips))]...)); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(start)
		if got, _ := e.Progress.Value("cache_hits"); got != wantHits {
			b.Fatalf("cache_hits = %d; want %d", got, wantHits)
		}
	}
	b.ReportMetric(float64(len(ips)*b.N)/elapsed.Seconds(), "lookups/s")
}

func benchEnv() pipeline.Env {
	e := env(nil)
	e.Now = time.Now
	return e
}

// benchWrittenThrough writes every address's answers through the stage's
// own Committed, then measures lookups.
func benchWrittenThrough(b *testing.B, cfg *Config) {
	ips := benchAddrs()
	seed := newStage(b, benchEnv(), cfg)
	for _, batch := range fetchedBatches(ips, time.Now()) {
		if err := seed.Committed(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	benchLookups(b, benchEnv(), cfg, ips, 3*benchIPs)
}

func BenchmarkLookupL1Integration(b *testing.B) {
	url := redisURL(b)
	cfg := DefaultConfig()
	cfg.RedisURL, cfg.KeyPrefix = url, keyPrefix(b, url)
	benchWrittenThrough(b, cfg)
}

func BenchmarkLookupL2Integration(b *testing.B) {
	db := testdb.Migrated(b, testdb.PostgresURL(b))
	ips := benchAddrs()
	doc := fmt.Sprintf(`{"maxmind": %s, "cymru": %s, "greynoise": %s}`,
		mustJSON(b, maxmindAt(time.Now())), mustJSON(b, cymruAt(time.Now())), mustJSON(b, greynoiseAt(time.Now())))
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO ip_inventory (ip_address, first_seen, last_seen, enrichment)
SELECT ip, now(), now(), $1::jsonb FROM unnest($2::text[]) ip`, doc, ips); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(context.Background(), `ANALYZE ip_inventory`); err != nil {
		b.Fatal(err)
	}
	e := benchEnv()
	e.Store = db
	benchLookups(b, e, DefaultConfig(), ips, 3*benchIPs)
}

func BenchmarkLookupL3Integration(b *testing.B) {
	cfg := DefaultConfig()
	cfg.FileDir = b.TempDir()
	benchWrittenThrough(b, cfg)
}

// BenchmarkLookupMissIntegration asks all three tiers, all empty: the
// cost the cache adds to a run that finds nothing.
func BenchmarkLookupMissIntegration(b *testing.B) {
	url := redisURL(b)
	cfg := DefaultConfig()
	cfg.RedisURL, cfg.KeyPrefix, cfg.FileDir = url, keyPrefix(b, url), b.TempDir()
	e := benchEnv()
	e.Store = testdb.Migrated(b, testdb.PostgresURL(b))
	benchLookups(b, e, cfg, benchAddrs(), 0)
}

// BenchmarkDecode measures the decoding of one cached answer of each
// provider as encode stores it, which every lookup that hits a tier pays:
//
//	go test -run '^$' -bench BenchmarkDecode -benchmem ./stages/cache/
func BenchmarkDecode(b *testing.B) {
	at := pipeline.At(time.Date(2025, 5, 1, 10, 0, 0, 123456000, time.UTC))
	asn, lat, lon, radius := int64(14618), 39.04, -77.49, 1000
	answers := map[string]any{
		pipeline.SourceMaxMind: &pipeline.MaxMindResult{Country: "US", CountryName: "United States", City: "Ashburn", Latitude: &lat, Longitude: &lon,
			ASN: &asn, ASNOrg: "AMAZON-AES", AccuracyRadius: &radius, Network: "11.0.0.0/24", DatabaseBuild: at, CachedAt: at},
		pipeline.SourceCymru: &pipeline.CymruResult{ASN: &asn, ASNOrg: "AMAZON-AES, US", Country: "US", Registry: "arin",
			Prefix: "11.0.0.0/24", AllocationDate: "2011-01-01", CachedAt: at},
		pipeline.SourceGreyNoise: &pipeline.GreyNoiseResult{Noise: true, Classification: "malicious", Name: "unknown",
			LastSeen: "2025-05-01T00:00:00+00:00", CachedAt: at},
	}
	for _, src := range sources {
		raw, err := encode(entry{value: answers[src], cachedAt: at.Time})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(src, func(b *testing.B) {
			for b.Loop() {
				if _, ok, err := decode(src, raw); err != nil || !ok {
					b.Fatalf("decode %s: %v, %t", raw, err, ok)
				}
			}
		})
	}
}
