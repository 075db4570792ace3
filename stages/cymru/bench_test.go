package cymru_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	sim "github.com/cowrie-enrich/cowrie-enrich/internal/simulate/cymru"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

// BenchmarkThroughput measures the stage through the real runtime: 50,000
// addresses, each in its own routed /24 (so prefix reuse saves nothing),
// against the whois fake adding 150 ms to every answer, for each window
// size and concurrency. window=500/concurrency=1 is upstream's serial
// design (500 addresses per round trip, one at a time).
//
//	go test -run '^$' -bench Throughput -benchtime 1x ./stages/cymru/
func BenchmarkThroughput(b *testing.B) {
	const n = 50_000
	ips := make([]string, n)
	routes := make([]sim.Route, n)
	for i := range n {
		a := netip.AddrFrom4([4]byte{20 + byte(i>>16), byte(i >> 8), byte(i), 1})
		ips[i] = a.String()
		routes[i] = sim.Route{Prefix: netip.PrefixFrom(a, 24).Masked(), ASNs: []uint32{uint32(64496 + i%1000)},
			Country: "US", Registry: "arin", Allocated: "2001-01-01", ASName: fmt.Sprintf("AS-BENCH-%d, US", i%1000)}
	}
	table := sim.NewTable(routes...)
	for _, window := range []int{100, 500, 1000} {
		for _, conc := range []int{1, 2} {
			b.Run(fmt.Sprintf("window=%d/concurrency=%d", window, conc), func(b *testing.B) {
				w := sim.NewWhois(b, sim.WhoisOptions{Table: table, Latency: 150 * time.Millisecond})
				with := fmt.Sprintf("{whois_addr: %q, dns_server: 127.0.0.1:1, window: {size: %d, max_wait: 2s}, concurrency: %d, timeout: 30s}", w.Addr(), window, conc)
				var elapsed time.Duration
				for b.Loop() {
					start := time.Now()
					sink, _, _ := run(b, &pipelinetest.Source{IPs: ips}, with)
					elapsed += time.Since(start)
					for _, r := range sink.Records() {
						if r.Source(pipeline.SourceCymru).State != pipeline.StateSucceeded || r.ASN == nil {
							b.Fatalf("%s: cymru %+v, want an answer", r.IP(), r.Source(pipeline.SourceCymru))
						}
					}
				}
				b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "ips/s")
				b.ReportMetric(float64(len(w.Stats().Queries))/float64(b.N), "queries/op")
			})
		}
	}
}
