package inventory

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// benchRows is the number of addresses each measurement upserts;
// COWRIE_ENRICH_BENCH_IPS overrides it for BenchmarkUpsertVsSetBasedIntegration.
const benchRows = 100_000

// BenchmarkWriteIntegration measures upserted rows per second for several
// batch sizes. Each iteration inserts benchRows new addresses spread over
// 1,000 ASNs, each with sessions, MaxMind and Cymru data, as a refresh of
// new IPs would.
func BenchmarkWriteIntegration(b *testing.B) {
	for _, dialect := range []string{"postgres", "sqlite"} {
		for _, size := range []int{100, 500, 2000} {
			b.Run(fmt.Sprintf("%s/batch=%d", dialect, size), func(b *testing.B) {
				url := testdb.SQLiteURL(b)
				if dialect == "postgres" {
					url = testdb.PostgresURL(b)
				}
				db := testdb.Migrated(b, url)
				s := newTestSink(b, db, t0, func(c *Config) { c.BatchSize = size })
				var elapsed time.Duration
				for i := 0; b.Loop(); i++ {
					elapsed += writeAll(b, s, benchBatches(i, benchRows, size))
				}
				b.ReportMetric(float64(b.N*benchRows)/elapsed.Seconds(), "rows/s")
			})
		}
	}
}

// BenchmarkUpsertVsSetBasedIntegration compares the sink on PostgreSQL
// with the database's own limit for the same rows: one set-based INSERT …
// SELECT … ON CONFLICT DO UPDATE of every row the sink wrote, with the same
// JSON documents, into the same (emptied) table. Reported per batch size:
// the sink's rows/s, the reference's ref_rows/s and their ratio. The fill
// statements are off there (no sessions); the fills/ sub-benchmarks report
// what they cost when every address has benchSessionsPerIP sessions whose
// source_ip is still NULL, as on an upstream database.
func BenchmarkUpsertVsSetBasedIntegration(b *testing.B) {
	n := benchRows
	if v := os.Getenv("COWRIE_ENRICH_BENCH_IPS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("COWRIE_ENRICH_BENCH_IPS: %v", err)
		}
	}
	if os.Getenv(testdb.EnvPostgres) == "" {
		b.Skipf("%s is not set", testdb.EnvPostgres)
	}
	noFills := func(c *Config) { c.FillSessionIP, c.FillSnapshots = false, false }
	for _, size := range []int{2000, 5000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db := testdb.Migrated(b, testdb.PostgresURL(b))
			var sink, ref time.Duration
			for b.Loop() {
				truncateInventory(b, db)
				s := newTestSink(b, db, t0, func(c *Config) { noFills(c); c.BatchSize = size })
				sink += writeAll(b, s, benchBatches(0, n, size))
				ref += setBasedUpsert(b, db, n)
			}
			b.ReportMetric(float64(b.N*n)/sink.Seconds(), "rows/s")
			b.ReportMetric(float64(b.N*n)/ref.Seconds(), "ref_rows/s")
			b.ReportMetric(ref.Seconds()/sink.Seconds(), "ratio")
		})
	}

	fillIPs := max(n/10, 1)
	const size = 2000
	for _, fill := range []struct {
		name string
		mod  func(*Config)
	}{
		{"none", noFills},
		{"session_ip", func(c *Config) { c.FillSnapshots = false }},
		{"session_ip+snapshots", func(*Config) {}},
	} {
		b.Run(fmt.Sprintf("fills=%s/batch=%d", fill.name, size), func(b *testing.B) {
			db := testdb.Migrated(b, testdb.PostgresURL(b))
			var sink time.Duration
			for b.Loop() {
				truncateInventory(b, db)
				loadSessions(b, db, fillIPs)
				s := newTestSink(b, db, t0, func(c *Config) { fill.mod(c); c.BatchSize = size })
				sink += writeAll(b, s, benchBatches(0, fillIPs, size))
			}
			b.ReportMetric(float64(b.N*fillIPs)/sink.Seconds(), "rows/s")
			b.ReportMetric(float64(b.N*fillIPs*benchSessionsPerIP)/sink.Seconds(), "sessions/s")
		})
	}
}

// benchSessionsPerIP is how many sessions each address has in the fills
// sub-benchmarks.
const benchSessionsPerIP = 10

// writeAll writes the batches through s and returns the time it took.
func writeAll(b *testing.B, s *Sink, batches []pipeline.Batch) time.Duration {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	for _, batch := range batches {
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// truncateInventory empties the tables the sink writes, so that every
// iteration starts from the same state.
func truncateInventory(b *testing.B, db *store.DB) {
	b.Helper()
	execSQL(b, db, `TRUNCATE ip_inventory, asn_inventory, session_summaries, cowrie_enrich_dead_letters`)
	execSQL(b, db, `VACUUM ANALYZE ip_inventory, asn_inventory, session_summaries`)
}

// setBasedUpsert copies the n rows the sink wrote into a staging table,
// empties ip_inventory and writes them back with one INSERT … SELECT …
// ON CONFLICT DO UPDATE (the sink's own conflict clause); it returns the
// time of that statement alone.
func setBasedUpsert(b *testing.B, db *store.DB, n int) time.Duration {
	b.Helper()
	cols := `ip_address, current_asn, asn_last_verified, first_seen, last_seen, session_count,
    enrichment, enrichment_updated_at, created_at, updated_at, ip_types`
	execSQL(b, db, `DROP TABLE IF EXISTS bench_staging`)
	execSQL(b, db, `CREATE TABLE bench_staging AS SELECT `+cols+` FROM ip_inventory`)
	execSQL(b, db, `TRUNCATE ip_inventory`)
	execSQL(b, db, `VACUUM ANALYZE ip_inventory, bench_staging`)
	start := time.Now()
	tag, err := db.Pool.Exec(context.Background(), `INSERT INTO ip_inventory AS t `+ipColumns+`
SELECT `+cols+` FROM bench_staging
`+ipConflict(`t.enrichment || excluded.enrichment`, `'{}'::text[]`))
	elapsed := time.Since(start)
	if err != nil {
		b.Fatalf("set-based upsert: %v", err)
	}
	if tag.RowsAffected() != int64(n) {
		b.Fatalf("set-based upsert wrote %d rows, want %d", tag.RowsAffected(), n)
	}
	return elapsed
}

// loadSessions gives each of the first ips addresses of benchBatches
// benchSessionsPerIP sessions whose source_ip is NULL and whose address is
// only in the enrichment JSON, as upstream's loader leaves them for an
// address not yet in the inventory.
func loadSessions(b *testing.B, db *store.DB, ips int) {
	b.Helper()
	i := 0
	_, err := db.Pool.CopyFrom(context.Background(), pgx.Identifier{"session_summaries"},
		[]string{"session_id", "first_event_at", "last_event_at", "enrichment"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == ips*benchSessionsPerIP {
				return nil, nil
			}
			ip := benchAddr(0, i%ips)
			i++
			return []any{fmt.Sprintf("%016x", uint64(i)*0x9E3779B97F4A7C15), first, last,
				`{"session":{"` + ip + `":{}}}`}, nil
		}))
	if err != nil {
		b.Fatalf("load sessions: %v", err)
	}
	execSQL(b, db, `VACUUM ANALYZE session_summaries`)
}

// benchAddr is address n of iteration.
func benchAddr(iteration, n int) string {
	a := [4]byte{byte(10 + iteration), byte(n >> 16), byte(n >> 8), byte(n)}
	return netip.AddrFrom4(a).String()
}

// benchBatches returns n records with addresses unique to iteration, in
// batches of size.
func benchBatches(iteration, n, size int) []pipeline.Batch {
	var out []pipeline.Batch
	var batch pipeline.Batch
	for i := range n {
		batch = append(batch, benchRecord(benchAddr(iteration, i), i))
		if len(batch) == size {
			out = append(out, batch)
			batch = nil
		}
	}
	if len(batch) > 0 {
		out = append(out, batch)
	}
	return out
}

// benchRecord is address number n as a refresh of a new IP leaves it:
// sessions, an ASN out of 1,000, and full MaxMind and Cymru answers (about
// 800 bytes of JSON with _meta, like a real enrichment).
func benchRecord(ip string, n int) *pipeline.Record {
	r := rec(ip)
	withSessions(r, int64(n%50+1), first, last)
	asn := int64(64512 + n%1000)
	withASN(r, asn, "EXAMPLE-NET Example Networks, Inc.", "US", "arin")
	lat, lon, radius := 37.751+float64(n%100)/1000, -97.822, 1000
	r.Set(pipeline.SourceMaxMind, &pipeline.MaxMindResult{
		Country: "US", CountryName: "United States", City: "Ashburn",
		Latitude: &lat, Longitude: &lon, ASN: &asn, ASNOrg: "EXAMPLE-NET Example Networks, Inc.",
		AccuracyRadius: &radius, Network: ip + "/24",
		DatabaseBuild: pipeline.At(t0.Add(-72 * time.Hour)), CachedAt: pipeline.At(t0),
	})
	r.Set(pipeline.SourceCymru, &pipeline.CymruResult{
		ASN: &asn, ASNOrg: "EXAMPLE-NET - Example Networks, Inc., US", Country: "US",
		Registry: "arin", Prefix: ip + "/24", AllocationDate: "2011-03-14", CachedAt: pipeline.At(t0),
	})
	return r
}
