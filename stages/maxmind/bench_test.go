package maxmind

import (
	"net/netip"
	"testing"
	"time"

	"github.com/oschwald/geoip2-golang/v2"

	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate/geolite"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

// benchAddrs returns n addresses spread over the sample networks, one in
// eight a miss, as a honeypot's attackers mix known and unknown networks.
func benchAddrs(n int) []netip.Addr {
	nets := geolite.Sample()
	misses := []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2001:4860::8888")}
	out := make([]netip.Addr, n)
	for i := range out {
		if i%8 == 7 {
			out[i] = misses[i%len(misses)]
			continue
		}
		out[i] = nets[i%len(nets)].Addr()
	}
	return out
}

// BenchmarkLookup measures lookups per second: "reader" is the library
// alone (City and ASN per address, as the stage asks), "stage" is the
// stage's Process per record, including the records' bookkeeping.
// Run: go test -run '^$' -bench Lookup -cpu 1 ./stages/maxmind/
func BenchmarkLookup(b *testing.B) {
	build := time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)
	cityPath, asnPath, err := geolite.WriteFiles(b.TempDir(), geolite.Sample(), build)
	if err != nil {
		b.Fatal(err)
	}
	addrs := benchAddrs(512)

	b.Run("reader", func(b *testing.B) {
		city, err := geoip2.Open(cityPath)
		if err != nil {
			b.Fatal(err)
		}
		defer city.Close()
		asn, err := geoip2.Open(asnPath)
		if err != nil {
			b.Fatal(err)
		}
		defer asn.Close()
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			a := addrs[n%len(addrs)]
			n++
			if _, err := city.City(a); err != nil {
				b.Fatal(err)
			}
			if _, err := asn.ASN(a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lookups/s")
	})

	b.Run("stage", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.CityDB, cfg.ASNDB = cityPath, asnPath
		st, err := New(pipelinetest.Env("maxmind"), cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer st.(*Stage).Close()
		batch := make(pipeline.Batch, len(addrs))
		for i, a := range addrs {
			batch[i] = &pipeline.Record{Addr: a, Validation: &pipeline.Validation{}}
		}
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			for _, r := range batch {
				r.Sources, r.Enrichment, r.ASN = nil, nil, nil
			}
			if _, err := st.Process(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			n += len(batch)
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lookups/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/lookup")
	})
}
