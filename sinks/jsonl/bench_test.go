package jsonl

import (
	"encoding/json"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// benchBatch is a batch as enrich-list hands it to the sink: looked-up
// addresses, a few misses and bogons.
func benchBatch() pipeline.Batch {
	b := make(pipeline.Batch, 256)
	build, cached := pipeline.At(time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)), pipeline.At(time.Now())
	for i := range b {
		r := pipeline.NewRecord(netip.AddrFrom4([4]byte{81, 2, byte(i >> 8), byte(i)}).String())
		r.Addr = netip.MustParseAddr(r.Raw)
		r.Received = time.Now()
		switch {
		case i%16 == 15:
			r.Validation = &pipeline.Validation{IsBogon: true, Reason: "private"}
		case i%12 == 11:
			r.Validation = &pipeline.Validation{}
			r.Set(pipeline.SourceMaxMind, nil)
		default:
			r.Validation = &pipeline.Validation{}
			lat, lon, radius, asn := 51.5142, -0.0931, 10, int64(20712)
			m := &pipeline.MaxMindResult{Country: "GB", CountryName: "United Kingdom", City: "London", Latitude: &lat, Longitude: &lon,
				ASN: &asn, ASNOrg: "Andrews & Arnold Ltd", AccuracyRadius: &radius, Network: "81.2.69.0/24", DatabaseBuild: build, CachedAt: cached}
			r.Set(pipeline.SourceMaxMind, m)
			r.ASN = m.ASNInfo()
		}
		b[i] = r
	}
	return b
}

// BenchmarkWrite measures lines per second: "sink" is Write as the
// pipeline calls it, "encoding/json" the same lines through the generic
// encoder, as the sink wrote them before.
// Run: go test -run '^$' -bench Write -cpu 1 ./sinks/jsonl/
func BenchmarkWrite(b *testing.B) {
	batch := benchBatch()
	b.Run("sink", func(b *testing.B) {
		s, err := New(pipeline.Env{RunID: "run", Pipeline: "enrich-list"}, &Config{Stdout: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Write(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "lines/s")
	})
	b.Run("encoding/json", func(b *testing.B) {
		enc := json.NewEncoder(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			now := time.Now()
			for _, r := range batch {
				if err := enc.Encode(newLine(r, "run", "enrich-list", now)); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "lines/s")
	})
}
