package iptype

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// Synthetic range files of the real sizes and formats (nothing can be
// downloaded): AWS ip-ranges.json ~9,000 prefixes, Google cloud.json
// ~1,000, Azure Service Tags ~70,000 prefixes across tags, about a fifth
// of each IPv6. Azure's regional tags repeat the prefixes of their parent
// tags, as the real file does.

func randomPrefix(rng *rand.Rand, v6 bool) string {
	if v6 {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], rng.Uint64())
		b[0] = 0x26
		return netip.PrefixFrom(netip.AddrFrom16(b), 32+rng.IntN(33)).Masked().String()
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], rng.Uint32())
	return netip.PrefixFrom(netip.AddrFrom4(b), 16+rng.IntN(17)).Masked().String()
}

type benchFiles struct{ aws, gcp, azure []byte }

func generate(b *testing.B) benchFiles {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	type awsP struct {
		IPPrefix string `json:"ip_prefix"`
		Region   string `json:"region"`
		Service  string `json:"service"`
		NBG      string `json:"network_border_group"`
	}
	type awsP6 struct {
		IPv6Prefix string `json:"ipv6_prefix"`
		Region     string `json:"region"`
		Service    string `json:"service"`
		NBG        string `json:"network_border_group"`
	}
	aws := struct {
		SyncToken    string  `json:"syncToken"`
		CreateDate   string  `json:"createDate"`
		Prefixes     []awsP  `json:"prefixes"`
		IPv6Prefixes []awsP6 `json:"ipv6_prefixes"`
	}{SyncToken: "1", CreateDate: "2025-11-20-12-00-00"}
	for i := range 9000 {
		if i%5 == 0 {
			aws.IPv6Prefixes = append(aws.IPv6Prefixes, awsP6{randomPrefix(rng, true), "us-east-1", "EC2", "us-east-1"})
		} else {
			aws.Prefixes = append(aws.Prefixes, awsP{randomPrefix(rng, false), "us-east-1", "EC2", "us-east-1"})
		}
	}
	type gcpP struct {
		IPv4Prefix string `json:"ipv4Prefix,omitempty"`
		IPv6Prefix string `json:"ipv6Prefix,omitempty"`
		Service    string `json:"service"`
		Scope      string `json:"scope"`
	}
	gcp := struct {
		SyncToken    string `json:"syncToken"`
		CreationTime string `json:"creationTime"`
		Prefixes     []gcpP `json:"prefixes"`
	}{SyncToken: "1", CreationTime: "2025-11-20T12:00:00.000000"}
	for i := range 1000 {
		p := gcpP{Service: "Google Cloud", Scope: "europe-west3"}
		if i%5 == 0 {
			p.IPv6Prefix = randomPrefix(rng, true)
		} else {
			p.IPv4Prefix = randomPrefix(rng, false)
		}
		gcp.Prefixes = append(gcp.Prefixes, p)
	}
	type props struct {
		ChangeNumber    int      `json:"changeNumber"`
		Region          string   `json:"region"`
		Platform        string   `json:"platform"`
		SystemService   string   `json:"systemService"`
		AddressPrefixes []string `json:"addressPrefixes"`
	}
	type tag struct {
		Name       string `json:"name"`
		ID         string `json:"id"`
		Properties props  `json:"properties"`
	}
	azure := struct {
		ChangeNumber int    `json:"changeNumber"`
		Cloud        string `json:"cloud"`
		Values       []tag  `json:"values"`
	}{ChangeNumber: 1, Cloud: "Public"}
	// 35,000 distinct prefixes in AzureCloud, each repeated by one of 100
	// regional tags: 70,000 entries.
	parent := tag{Name: "AzureCloud", ID: "AzureCloud", Properties: props{Platform: "Azure"}}
	regional := make([]tag, 100)
	for i := range regional {
		regional[i] = tag{Name: fmt.Sprintf("AzureCloud.region%d", i), ID: fmt.Sprintf("AzureCloud.region%d", i), Properties: props{Platform: "Azure"}}
	}
	for i := range 35000 {
		p := randomPrefix(rng, i%5 == 0)
		parent.Properties.AddressPrefixes = append(parent.Properties.AddressPrefixes, p)
		r := &regional[i%len(regional)]
		r.Properties.AddressPrefixes = append(r.Properties.AddressPrefixes, p)
	}
	azure.Values = append([]tag{parent}, regional...)
	var f benchFiles
	var err error
	for _, x := range []struct {
		dst *[]byte
		v   any
	}{{&f.aws, aws}, {&f.gcp, gcp}, {&f.azure, azure}} {
		if *x.dst, err = json.Marshal(x.v); err != nil {
			b.Fatal(err)
		}
	}
	return f
}

// BenchmarkBuild parses and builds the three full range sets, reporting
// the heap the built sets hold and the build time per set of three.
func BenchmarkBuild(b *testing.B) {
	f := generate(b)
	b.SetBytes(int64(len(f.aws) + len(f.gcp) + len(f.azure)))
	var sets []*rangeSet
	var held uint64
	var ranges int
	b.ResetTimer()
	for b.Loop() {
		var before, after runtime.MemStats
		b.StopTimer()
		sets = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		for _, x := range []struct {
			name  string
			data  []byte
			parse func(io.Reader) (parsed, error)
		}{{"aws", f.aws, parseAWS}, {"gcp", f.gcp, parseGCP}, {"azure", f.azure, parseAzure}} {
			p, err := x.parse(bytes.NewReader(x.data))
			if err != nil {
				b.Fatalf("%s: %v", x.name, err)
			}
			sets = append(sets, &rangeSet{ranges: buildRanges(p.prefixes)})
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		held = after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
		ranges = 0
		for _, s := range sets {
			ranges += s.ranges.size()
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(held)/(1<<20), "MiB_held")
	b.ReportMetric(float64(ranges), "ranges")
	runtime.KeepAlive(sets)
}

// BenchmarkLookup classifies random IPv4 and IPv6 addresses against the
// three full range sets and the AS-name heuristic.
func BenchmarkLookup(b *testing.B) {
	f := generate(b)
	var ev evidence
	for _, x := range []struct {
		data  []byte
		parse func(io.Reader) (parsed, error)
	}{{f.aws, parseAWS}, {f.gcp, parseGCP}, {f.azure, parseAzure}} {
		p, err := x.parse(bytes.NewReader(x.data))
		if err != nil {
			b.Fatal(err)
		}
		ev.sets = append(ev.sets, &rangeSet{ranges: buildRanges(p.prefixes), class: Classification{IPType: TypeCloud, Confidence: confidenceList}})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		addrs[i] = netip.MustParsePrefix(randomPrefix(rng, i%5 == 0)).Addr()
	}
	b.ResetTimer()
	start := time.Now()
	n := 0
	for b.Loop() {
		if _, err := ev.classify(addrs[n%len(addrs)], "Some Broadband Provider"); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "lookups/s")
}
