package configs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/configs"
	"github.com/cowrie-enrich/cowrie-enrich/internal/memstat"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate/geolite"
)

// listLine is the part of a jsonl line the enrich-list test checks.
type listLine struct {
	IP         string `json:"ip"`
	Raw        string `json:"raw"`
	Enrichment struct {
		MaxMind *struct {
			Country string `json:"country"`
			City    string `json:"city"`
			ASN     *int64 `json:"asn"`
			ASNOrg  string `json:"asn_org"`
			Network string `json:"network"`
		} `json:"maxmind"`
		Validation *struct {
			IsBogon bool `json:"is_bogon"`
		} `json:"validation"`
		Meta struct {
			Pipeline         string   `json:"pipeline"`
			SourcesSucceeded []string `json:"sources_succeeded"`
		} `json:"_meta"`
	} `json:"enrichment"`
	Rejected *struct {
		Stage  string `json:"stage"`
		Reason string `json:"reason"`
	} `json:"rejected"`
}

// TestEnrichList runs the shipped enrich-list config through the command
// line on a list with garbage, a bogon, a repeat and a miss: one JSON line
// per distinct input line on stdout, garbage rejected with its reason and
// counted, the run successful, and no database left behind.
func TestEnrichList(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := geolite.WriteFiles(dir, geolite.Sample(), time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "ips.txt")
	input := "# incident 42\n81.2.69.160\nnot-an-ip\n::ffff:81.2.69.160\n10.1.2.3\n8.8.8.8   # resolver\n2001:218::1\n999.1.1.1\n"
	if err := os.WriteFile(list, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GEOIP_DB_DIR", dir) // the config's default paths, in geoipupdate's layout
	t.Setenv("COWRIE_ENRICH_DB", "")
	t.Chdir(t.TempDir())

	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), cli.DefaultRegistry(),
		[]string{"run", "enrich-list", "--set", "source.with.path=" + list, "--progress", "never"}, &out, &errb)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, errb.String())
	}

	got := map[string]listLine{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var l listLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", sc.Text(), err)
		}
		if _, dup := got[l.IP]; dup {
			t.Errorf("address %s written twice", l.IP)
		}
		got[l.IP] = l
	}
	if len(got) != 6 {
		t.Errorf("wrote %d lines, want 6 (8 addresses, one repeat, one mapped spelling of it): %v", len(got), got)
	}

	london := got["81.2.69.160"].Enrichment.MaxMind
	if london == nil || london.City != "London" || london.Country != "GB" || london.ASN == nil || *london.ASN != 20712 || london.Network != "81.2.69.0/24" {
		t.Errorf("81.2.69.160 maxmind = %+v, want London, GB, AS20712 in 81.2.69.0/24", london)
	}
	if m := got["2001:218::1"].Enrichment.MaxMind; m == nil || m.City != "Tokyo" || m.ASNOrg != "NTT America, Inc." {
		t.Errorf("2001:218::1 maxmind = %+v, want Tokyo, NTT", m)
	}
	if l := got["8.8.8.8"]; l.Enrichment.MaxMind != nil || l.Rejected != nil || strings.Join(l.Enrichment.Meta.SourcesSucceeded, ",") != "maxmind" {
		t.Errorf("8.8.8.8 = %+v, want a clean miss: no maxmind key, maxmind succeeded", l)
	}
	if v := got["10.1.2.3"].Enrichment.Validation; v == nil || !v.IsBogon || got["10.1.2.3"].Enrichment.MaxMind != nil {
		t.Errorf("10.1.2.3 = %+v, want a bogon that was not looked up", got["10.1.2.3"])
	}
	for _, raw := range []string{"not-an-ip", "999.1.1.1"} {
		l, ok := got[raw]
		if !ok || l.Rejected == nil || l.Rejected.Stage != "validate" || l.Rejected.Reason == "" {
			t.Errorf("garbage %q = %+v, want a line rejected by validate with a reason", raw, l)
		}
	}
	if p := got["81.2.69.160"].Enrichment.Meta.Pipeline; p != "enrich-list" {
		t.Errorf("_meta.pipeline = %q, want enrich-list", p)
	}

	summary := errb.String()
	for _, want := range []string{"enrich-list done: 6 IPs committed (2 dead letters, 1 duplicates)", "db=none"} {
		if !strings.Contains(summary, want) {
			t.Errorf("stderr lacks %q:\n%s", want, summary)
		}
	}
	if strings.Contains(summary, "status files") {
		t.Errorf("stderr mentions status files, but the pipeline writes none:\n%s", summary)
	}
	if entries, _ := os.ReadDir("."); len(entries) != 0 {
		t.Errorf("the run left %v in the working directory, want nothing (no database)", entries)
	}
}

// TestEnrichListFromStdinWithoutDatabases runs enrich-list with the
// defaults: addresses from standard input, and GeoLite2 files that do not
// exist, which degrades to "skipped" lines rather than failing.
func TestEnrichListFromStdinWithoutDatabases(t *testing.T) {
	t.Setenv("GEOIP_DB_DIR", t.TempDir())
	t.Setenv("COWRIE_ENRICH_DB", "")
	t.Chdir(t.TempDir())
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = stdin; r.Close() })
	if _, err := w.WriteString("81.2.69.160\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()

	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), cli.DefaultRegistry(), []string{"run", "enrich-list", "--progress", "never"}, &out, &errb)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, errb.String())
	}
	if want := `"sources_skipped":["maxmind"],"skip_reasons":{"maxmind":"maxmind databases unavailable"}`; !strings.Contains(out.String(), want) {
		t.Errorf("stdout = %s, want a line with %s", out.String(), want)
	}
	if !strings.Contains(errb.String(), "maxmind database unavailable") {
		t.Errorf("stderr does not warn about the missing databases:\n%s", errb.String())
	}
}

// TestEveryShippedConfigValidates checks every embedded config the way
// `cowrie-enrich validate` does, so a new config cannot ship broken.
func TestEveryShippedConfigValidates(t *testing.T) {
	names := configs.Names()
	if !slices.Contains(names, "enrich-list") {
		t.Fatalf("configs.Names() = %v, want enrich-list among them", names)
	}
	var out, errb bytes.Buffer
	if code := cli.Main(context.Background(), cli.DefaultRegistry(), append([]string{"validate"}, names...), &out, &errb); code != cli.ExitOK {
		t.Fatalf("validate %v: exit %d\n%s", names, code, errb.String())
	}
	if want := "ok enrich-list (ip_list → validate → dedupe → maxmind → jsonl)"; !strings.Contains(out.String(), want) {
		t.Errorf("validate output lacks %q:\n%s", want, out.String())
	}
}

// benchEnv reads a positive integer benchmark parameter from the
// environment.
func benchEnv(b *testing.B, name string, def int) int {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkEnrichList measures `cowrie-enrich run enrich-list` end to end
// (list file → validate → dedupe → maxmind → JSON lines, discarded) on a
// generated GeoLite2-shaped City/ASN pair: addresses per second and the
// peak resident set of the run. It runs at a tiny size by default; the
// figures in the README come from
//
//	COWRIE_ENRICH_BENCH_IPS=1000000 COWRIE_ENRICH_BENCH_NETWORKS=200000 \
//	COWRIE_ENRICH_BENCH_DIR=/tmp/enrich-list \
//	go test -run '^$' -bench EnrichList -benchtime 3x ./configs/
//
// COWRIE_ENRICH_BENCH_DIR keeps the generated files (GeoLite2-City.mmdb,
// GeoLite2-ASN.mmdb, ips.txt) for other tools to be measured on; files
// already there are reused.
func BenchmarkEnrichList(b *testing.B) {
	ips := benchEnv(b, "COWRIE_ENRICH_BENCH_IPS", 20_000)
	nets := benchEnv(b, "COWRIE_ENRICH_BENCH_NETWORKS", 2_000)
	dir := os.Getenv("COWRIE_ENRICH_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	list, err := listDataset(dir, nets, ips)
	if err != nil {
		b.Fatal(err)
	}
	b.Setenv("GEOIP_DB_DIR", dir)
	b.Setenv("COWRIE_ENRICH_DB", "")
	b.Chdir(b.TempDir())
	args := []string{"run", "enrich-list", "--set", "source.with.path=" + list, "--progress", "never"}

	debug.FreeOSMemory() // the generator's garbage is not the run's
	var peak uint64
	for b.Loop() {
		memstat.ResetPeakRSS()
		var errb bytes.Buffer
		if code := cli.Main(b.Context(), cli.DefaultRegistry(), args, io.Discard, &errb); code != cli.ExitOK {
			b.Fatalf("exit %d: %s", code, errb.String())
		}
		peak = max(peak, memstat.PeakRSS())
	}
	b.ReportMetric(float64(ips)*float64(b.N)/b.Elapsed().Seconds(), "addrs/s")
	b.ReportMetric(float64(peak)/(1<<20), "MB_peak_rss")
}

// listDataset writes a GeoLite2-shaped City/ASN pair of about nets networks
// into dir (geoipupdate's file names) and a list of n addresses, and
// returns the list's path. The networks share city records as GeoLite2's
// do. Most addresses fall in the networks, one in sixteen is IPv6, and
// about one in twelve misses both databases. The
// data is seeded, so a size always gives the same files; files already in
// dir are reused.
func listDataset(dir string, nets, n int) (string, error) {
	list := filepath.Join(dir, "ips.txt")
	if _, err := os.Stat(list); err == nil {
		return list, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	rng := rand.New(rand.NewPCG(uint64(nets), uint64(n)))
	countries := []struct{ iso, name, continent string }{
		{"US", "United States", "NA"}, {"CN", "China", "AS"}, {"RU", "Russia", "EU"}, {"DE", "Germany", "EU"},
		{"BR", "Brazil", "SA"}, {"IN", "India", "AS"}, {"GB", "United Kingdom", "EU"}, {"FR", "France", "EU"},
		{"JP", "Japan", "AS"}, {"KR", "South Korea", "AS"}, {"VN", "Vietnam", "AS"}, {"NL", "Netherlands", "EU"},
		{"SG", "Singapore", "AS"}, {"ZA", "South Africa", "AF"}, {"AU", "Australia", "OC"}, {"CA", "Canada", "NA"},
	}
	asns := max(nets/8, 1)
	var networks []geolite.Network
	var v4, v6 []netip.Prefix
	for i := range nets {
		var p netip.Prefix
		if i%16 == 15 {
			var a [16]byte
			a[0], a[1] = 0x2a, byte(rng.IntN(256))
			a[2], a[3], a[4], a[5] = byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))
			p = netip.PrefixFrom(netip.AddrFrom16(a), 32+rng.IntN(17)).Masked()
			v6 = append(v6, p)
		} else {
			// 11.0.0.0 to 126.255.255.255 and 128.0.0.0 to 222.255.255.255,
			// skipping the bogon ranges validate would stop early.
			first := byte(11 + rng.IntN(212))
			if first == 127 || first == 100 || first == 169 || first == 172 || first == 192 || first == 198 || first == 203 {
				first++
			}
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{first, byte(rng.IntN(256)), byte(rng.IntN(256)), 0}), 18+rng.IntN(7)).Masked()
			v4 = append(v4, p)
		}
		c := countries[rng.IntN(len(countries))]
		nw := geolite.Network{Prefix: p, Continent: c.continent, CountryISO: c.iso, CountryName: c.name}
		if rng.IntN(10) != 0 { // one in ten is country level only
			// As in GeoLite2, a city has one location and a few accuracy
			// radii, so many networks share one record.
			city := rng.IntN(500)
			loc := rand.New(rand.NewPCG(uint64(city), uint64(c.iso[0])<<8|uint64(c.iso[1])))
			nw.City = fmt.Sprintf("%s City %d", c.iso, city)
			nw.Latitude, nw.Longitude = loc.Float64()*170-85, loc.Float64()*360-180
			nw.AccuracyRadius = [...]uint16{5, 10, 20, 50, 100, 200, 500, 1000}[(city+rng.IntN(2))%8]
		}
		if rng.IntN(20) != 0 { // one in twenty has no ASN record
			asn := 1000 + rng.IntN(asns)
			nw.ASN, nw.ASNOrg = uint32(asn), fmt.Sprintf("Example Network %d", asn)
		}
		networks = append(networks, nw)
	}
	if _, _, err := geolite.WriteFiles(dir, networks, time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)); err != nil {
		return "", err
	}

	err := geolite.Replace(list, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		for i := range n {
			var a netip.Addr
			switch {
			case i%12 == 11: // outside every network: the documentation range's neighbours and 2c0f::/16
				if i%24 == 23 {
					a = netip.AddrFrom16([16]byte{0x2c, 0x0f, 15: byte(i)})
				} else {
					a = netip.AddrFrom4([4]byte{6, byte(i >> 16), byte(i >> 8), byte(i)})
				}
			case i%16 == 15 && len(v6) > 0:
				a = randomIn(rng, v6[rng.IntN(len(v6))])
			default:
				a = randomIn(rng, v4[rng.IntN(len(v4))])
			}
			bw.WriteString(a.String())
			bw.WriteByte('\n')
		}
		return bw.Flush()
	})
	return list, err
}

// randomIn returns a random address inside p.
func randomIn(rng *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		if rng.IntN(2) == 1 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
