package greynoise

import (
	"fmt"
	"testing"

	fake "github.com/cowrie-enrich/cowrie-enrich/internal/simulate/greynoise"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

// benchBatch is a batch of n routable-looking addresses, a third of them
// known to the fake.
func benchBatch(n int) pipeline.Batch {
	b := make(pipeline.Batch, n)
	for i := range b {
		b[i] = record(fmt.Sprintf("45.%d.%d.%d", 80+i/65536, i/256%256, i%256), int64(i%7))
	}
	return b
}

func benchRecords(n int) map[string]fake.Record {
	m := map[string]fake.Record{}
	for i := 0; i < n; i += 3 {
		m[fmt.Sprintf("45.%d.%d.%d", 80+i/65536, i/256%256, i%256)] = fake.Record{Noise: true, Classification: "malicious", LastSeen: "2025-11-20"}
	}
	return m
}

// runBench processes batches of n addresses against srv and reports
// lookups per second.
func runBench(b *testing.B, srv *fake.Server, cfg *Config, n int) {
	defer srv.Close()
	st, err := New(pipelinetest.Env("greynoise"), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer st.(*Stage).Close()
	for b.Loop() {
		if _, err := st.Process(b.Context(), benchBatch(n)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkCommunity measures lookups per second on the Community API when
// the rate is not the limit: client, fake and JSON costs only.
func BenchmarkCommunity(b *testing.B) {
	const n = 500
	srv := fake.New(fake.Options{Records: benchRecords(n)})
	cfg := testConfig(srv)
	cfg.Rate, cfg.Concurrency = 1e6, 8
	runBench(b, srv, cfg, n)
}

// BenchmarkEnterpriseMulti measures a paid key's POST /v3/ip: 5,000
// addresses in one request.
func BenchmarkEnterpriseMulti(b *testing.B) {
	const n = 5000
	srv := fake.New(fake.Options{Key: "k", Records: benchRecords(n)})
	cfg := testConfig(srv)
	cfg.API, cfg.APIKey = APIEnterprise, "k"
	runBench(b, srv, cfg, n)
}
