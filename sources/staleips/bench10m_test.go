package staleips_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/memstat"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/migrations"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// EnvBenchSessions sets the number of sessions of
// BenchmarkStaleIPs10MIntegration (default 200,000; the figures in the
// notes use 10,000,000).
const EnvBenchSessions = "COWRIE_ENRICH_BENCH_SESSIONS"

// EnvBenchFilled, set to 1, gives every session of
// BenchmarkStaleIPs10MIntegration its source_ip, as on a database this tool
// keeps and as the plain candidate query assumes; by default the sessions
// of the addresses ip_inventory lacks (2%) have only their JSON address, as
// upstream's loader leaves them.
const EnvBenchFilled = "COWRIE_ENRICH_BENCH_FILLED"

// plainCandidatesSQL is the reference the stale-IP source is measured
// against: the candidate query a person would type into psql, grouping on
// the raw source_ip with an anti-join on fresh inventory rows, without the
// JSON-only sessions, canonicalisation or ordering the source adds.
const plainCandidatesSQL = `SELECT a.source_ip, a.first_seen, a.last_seen, a.session_count
FROM (SELECT source_ip, MIN(first_event_at) AS first_seen, MAX(last_event_at) AS last_seen, COUNT(*) AS session_count
      FROM session_summaries WHERE source_ip IS NOT NULL GROUP BY source_ip) AS a
WHERE NOT EXISTS (SELECT 1 FROM ip_inventory AS i WHERE i.ip_address = a.source_ip AND i.enrichment_updated_at >= $1)`

// bench10MInventorySQL fills ip_inventory with addresses 0 to $1-1 (from
// 1.0.0.0 up) as of $2: every 50th address is absent (its sessions have
// only the JSON address, as upstream's loader leaves them), of the others
// a quarter is stale, a quarter never enriched and half fresh. Enrichment
// is a realistic maxmind/cymru/greynoise document.
const bench10MInventorySQL = `INSERT INTO ip_inventory (ip_address, first_seen, last_seen, session_count, enrichment, enrichment_updated_at)
SELECT a.ip, $2::timestamptz - interval '90 days', $2::timestamptz, 10,
  ('{"maxmind":{"country":"US","country_name":"United States","city":"Ashburn","latitude":39.04,"longitude":-77.49,"asn":14618,"asn_org":"AMAZON-AES","accuracy_radius":1000,"network":"' || a.ip || '/32","cached_at":"2025-05-01T00:00:00+00:00"},'
   '"cymru":{"asn":14618,"asn_org":"AMAZON-AES, US","country":"US","registry":"arin","prefix":"' || a.ip || '/24","allocation_date":"2011-01-01","cached_at":"2025-05-01T00:00:00+00:00"},'
   '"greynoise":{"noise":true,"riot":false,"classification":"malicious","name":"unknown","last_seen":"2025-05-01T00:00:00+00:00","cached_at":"2025-05-01T00:00:00+00:00"}}')::jsonb,
  CASE i % 4 WHEN 1 THEN $2::timestamptz - interval '1000 hours' WHEN 2 THEN NULL ELSE $2::timestamptz - interval '24 hours' END
FROM generate_series(0, $1::bigint - 1) AS i,
LATERAL (SELECT ((i + 16777216) >> 24 & 255) || '.' || ((i + 16777216) >> 16 & 255) || '.' || ((i + 16777216) >> 8 & 255) || '.' || ((i + 16777216) & 255) AS ip) AS a
WHERE i % 50 <> 0`

// bench10MSessionsSQL inserts sessions $3 to $4-1 of $2 over $1 addresses
// (session j belongs to address j mod $1), spread over the 90 days before
// $5, each with upstream's session enrichment document (about 430 bytes).
// Sessions of addresses absent from the inventory have a NULL source_ip
// (2% of the sessions) unless $6 is true.
const bench10MSessionsSQL = `INSERT INTO session_summaries (session_id, source_ip, first_event_at, last_event_at, event_count, command_count, login_attempts, enrichment, created_at, updated_at)
SELECT lpad(to_hex(j), 12, '0'),
  CASE WHEN k.i % 50 = 0 AND NOT $6::boolean THEN NULL ELSE a.ip END,
  t.first, t.first + (j % 600) * interval '1 second', 20 + j % 30, j % 7, j % 11,
  ('{"session":{"' || a.ip || '":{"dshield":{"ip":{"asabusecontact":"abuse@example.net","number":"' || a.ip || '","count":"' || (j % 97) || '","attacks":"' || (j % 13) || '","maxdate":"2025-05-01","mindate":"2025-03-01","updated":"2025-05-02 10:00:00","comment":null,"maxrisk":"0","asname":"EXAMPLE-AS","ascountry":"US","as":"64512","network":"' || a.ip || '/24","threatfeeds":{}}},"urlhaus":"","spur":["","","","","","","","","","","","","","","","",""]}},"virustotal":null}')::json,
  t.first, t.first
FROM generate_series($3::bigint, $4::bigint - 1) AS j,
LATERAL (SELECT j % $1::bigint AS i) AS k,
LATERAL (SELECT ((k.i + 16777216) >> 24 & 255) || '.' || ((k.i + 16777216) >> 16 & 255) || '.' || ((k.i + 16777216) >> 8 & 255) || '.' || ((k.i + 16777216) & 255) AS ip) AS a,
LATERAL (SELECT $5::timestamptz - interval '90 days' + j * (interval '90 days' / $2::bigint) AS first) AS t`

// loadBench10M builds upstream's schema (all of its indexes), migrates it,
// and generates the data server-side. The session indexes are dropped for
// the load and rebuilt after it, and the foreign key from source_ip is
// re-added NOT VALID (the data satisfies it), which is much faster than
// maintaining them row by row and leaves the same schema.
func loadBench10M(b *testing.B, db *store.DB, sessions, ips int, filled bool) {
	ctx := context.Background()
	f := fixture{b, db}
	f.loadUpstream()
	if _, err := migrations.Apply(ctx, db); err != nil {
		b.Fatalf("migrate: %v", err)
	}
	exec := func(q string, args ...any) {
		b.Helper()
		if _, err := db.Pool.Exec(ctx, q, args...); err != nil {
			b.Fatalf("exec %.60q: %v", q, err)
		}
	}
	exec("ALTER TABLE session_summaries DROP CONSTRAINT fk_session_source_ip")
	exec(bench10MInventorySQL, ips, now)
	rows, err := db.Pool.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename = 'session_summaries' AND indexname <> 'session_summaries_pkey'`)
	if err != nil {
		b.Fatal(err)
	}
	var names, defs []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			b.Fatal(err)
		}
		names, defs = append(names, name), append(defs, def)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	for _, name := range names {
		exec("DROP INDEX " + name)
	}
	// Two halves at once: one INSERT … SELECT uses one core.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for h := range 2 {
		wg.Go(func() {
			_, errs[h] = db.Pool.Exec(ctx, bench10MSessionsSQL, ips, sessions, h*sessions/2, (h+1)*sessions/2, now, filled)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatalf("insert sessions: %v", err)
		}
	}
	for _, def := range defs {
		exec(def)
	}
	exec("ALTER TABLE session_summaries ADD CONSTRAINT fk_session_source_ip FOREIGN KEY (source_ip) REFERENCES ip_inventory (ip_address) NOT VALID")
	exec("VACUUM ANALYZE ip_inventory")
	exec("VACUUM ANALYZE session_summaries")
}

// bench10MCandidates returns how many addresses of loadBench10M's data are
// stale: the absent ones, the stale ones and the never enriched ones.
func bench10MCandidates(ips int) int64 {
	var n int64
	for i := range ips {
		if i%50 == 0 || i%4 == 1 || i%4 == 2 {
			n++
		}
	}
	return n
}

// BenchmarkStaleIPs10MIntegration measures the stale_ips source on
// PostgreSQL against the plain candidate query (plainCandidatesSQL) on the
// same data in the same run: $COWRIE_ENRICH_BENCH_SESSIONS sessions
// (default 200,000) over a tenth as many addresses, upstream's schema and
// indexes, 2% of the sessions with a NULL source_ip (none with
// $COWRIE_ENRICH_BENCH_FILLED=1). It reports the plain
// query's time (all rows read through pgx, default session settings, as
// psql runs it), the source's time to its first and last record, their
// ratio, the peak Go heap during Run and the process's peak RSS.
//
//	COWRIE_ENRICH_BENCH_SESSIONS=10000000 go test ./sources/staleips \
//	    -run '^$' -bench StaleIPs10M -benchtime 1x -timeout 60m
func BenchmarkStaleIPs10MIntegration(b *testing.B) {
	sessions := 200_000
	if v := os.Getenv(EnvBenchSessions); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			b.Fatalf("%s=%q: want a number of sessions of at least 100", EnvBenchSessions, v)
		}
		sessions = n
	}
	ips := sessions / 10
	db := testdb.Open(b, testdb.PostgresURL(b))
	start := time.Now()
	filled := os.Getenv(EnvBenchFilled) == "1"
	loadBench10M(b, db, sessions, ips, filled)
	b.Logf("generated %d sessions over %d addresses (every source_ip filled: %t) in %s", sessions, ips, filled, time.Since(start).Round(time.Second))
	want := bench10MCandidates(ips)
	src := newSource(b, db, 0)
	ctx := context.Background()

	var plainSum, firstSum, totalSum time.Duration
	var peakHeap, peakRSS uint64
	runs := 0
	for b.Loop() {
		start := time.Now()
		rows, err := db.Pool.Query(ctx, plainCandidatesSQL, now.Add(-720*time.Hour))
		if err != nil {
			b.Fatalf("plain query: %v", err)
		}
		plain := 0
		for rows.Next() {
			plain++
		}
		if err := rows.Err(); err != nil {
			b.Fatalf("plain query: %v", err)
		}
		plainSum += time.Since(start)
		if plain == 0 {
			b.Fatal("plain query found no candidates")
		}

		memstat.ResetPeakRSS()
		stop := sampleHeap(&peakHeap)
		start = time.Now()
		var n int64
		err = src.Run(ctx, func(*pipeline.Record) error {
			if n == 0 {
				firstSum += time.Since(start)
			}
			n++
			return nil
		})
		totalSum += time.Since(start)
		stop()
		if err != nil {
			b.Fatalf("Run: %v", err)
		}
		if n != want {
			b.Fatalf("emitted %d records, want %d", n, want)
		}
		peakRSS = max(peakRSS, memstat.PeakRSS())
		runs++
	}
	if total, err := src.Total(ctx); err != nil || total != want {
		b.Fatalf("Total = %d, %v; want %d", total, err, want)
	}
	b.ReportMetric(plainSum.Seconds()/float64(runs), "s_plain_query")
	b.ReportMetric(firstSum.Seconds()/float64(runs), "s_first_record")
	b.ReportMetric(totalSum.Seconds()/float64(runs), "s_source_total")
	b.ReportMetric(totalSum.Seconds()/plainSum.Seconds(), "ratio_source/plain")
	b.ReportMetric(float64(want), "records")
	b.ReportMetric(float64(peakHeap)/(1<<20), "MB_peak_heap")
	b.ReportMetric(float64(peakRSS)/(1<<20), "MB_peak_rss")
}
