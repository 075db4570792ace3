package cymru

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sim "github.com/cowrie-enrich/cowrie-enrich/internal/simulate/cymru"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

// testConfig returns options pointing at the fakes, with short timeouts
// and backoff so failure cases stay fast.
func testConfig(whois, dns string) *Config {
	c := DefaultConfig()
	c.WhoisAddr, c.DNSServer = whois, dns
	c.Timeout, c.Backoff = 2*time.Second, time.Millisecond
	return c
}

func newTestStage(t testing.TB, cfg *Config) (*Stage, pipeline.Env) {
	t.Helper()
	env := pipelinetest.Env("cymru")
	st, err := New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.(*Stage).Close() })
	return st.(*Stage), env
}

// records returns validated, eligible records for ips.
func records(ips ...string) pipeline.Batch {
	b := make(pipeline.Batch, len(ips))
	for i, ip := range ips {
		r := pipeline.NewRecord(ip)
		r.Addr = netip.MustParseAddr(ip)
		r.Validation = &pipeline.Validation{}
		b[i] = r
	}
	return b
}

// outcomeOf renders what the stage did to a record.
func outcomeOf(r *pipeline.Record) string {
	s := r.Source(source)
	switch s.State {
	case pipeline.StateSucceeded:
		res, ok := r.Enrichment[source].(*pipeline.CymruResult)
		if !ok {
			return "not found"
		}
		return fmt.Sprintf("AS%d %s %s %s %s %q", *res.ASN, res.Prefix, res.Country, res.Registry, res.AllocationDate, res.ASNOrg)
	case pipeline.StateFailed:
		return "failed: " + s.Reason
	case pipeline.StateSkipped:
		return "skipped: " + s.Reason
	}
	return "untouched"
}

func process(t *testing.T, st *Stage, b pipeline.Batch) {
	t.Helper()
	out, err := st.Process(context.Background(), b)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if len(out) != len(b) {
		t.Fatalf("Process returned %d records, want %d", len(out), len(b))
	}
}

const (
	wantCymru  = `AS23028 68.22.187.0/24 US arin 2002-03-15 "TEAM-CYMRU - Team Cymru Inc., US"`
	wantGoogle = `AS15169 8.8.8.0/24 US arin 1992-12-01 "GOOGLE - Google LLC, US"`
	wantV6     = `AS15169 2001:4860::/32 US arin 2005-03-14 "GOOGLE - Google LLC, US"`
	wantMulti  = `AS13335 104.16.0.0/13 US arin 2014-03-28 "CLOUDFLARENET - Cloudflare, Inc., US"`
)

func TestDNSModeQueryNames(t *testing.T) {
	d := sim.NewDNS(t, sim.DNSOptions{})
	cfg := testConfig("127.0.0.1:1", d.Addr())
	cfg.Mode = ModeDNS
	st, _ := newTestStage(t, cfg)
	b := records("68.22.187.5", "2001:4860:4860::8888", "104.16.1.1", "68.22.187.77")
	process(t, st, b)
	want := []string{
		"5.187.22.68.origin.asn.cymru.com.",
		"as23028.asn.cymru.com.",
		"8.8.8.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.8.4.0.6.8.4.1.0.0.2.origin6.asn.cymru.com.",
		"as15169.asn.cymru.com.",
		"1.1.16.104.origin.asn.cymru.com.",
		"as13335.asn.cymru.com.",
		// 68.22.187.77 is inside 68.22.187.0/24, answered already: no query.
	}
	if got := d.Names(); !slices.Equal(got, want) {
		t.Errorf("query names\n got %q\nwant %q", got, want)
	}
	for i, w := range []string{wantCymru, wantV6, wantMulti, wantCymru} {
		if got := outcomeOf(b[i]); got != w {
			t.Errorf("%s: %s, want %s", b[i].Addr, got, w)
		}
	}
	if b[0].ASN == nil || b[0].ASN.Number != 23028 || b[0].ASN.Registry != "arin" || b[0].ASN.Org == "" {
		t.Errorf("r.ASN = %+v, want AS23028 with its org and registry", b[0].ASN)
	}
}

func TestBulkQuery(t *testing.T) {
	w := sim.NewWhois(t, sim.WhoisOptions{})
	d := sim.NewDNS(t, sim.DNSOptions{})
	st, env := newTestStage(t, testConfig(w.Addr(), d.Addr()))
	b := records("68.22.187.5", "2001:4860:4860::8888", "8.8.8.8", "68.22.187.5", "45.33.1.1")
	process(t, st, b)
	stats := w.Stats()
	if stats.Connections != 1 || len(stats.Queries) != 1 {
		t.Fatalf("connections %d, queries %d; want one of each", stats.Connections, len(stats.Queries))
	}
	const want = "begin\nverbose\n68.22.187.5\n2001:4860:4860::8888\n8.8.8.8\n45.33.1.1\nend\n"
	if got := stats.Queries[0].Raw; got != want {
		t.Errorf("request bytes %q, want %q (one line per distinct address)", got, want)
	}
	if len(stats.Violations) != 0 {
		t.Errorf("etiquette violations: %v", stats.Violations)
	}
	for i, w := range []string{wantCymru, wantV6, wantGoogle, wantCymru, "not found"} {
		if got := outcomeOf(b[i]); got != w {
			t.Errorf("%s: %s, want %s", b[i].Addr, got, w)
		}
	}
	if len(d.Names()) != 0 {
		t.Errorf("bulk answers carried names, yet DNS was asked %q", d.Names())
	}
	if n, _ := env.Progress.Value(CounterQueries); n != 1 {
		t.Errorf("%s = %d, want 1", CounterQueries, n)
	}
}

func TestProcessAnswers(t *testing.T) {
	ips := []string{"68.22.187.5", "2001:4860:4860::8888", "104.16.1.1", "45.33.1.1"}
	all := []string{wantCymru, wantV6, wantMulti, "not found"}
	tests := []struct {
		name    string
		mode    string
		whois   sim.WhoisOptions
		dns     sim.DNSOptions
		retries int
		want    []string // per ip; "failed: X" means a failure whose reason contains X
		queries int      // whois connections (bulk) expected; 0: not checked
	}{
		{name: "well-behaved", want: all, queries: 1},
		{name: "garbage lines", whois: sim.WhoisOptions{Garbage: []string{"%% garbage %%", "1 | 2 | 3", "Error: something else"}}, want: all, queries: 1},
		{name: "duplicated rows", whois: sim.WhoisOptions{Duplicate: true}, want: all, queries: 1},
		{name: "out-of-order rows", whois: sim.WhoisOptions{Reverse: true}, want: all, queries: 1},
		{name: "ipv6 respelled", whois: sim.WhoisOptions{RespellIPv6: true}, want: all, queries: 1},
		{name: "no header", whois: sim.WhoisOptions{NoHeader: true}, want: all, queries: 1},
		{name: "names missing: asked over dns", whois: sim.WhoisOptions{OmitNames: true}, want: all, queries: 1},
		{name: "names missing, dns dead: no names, records answered", whois: sim.WhoisOptions{OmitNames: true}, dns: sim.DNSOptions{ServFail: true},
			want: []string{strings.Replace(wantCymru, `"TEAM-CYMRU - Team Cymru Inc., US"`, `""`, 1), strings.Replace(wantV6, `"GOOGLE - Google LLC, US"`, `""`, 1),
				strings.Replace(wantMulti, `"CLOUDFLARENET - Cloudflare, Inc., US"`, `""`, 1), "not found"}, queries: 1},
		{name: "error lines fail their records", whois: sim.WhoisOptions{ErrorLines: true},
			want: []string{"failed: whois line 3", "failed: whois line 4", "failed: whois line 5", "failed: whois line 6"}, queries: 1},
		{name: "empty answer: not found", whois: sim.WhoisOptions{Empty: true}, want: []string{"not found", "not found", "not found", "not found"}, queries: 1},
		{name: "truncated, no retries", whois: sim.WhoisOptions{DropAfter: 2},
			want: []string{wantCymru, wantV6, "failed: truncated", "failed: truncated"}, queries: 1},
		{name: "truncated, retries ask only the rest", whois: sim.WhoisOptions{DropAfter: 1}, retries: 3, want: all, queries: 4},
		{name: "server closes at once", whois: sim.WhoisOptions{CloseImmediately: true}, retries: 2,
			want: []string{"failed: 3 attempts", "failed: truncated", "failed: truncated", "failed: truncated"}, queries: 3},
		{name: "dns mode", mode: ModeDNS, want: all},
		{name: "dns servfail", mode: ModeDNS, dns: sim.DNSOptions{ServFail: true}, retries: 1,
			want: []string{"failed: SERVFAIL", "failed: SERVFAIL", "failed: SERVFAIL", "failed: SERVFAIL"}},
		{name: "dns timeout", mode: ModeDNS, dns: sim.DNSOptions{Silent: true},
			want: []string{"failed: timeout", "failed: timeout", "failed: timeout", "failed: timeout"}},
		{name: "dns truncated: retried over tcp", mode: ModeDNS, dns: sim.DNSOptions{Truncate: true}, want: all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := sim.NewWhois(t, tt.whois)
			d := sim.NewDNS(t, tt.dns)
			cfg := testConfig(w.Addr(), d.Addr())
			cfg.Retries = tt.retries
			if tt.mode != "" {
				cfg.Mode = tt.mode
			}
			if tt.dns.Silent {
				cfg.Timeout = 50 * time.Millisecond
			}
			st, _ := newTestStage(t, cfg)
			b := records(ips...)
			process(t, st, b)
			for i, want := range tt.want {
				got := outcomeOf(b[i])
				if rest, ok := strings.CutPrefix(want, "failed: "); ok {
					if !strings.HasPrefix(got, "failed: ") || !strings.Contains(got, rest) {
						t.Errorf("%s: %s, want a failure mentioning %q", ips[i], got, rest)
					}
					continue
				}
				if got != want {
					t.Errorf("%s: %s, want %s", ips[i], got, want)
				}
			}
			if n := w.Stats().Connections; tt.queries > 0 && n != tt.queries {
				t.Errorf("whois connections = %d, want %d", n, tt.queries)
			}
			if tt.mode == ModeDNS && w.Stats().Connections != 0 {
				t.Errorf("dns mode opened %d whois connections", w.Stats().Connections)
			}
		})
	}
}

func TestPrefixReuse(t *testing.T) {
	w := sim.NewWhois(t, sim.WhoisOptions{})
	st, env := newTestStage(t, testConfig(w.Addr(), "127.0.0.1:1"))
	first := records("68.22.187.5")
	process(t, st, first)
	second := records("68.22.187.200", "104.16.9.9")
	process(t, st, second)
	third := records("104.17.0.1") // inside the /13 answered for 104.16.9.9
	process(t, st, third)
	q := w.Stats().Queries
	if len(q) != 2 || !slices.Equal(q[1].IPs, []string{"104.16.9.9"}) {
		t.Fatalf("queries %+v; want the second to carry only 104.16.9.9", q)
	}
	if got := outcomeOf(second[0]); got != wantCymru {
		t.Errorf("reused answer: %s, want %s", got, wantCymru)
	}
	if got := outcomeOf(third[0]); got != wantMulti {
		t.Errorf("reused answer: %s, want %s", got, wantMulti)
	}
	if n, _ := env.Progress.Value(CounterPrefixReuse); n != 2 {
		t.Errorf("%s = %d, want 2", CounterPrefixReuse, n)
	}
}

func TestPrefixSetBounded(t *testing.T) {
	s := newPrefixSet(2)
	for _, p := range []string{"1.0.0.0/24", "2.0.0.0/16", "3.0.0.0/8"} {
		s.add(Answer{ASNs: []int64{1}, Prefix: netip.MustParsePrefix(p)})
	}
	if _, ok := s.lookup(netip.MustParseAddr("1.0.0.1")); ok {
		t.Errorf("the oldest prefix was not evicted")
	}
	for _, a := range []string{"2.0.9.9", "3.9.9.9"} {
		if _, ok := s.lookup(netip.MustParseAddr(a)); !ok {
			t.Errorf("%s: not found in a remembered prefix", a)
		}
	}
	if n := s.answers.order.Len(); n != 2 {
		t.Errorf("holds %d prefixes, capacity 2", n)
	}
}

func TestMaxMindFallback(t *testing.T) {
	w := sim.NewWhois(t, sim.WhoisOptions{})
	st, _ := newTestStage(t, testConfig(w.Addr(), "127.0.0.1:1"))
	b := records("8.8.8.8", "68.22.187.5")
	b[0].ASN = &pipeline.ASN{Number: 15169, Org: "GOOGLE"}
	process(t, st, b)
	if got := outcomeOf(b[0]); got != "skipped: "+ReasonASNKnown {
		t.Errorf("record with a MaxMind ASN: %s, want skipped", got)
	}
	if b[0].ASN.Org != "GOOGLE" {
		t.Errorf("MaxMind's ASN was replaced: %+v", b[0].ASN)
	}
	if got := outcomeOf(b[1]); got != wantCymru {
		t.Errorf("record without an ASN: %s, want %s", got, wantCymru)
	}
	if q := w.Stats().Queries; len(q) != 1 || !slices.Equal(q[0].IPs, []string{"68.22.187.5"}) {
		t.Errorf("queries %+v, want only 68.22.187.5 sent", q)
	}
}

func TestConcurrencyNeverExceeded(t *testing.T) {
	w := sim.NewWhois(t, sim.WhoisOptions{Latency: 20 * time.Millisecond})
	cfg := testConfig(w.Addr(), "127.0.0.1:1")
	cfg.Concurrency = 2
	st, _ := newTestStage(t, cfg)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, _ = st.Process(context.Background(), records(fmt.Sprintf("45.33.%d.1", i), fmt.Sprintf("45.33.%d.2", i)))
		})
	}
	wg.Wait()
	s := w.Stats()
	if s.Connections != 8 || s.PeakConcurrent > 2 {
		t.Errorf("connections %d, peak %d; want 8 connections, never more than 2 at once", s.Connections, s.PeakConcurrent)
	}
}

// TestSharedConcurrencyRedisIntegration runs three stage instances (as
// three workers would), each allowed two connections, sharing one slot
// through Redis: the fake must never see two connections at once.
func TestSharedConcurrencyRedisIntegration(t *testing.T) {
	url := os.Getenv(testdb.EnvRedis)
	if url == "" {
		t.Fatalf("%s is not set: run ./scripts/test or export %s=redis://host:6379/0", testdb.EnvRedis, testdb.EnvRedis)
	}
	w := sim.NewWhois(t, sim.WhoisOptions{Latency: 20 * time.Millisecond})
	var wg sync.WaitGroup
	for i := range 3 {
		cfg := testConfig(w.Addr(), "127.0.0.1:1")
		cfg.Concurrency, cfg.RedisURL, cfg.SharedConcurrency = 2, url, 1
		st, _ := newTestStage(t, cfg)
		for j := range 2 {
			wg.Go(func() {
				_, _ = st.Process(context.Background(), records(fmt.Sprintf("45.34.%d.%d", i, j+1)))
			})
		}
	}
	wg.Wait()
	if s := w.Stats(); s.Connections != 6 || s.PeakConcurrent != 1 {
		t.Errorf("connections %d, peak %d; want 6 connections, one at a time", s.Connections, s.PeakConcurrent)
	}
}

func TestProcessAfterClose(t *testing.T) {
	st, _ := newTestStage(t, testConfig("127.0.0.1:1", ""))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Process(context.Background(), records("8.8.8.8")); err != ErrClosed {
		t.Errorf("Process after Close: %v, want ErrClosed", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		mutate      func(*Config)
		errContains string
	}{
		{name: "defaults", mutate: func(*Config) {}},
		{name: "dns mode needs no whois", mutate: func(c *Config) { c.Mode, c.WhoisAddr = ModeDNS, "" }},
		{name: "unknown mode", mutate: func(c *Config) { c.Mode = "http" }, errContains: `mode "http"`},
		{name: "whois without port", mutate: func(c *Config) { c.WhoisAddr = "whois.cymru.com" }, errContains: "whois_addr"},
		{name: "whois bad port", mutate: func(c *Config) { c.WhoisAddr = "whois.cymru.com:0" }, errContains: "whois_addr"},
		{name: "dns server without port", mutate: func(c *Config) { c.DNSServer = "127.0.0.1" }, errContains: "dns_server"},
		{name: "window too big", mutate: func(c *Config) { c.Window.Size = 1001 }, errContains: "window.size 1001"},
		{name: "window empty", mutate: func(c *Config) { c.Window.Size = 0 }, errContains: "window.size 0"},
		{name: "no max wait", mutate: func(c *Config) { c.Window.MaxWait = 0 }, errContains: "window.max_wait"},
		{name: "too much concurrency", mutate: func(c *Config) { c.Concurrency = 5 }, errContains: "concurrency 5"},
		{name: "no shared concurrency", mutate: func(c *Config) { c.SharedConcurrency = 0 }, errContains: "shared_concurrency 0"},
		{name: "bad redis url", mutate: func(c *Config) { c.RedisURL = "http://x:hunter2@h" }, errContains: "redis_url: not a redis"},
		{name: "no timeout", mutate: func(c *Config) { c.Timeout = 0 }, errContains: "timeout"},
		{name: "negative retries", mutate: func(c *Config) { c.Retries = -1 }, errContains: "retries -1"},
		{name: "negative cache", mutate: func(c *Config) { c.PrefixCache = -1 }, errContains: "prefix_cache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(c)
			err := c.Validate()
			switch {
			case tt.errContains == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.errContains != "" && (err == nil || !strings.Contains(err.Error(), tt.errContains)):
				t.Errorf("Validate = %v, want an error containing %q", err, tt.errContains)
			}
		})
	}
}

func TestSampleIsDesignExample(t *testing.T) {
	cfg, err := pipeline.DecodeSample(Spec)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.(*Config)
	want := DefaultConfig()
	if *c != *want {
		t.Errorf("sample decodes to %+v, want the defaults %+v", *c, *want)
	}
	if c.WhoisAddr != "whois.cymru.com:43" || c.DNSServer != "" || c.Window.Size != 500 || c.Window.MaxWait != 2*time.Second || c.Concurrency != 1 || c.Timeout != 30*time.Second {
		t.Errorf("sample %+v differs from DESIGN.md §3", *c)
	}
}
