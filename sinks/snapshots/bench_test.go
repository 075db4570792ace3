package snapshots_test

import (
	"context"
	"fmt"
	"github.com/cowrie-enrich/cowrie-enrich/internal/memstat"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/snapshots"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// benchSessions and benchIPs size the benchmark; override with
// COWRIE_ENRICH_BENCH_SESSIONS to measure a smaller dataset.
const (
	benchSessions = 2_000_000
	benchIPs      = 300_000
)

func benchIP(i int) string {
	i += 1 << 24
	return fmt.Sprintf("%d.%d.%d.%d", i>>24&255, i>>16&255, i>>8&255, i&255)
}

// upstreamIndexes are upstream's v16 indexes on session_summaries.
var upstreamIndexes = []string{
	"CREATE INDEX IF NOT EXISTS idx_session_source_ip ON session_summaries (source_ip)",
	"CREATE INDEX IF NOT EXISTS idx_session_first_event_brin ON session_summaries USING brin (first_event_at)",
	"CREATE INDEX IF NOT EXISTS idx_session_last_event_brin ON session_summaries USING brin (last_event_at)",
	"CREATE INDEX IF NOT EXISTS idx_session_snapshot_asn ON session_summaries (snapshot_asn)",
	"CREATE INDEX IF NOT EXISTS idx_session_snapshot_country ON session_summaries (snapshot_country)",
}

// loadBench fills a migrated schema: every address enriched in the
// inventory, one session in twenty with a NULL source_ip and its address
// only in the enrichment JSON.
func loadBench(b *testing.B, db *store.DB, sessions int) {
	ctx := context.Background()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.Pool.Exec(ctx, "INSERT INTO asn_inventory (asn_number) SELECT g FROM generate_series(64500, 64599) g"); err != nil {
		b.Fatal(err)
	}
	i := 0
	if _, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"ip_inventory"},
		[]string{"ip_address", "current_asn", "first_seen", "last_seen", "session_count", "enrichment", "enrichment_updated_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == benchIPs {
				return nil, nil
			}
			doc := `{"maxmind":{"country":"DE"}}`
			if i%10 == 0 {
				doc = `{}` // geo_country XX
			}
			i++
			return []any{benchIP(i - 1), int64(64500 + i%100), base, base, 1, doc, base}, nil
		})); err != nil {
		b.Fatal(err)
	}
	j := 0
	if _, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"session_summaries"},
		[]string{"session_id", "source_ip", "first_event_at", "last_event_at", "enrichment"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if j == sessions {
				return nil, nil
			}
			ip := benchIP(j % benchIPs)
			at := base.Add(time.Duration(j) * time.Second)
			id := fmt.Sprintf("%016x", uint64(j)*0x9E3779B97F4A7C15) // random order, like Cowrie's hex ids
			var src any = ip
			doc := `{"dshield":{"ip":{"number":"` + ip + `"}}}`
			if j%20 == 0 {
				src = nil
				doc = `{"session":{"` + ip + `":{}}}`
			}
			j++
			return []any{id, src, at, at, doc}, nil
		})); err != nil {
		b.Fatal(err)
	}
	for _, q := range append(upstreamIndexes, "VACUUM ANALYZE session_summaries", "VACUUM ANALYZE ip_inventory") {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
}

// BenchmarkSnapshotBackfillIntegration compares the resumable chunked
// sweep with the database's own limit: one UPDATE … FROM over the same
// sessions (same SET list and join) on an identical copy in a second
// schema. Reported: sessions per second of both, their ratio, and the
// process's peak RSS during the sweep.
func BenchmarkSnapshotBackfillIntegration(b *testing.B) {
	n := benchSessions
	if v := os.Getenv("COWRIE_ENRICH_BENCH_SESSIONS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	chunk := snapshots.DefaultChunkSize
	if v := os.Getenv("COWRIE_ENRICH_BENCH_CHUNK"); v != "" {
		chunk, _ = strconv.Atoi(v)
	}
	for b.Loop() {
		ref := testdb.Migrated(b, testdb.PostgresURL(b))
		ours := testdb.Migrated(b, testdb.PostgresURL(b))
		loadBench(b, ref, n)
		loadBench(b, ours, n)
		ctx := context.Background()

		start := time.Now()
		tag, err := ref.Pool.Exec(ctx, snapshots.ReferenceSQL())
		if err != nil {
			b.Fatalf("reference update: %v", err)
		}
		refSecs := time.Since(start).Seconds()

		memstat.ResetPeakRSS()
		start = time.Now()
		res, err := backfill(b, ours, snapshots.Options{ChunkSize: chunk})
		if err != nil {
			b.Fatalf("backfill: %v", err)
		}
		ourSecs := time.Since(start).Seconds()
		if res.Written != tag.RowsAffected() || res.Written != int64(n) {
			b.Fatalf("backfill wrote %d sessions, reference %d, want %d", res.Written, tag.RowsAffected(), n)
		}
		b.ReportMetric(float64(n)/refSecs, "ref_sessions/s")
		b.ReportMetric(float64(n)/ourSecs, "sessions/s")
		b.ReportMetric(refSecs/ourSecs, "ratio")
		b.ReportMetric(float64(memstat.PeakRSS())/(1<<20), "MB_peak_rss")
	}
}
