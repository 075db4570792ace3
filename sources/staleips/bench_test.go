package staleips_test

import (
	"context"
	"fmt"
	"github.com/cowrie-enrich/cowrie-enrich/internal/memstat"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// Benchmark dataset: 1,000,000 sessions over 200,000 addresses. A quarter
// of the addresses are fresh in ip_inventory, a quarter stale, a quarter
// never enriched and a quarter absent, so 150,000 are candidates. One
// session in twenty has a NULL source_ip and its address only in the
// enrichment JSON, as upstream's loader leaves new IPs.
const (
	benchSessions = 1_000_000
	benchIPs      = 200_000
)

func benchIP(i int) string {
	i += 1 << 24 // start at 1.0.0.0
	return fmt.Sprintf("%d.%d.%d.%d", i>>24&255, i>>16&255, i>>8&255, i&255)
}

// benchSession returns session j: id, source_ip (nil when only in JSON),
// first and last event, enrichment JSON.
func benchSession(j int) (string, any, time.Time, time.Time, string) {
	ip := benchIP(j % benchIPs)
	first := now.Add(-90 * 24 * time.Hour).Add(time.Duration(j) * 7777777 * time.Nanosecond).Truncate(time.Microsecond)
	last := first.Add(time.Duration(j%600) * time.Second)
	if j%20 == 0 {
		return "b" + strconv.Itoa(j), nil, first, last, `{"session":{"` + ip + `":{"dshield":{"ip":{"number":"` + ip + `","count":3}}}}}`
	}
	return "b" + strconv.Itoa(j), ip, first, last, `{"dshield":{"ip":{"number":"` + ip + `","count":3,"attacks":12}}}`
}

// benchEnriched returns when address i was enriched, and whether it is in
// the inventory at all.
func benchEnriched(i int) (any, bool) {
	switch i % 4 {
	case 0:
		return now.Add(-24 * time.Hour), true
	case 1:
		return now.Add(-1000 * time.Hour), true
	case 2:
		return nil, true
	}
	return nil, false
}

func loadBenchPostgres(b *testing.B, db *store.DB) {
	ctx := context.Background()
	j := 0
	_, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"session_summaries"},
		[]string{"session_id", "source_ip", "first_event_at", "last_event_at", "enrichment"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if j == benchSessions {
				return nil, nil
			}
			id, ip, first, last, doc := benchSession(j)
			j++
			return []any{id, ip, first, last, doc}, nil
		}))
	if err != nil {
		b.Fatalf("copy sessions: %v", err)
	}
	i := 0
	_, err = db.Pool.CopyFrom(ctx, pgx.Identifier{"ip_inventory"},
		[]string{"ip_address", "first_seen", "last_seen", "session_count", "enrichment_updated_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			for ; i < benchIPs; i++ {
				if at, ok := benchEnriched(i); ok {
					i++
					return []any{benchIP(i - 1), now, now, 5, at}, nil
				}
			}
			return nil, nil
		}))
	if err != nil {
		b.Fatalf("copy inventory: %v", err)
	}
	// Autovacuum would have run on a real database; without it the
	// planner has no statistics and index-only scans no visibility map.
	for _, table := range []string{"session_summaries", "ip_inventory"} {
		if _, err := db.Pool.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			b.Fatalf("vacuum: %v", err)
		}
	}
}

func loadBenchSQLite(b *testing.B, db *store.DB) {
	ctx := context.Background()
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	const perInsert = 500
	ts := store.FormatTime(now)
	insert := func(head, tuple string, n int, row func(k int) []any) {
		q := head + strings.TrimSuffix(strings.Repeat(tuple+",", perInsert), ",")
		stmt, err := tx.PrepareContext(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		defer stmt.Close()
		args := make([]any, 0, perInsert*8)
		flush := func(q string) {
			var err error
			if q == "" {
				_, err = stmt.ExecContext(ctx, args...)
			} else {
				_, err = tx.ExecContext(ctx, q, args...)
			}
			if err != nil {
				b.Fatal(err)
			}
			args = args[:0]
		}
		rows := 0
		for k := range n {
			r := row(k)
			if r == nil {
				continue
			}
			args = append(args, r...)
			if rows++; rows == perInsert {
				flush("")
				rows = 0
			}
		}
		if rows > 0 {
			flush(head + strings.TrimSuffix(strings.Repeat(tuple+",", rows), ","))
		}
	}
	insert("INSERT INTO session_summaries (session_id, source_ip, first_event_at, last_event_at, enrichment, created_at, updated_at) VALUES ",
		"(?, ?, ?, ?, ?, ?, ?)", benchSessions, func(j int) []any {
			id, ip, first, last, doc := benchSession(j)
			return []any{id, ip, store.FormatTime(first), store.FormatTime(last), doc, ts, ts}
		})
	insert("INSERT INTO ip_inventory (ip_address, first_seen, last_seen, session_count, enrichment_updated_at, created_at, updated_at) VALUES ",
		"(?, ?, ?, ?, ?, ?, ?)", benchIPs, func(i int) []any {
			at, ok := benchEnriched(i)
			if !ok {
				return nil
			}
			if t, isTime := at.(time.Time); isTime {
				at = store.FormatTime(t)
			}
			return []any{benchIP(i), ts, ts, 5, at, ts, ts}
		})
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.SQL.ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStaleIPsIntegration measures the stale_ips source on 1M
// sessions: seconds to the first record (the query's sort and aggregate),
// seconds to the last, the peak Go heap in use during Run, and the peak
// resident set of the process during Run (VmHWM after resetting it; for
// SQLite this includes the embedded engine's sort memory).
func BenchmarkStaleIPsIntegration(b *testing.B) {
	dialects := []struct {
		name string
		url  func(testing.TB) string
		load func(*testing.B, *store.DB)
	}{
		{"postgres", testdb.PostgresURL, loadBenchPostgres},
		{"sqlite", testdb.SQLiteURL, loadBenchSQLite},
	}
	for _, d := range dialects {
		b.Run(d.name, func(b *testing.B) {
			db := testdb.Migrated(b, d.url(b))
			d.load(b, db)
			src := newSource(b, db, 0)
			var firstSum, totalSum time.Duration
			var peakHeap, peakRSS uint64
			var n int64
			runs := 0
			for b.Loop() {
				memstat.ResetPeakRSS()
				stop := sampleHeap(&peakHeap)
				start := time.Now()
				n = 0
				err := src.Run(context.Background(), func(*pipeline.Record) error {
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
				peakRSS = max(peakRSS, memstat.PeakRSS())
				runs++
			}
			if n != benchIPs*3/4 {
				b.Fatalf("emitted %d records, want %d", n, benchIPs*3/4)
			}
			b.ReportMetric(firstSum.Seconds()/float64(runs), "s_first_record")
			b.ReportMetric(totalSum.Seconds()/float64(runs), "s_total")
			b.ReportMetric(float64(n), "records")
			b.ReportMetric(float64(peakHeap)/(1<<20), "MB_peak_heap")
			b.ReportMetric(float64(peakRSS)/(1<<20), "MB_peak_rss")
		})
	}
}

// sampleHeap records the largest HeapInuse seen until the returned stop
// function is called.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			*peak = max(*peak, m.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
