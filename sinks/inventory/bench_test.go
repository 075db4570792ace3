package inventory

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
					batches := benchBatches(i, benchRows, size)
					start := time.Now()
					writeAll(b, s, batches)
					elapsed += time.Since(start)
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
// statements are off there (no sessions); the fills= sub-benchmarks report
// what they cost when every address has benchSessionsPerIP sessions whose
// source_ip is still NULL, as on an upstream database.
//
// Wall times swing with whatever else the machine runs, so where the
// server runs on this machine the CPU time its backend spent is reported
// too (srv_us/row and ref_srv_us/row, and their srv_ratio), with the CPU
// time of this process while the sink wrote (go_us/row).
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
			db, backend := benchDB(b)
			var sink, ref usage
			for b.Loop() {
				truncateInventory(b, db)
				s := newTestSink(b, db, t0, func(c *Config) { noFills(c); c.BatchSize = size })
				batches := benchBatches(0, n, size)
				sink.add(measure(backend, func() { writeAll(b, s, batches) }))
				ref.add(setBasedUpsert(b, db, backend, n))
			}
			rows := float64(b.N * n)
			b.ReportMetric(rows/sink.wall.Seconds(), "rows/s")
			b.ReportMetric(rows/ref.wall.Seconds(), "ref_rows/s")
			b.ReportMetric(ref.wall.Seconds()/sink.wall.Seconds(), "ratio")
			if sink.server > 0 && ref.server > 0 {
				b.ReportMetric(float64(sink.server.Microseconds())/rows, "srv_us/row")
				b.ReportMetric(float64(ref.server.Microseconds())/rows, "ref_srv_us/row")
				b.ReportMetric(ref.server.Seconds()/sink.server.Seconds(), "srv_ratio")
				b.ReportMetric(float64(sink.client.Microseconds())/rows, "go_us/row")
			}
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
			db, backend := benchDB(b)
			var sink usage
			for b.Loop() {
				truncateInventory(b, db)
				loadSessions(b, db, fillIPs)
				s := newTestSink(b, db, t0, func(c *Config) { fill.mod(c); c.BatchSize = size })
				batches := benchBatches(0, fillIPs, size)
				sink.add(measure(backend, func() { writeAll(b, s, batches) }))
			}
			rows := float64(b.N * fillIPs)
			b.ReportMetric(rows/sink.wall.Seconds(), "rows/s")
			b.ReportMetric(rows*benchSessionsPerIP/sink.wall.Seconds(), "sessions/s")
			if sink.server > 0 {
				b.ReportMetric(float64(sink.server.Microseconds())/rows, "srv_us/row")
			}
		})
	}
}

// benchDB returns a migrated PostgreSQL schema whose pool holds a single
// connection, and the pid of that connection's server process.
func benchDB(b *testing.B) (*store.DB, int) {
	b.Helper()
	db := testdb.Migrated(b, testdb.PostgresURL(b)+"&pool_max_conns=1")
	var pid int
	if err := db.Pool.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		b.Fatalf("backend pid: %v", err)
	}
	return db, pid
}

// usage is what a measured step cost: its wall time, and the CPU time the
// database backend and this process spent on it (zero where /proc does
// not show them, such as for a server on another machine).
type usage struct {
	wall, server, client time.Duration
}

func (u *usage) add(o usage) {
	u.wall += o.wall
	u.server += o.server
	u.client += o.client
}

// measure runs f and returns its usage; backend is the pid of the server
// process of the connection f uses.
func measure(backend int, f func()) usage {
	srv0, _ := cpuTime(backend)
	cli0, _ := cpuTime(os.Getpid())
	start := time.Now()
	f()
	wall := time.Since(start)
	srv1, okSrv := cpuTime(backend)
	cli1, okCli := cpuTime(os.Getpid())
	u := usage{wall: wall}
	if okSrv && okCli {
		u.server, u.client = srv1-srv0, cli1-cli0
	}
	return u
}

// cpuTime returns the user and system CPU time process pid has used, from
// /proc/<pid>/stat (in clock ticks, 100 a second on Linux); ok is false
// where that file cannot be read.
func cpuTime(pid int) (d time.Duration, ok bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces; utime and stime
	// are the 12th and 13th fields after it.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	var ticks int64
	for _, v := range f[11:13] {
		t, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += t
	}
	return time.Duration(ticks) * 10 * time.Millisecond, true
}

// benchSessionsPerIP is how many sessions each address has in the fills
// sub-benchmarks.
const benchSessionsPerIP = 10

// writeAll writes the batches through s.
func writeAll(b *testing.B, s *Sink, batches []pipeline.Batch) {
	b.Helper()
	ctx := context.Background()
	for _, batch := range batches {
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
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
// usage of that statement alone.
func setBasedUpsert(b *testing.B, db *store.DB, backend, n int) usage {
	b.Helper()
	cols := `ip_address, current_asn, asn_last_verified, first_seen, last_seen, session_count,
    enrichment, enrichment_updated_at, created_at, updated_at, ip_types`
	execSQL(b, db, `DROP TABLE IF EXISTS bench_staging`)
	execSQL(b, db, `CREATE TABLE bench_staging AS SELECT `+cols+` FROM ip_inventory`)
	execSQL(b, db, `TRUNCATE ip_inventory`)
	execSQL(b, db, `VACUUM ANALYZE ip_inventory, bench_staging`)
	var tag pgconn.CommandTag
	var err error
	u := measure(backend, func() {
		tag, err = db.Pool.Exec(context.Background(), `INSERT INTO ip_inventory AS t `+ipColumns+`
SELECT `+cols+` FROM bench_staging
`+ipConflict(`t.enrichment || excluded.enrichment`, `'{}'::text[]`))
	})
	if err != nil {
		b.Fatalf("set-based upsert: %v", err)
	}
	if tag.RowsAffected() != int64(n) {
		b.Fatalf("set-based upsert wrote %d rows, want %d", tag.RowsAffected(), n)
	}
	return u
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
