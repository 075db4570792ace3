package inventory

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// benchRows is the number of addresses each measurement upserts.
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
				ctx := context.Background()
				var elapsed time.Duration
				for i := 0; b.Loop(); i++ {
					batches := benchBatches(i, size)
					start := time.Now()
					for _, batch := range batches {
						if err := s.Write(ctx, batch); err != nil {
							b.Fatal(err)
						}
					}
					elapsed += time.Since(start)
				}
				b.ReportMetric(float64(b.N*benchRows)/elapsed.Seconds(), "rows/s")
			})
		}
	}
}

// benchBatches returns benchRows records with addresses unique to
// iteration, in batches of size.
func benchBatches(iteration, size int) []pipeline.Batch {
	base := netip.AddrFrom4([4]byte{byte(10 + iteration), 0, 0, 0}).As4()
	var out []pipeline.Batch
	var batch pipeline.Batch
	for n := range benchRows {
		a := base
		a[1], a[2], a[3] = byte(n>>16), byte(n>>8), byte(n)
		r := rec(netip.AddrFrom4(a).String())
		withSessions(r, int64(n%50+1), first, last)
		withASN(r, int64(64512+n%1000), "Example Net", "US", "arin")
		withMaxMind(r, "US")
		r.Set(pipeline.SourceCymru, map[string]any{"asn": 64512 + n%1000, "prefix": "10.0.0.0/8", "registry": "arin"})
		batch = append(batch, r)
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
