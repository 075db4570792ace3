package crashtest_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/crashtest"
	"github.com/cowrie-enrich/cowrie-enrich/internal/demodata"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate"
	"github.com/cowrie-enrich/cowrie-enrich/internal/streamq"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// The GreyNoise fake's token bucket (burst 4) and the rate every worker
// is given. The workers' rate leaves the fake's bucket room for the
// jitter between admission in Redis and arrival (processes descheduled
// on a loaded machine), yet three workers each at workerRate would send
// more than fakeRate, so only the limit shared in Redis keeps them under
// it; MaxInWindow checks the shared ceiling itself.
const (
	fakeRate   = 40
	workerRate = 20
)

// cluster runs refresh-ips-producer and refresh-ips-worker processes on
// one PostgreSQL schema, one Redis and the simulated providers. Each
// cluster has its own stream, cache prefix and GreyNoise key, so no
// Redis state is shared with another test or an earlier run.
type cluster struct {
	t     testing.TB
	bin   string
	svc   *simulate.Services
	geo   *simulate.Services // whose GeoLite2 files the workers read
	url   string
	db    *store.DB
	id    string
	extra []string // --set overrides of every worker
}

func newCluster(t testing.TB, bin string, svc, geo *simulate.Services, sessions []demodata.Session, extra ...string) *cluster {
	t.Helper()
	url := testdb.PostgresURL(t)
	db := testdb.Migrated(t, url)
	if err := demodata.Insert(context.Background(), db, sessions); err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	c := &cluster{t: t, bin: bin, svc: svc, geo: geo, url: url, db: db, id: hex.EncodeToString(b[:]), extra: extra}
	t.Cleanup(c.cleanup)
	return c
}

// cleanup deletes every Redis key the cluster's processes created.
func (c *cluster) cleanup() {
	rdb, err := streamq.Client(os.Getenv(testdb.EnvRedis))
	if err != nil {
		return
	}
	defer rdb.Close()
	ctx := context.Background()
	for _, pattern := range []string{"test:workers:" + c.id + "*", "*" + c.key() + "*", "*" + c.keyHash() + "*"} {
		for _, k := range rdb.Keys(ctx, pattern).Val() {
			rdb.Del(ctx, k)
		}
	}
}

// key is the cluster's GreyNoise API key; the fake accepts any.
func (c *cluster) key() string { return "test-" + c.id }

// keyHash is how the greynoise stage names the key in Redis.
func (c *cluster) keyHash() string {
	sum := sha256.Sum256([]byte(c.key()))
	return hex.EncodeToString(sum[:])[:12]
}

func (c *cluster) common(config string) []string {
	return []string{"run", config, "--db", c.url, "--status-dir", c.t.TempDir(), "--progress", "never", "--verbose"}
}

func (c *cluster) producer() []string {
	args := c.common("refresh-ips-producer")
	for _, s := range []string{"sink.with.stream=test:workers:" + c.id, "sink.with.max_len=60", "sink.with.poll=20ms"} {
		args = append(args, "--set", s)
	}
	return args
}

func (c *cluster) worker(i int) []string {
	args := c.common("refresh-ips-worker")
	sets := []string{
		"source.with.stream=test:workers:" + c.id,
		fmt.Sprintf("source.with.consumer=worker-%d", i),
		"source.with.count=10", "source.with.block=100ms", "source.with.claim_idle=1s", "source.with.idle_exit=1500ms",
		`stages.cache.with.key_prefix="test:workers:` + c.id + `:cache:"`,
		"stages.greynoise.with.api_key=" + c.key(),
		fmt.Sprintf("stages.greynoise.with.rate=%d", workerRate),
	}
	sets = append(sets, workerSets...)
	sets = append(sets, c.extra...)
	for _, s := range c.svc.Sets() {
		if !strings.HasPrefix(s, "stages.maxmind.") {
			sets = append(sets, s)
		}
	}
	sets = append(sets, "stages.maxmind.with.city_db="+c.geo.CityDB, "stages.maxmind.with.asn_db="+c.geo.ASNDB)
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return args
}

// workerSets shape a worker like the single-process baseline run, in many
// small windows and commits.
var workerSets = []string{
	"stages.cymru.with.window.size=10", "stages.cymru.with.window.max_wait=50ms", "stages.cymru.with.shared_concurrency=2",
	"stages.cymru.with.concurrency=2",
	"sink.with.batch_size=10", "sink.with.flush_interval=50ms",
}

// run starts the producer and n workers at once, kills worker 0 with
// SIGKILL after kill (0: never), waits for every process and returns the
// workers' outcomes.
func (c *cluster) run(n int, kill time.Duration) []crashtest.Outcome {
	c.t.Helper()
	ctx := context.Background()
	outs := make([]crashtest.Outcome, n+1)
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	wg.Go(func() { outs[n], errs[n] = crashtest.Run(ctx, c.bin, 0, c.producer()...) })
	for i := range n {
		after := time.Duration(0)
		if i == 0 {
			after = kill
		}
		wg.Go(func() { outs[i], errs[i] = crashtest.Run(ctx, c.bin, after, c.worker(i)...) })
	}
	wg.Wait()
	for i, o := range outs {
		what := fmt.Sprintf("worker %d", i)
		if i == n {
			what = "producer"
		}
		if errs[i] != nil {
			c.t.Fatalf("%s: %v", what, errs[i])
		}
		if !o.Killed && o.ExitCode != 0 {
			c.t.Fatalf("%s: exit %d\n%s", what, o.ExitCode, o.Stderr)
		}
	}
	return outs[:n]
}

func (c *cluster) tables() crashtest.Tables {
	c.t.Helper()
	tables, err := crashtest.Read(context.Background(), c.db)
	if err != nil {
		c.t.Fatal(err)
	}
	return tables
}

// TestWorkersMatchSingleProcessIntegration runs one producer and three
// worker processes on PostgreSQL against the simulated providers and
// requires the tables a single refresh-ips process writes, row by row:
// with all workers alive, with one killed by SIGKILL mid-run (its pending
// entries must be reclaimed by the others), and with a daily quota that
// all workers together must not exceed. The GreyNoise fake must never
// see more than the rate shared by the workers.
func TestWorkersMatchSingleProcessIntegration(t *testing.T) {
	if os.Getenv(testdb.EnvRedis) == "" {
		t.Fatalf("%s is not set: run ./scripts/test or export %s=redis://host:6379/0", testdb.EnvRedis, testdb.EnvRedis)
	}
	t.Setenv("COWRIE_ENRICH_REDIS", os.Getenv(testdb.EnvRedis))
	bin := crashtest.Build(t)
	sessions := demodata.Generate(31, 300, time.Now())

	// The baseline: one refresh-ips process without Redis, against
	// unlimited fakes. The workers use its GeoLite2 files, so that the
	// database build recorded in every row is the same.
	base, err := simulate.Start(t.TempDir(), simulate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	bc := newCluster(t, bin, base, base, sessions)
	args := bc.common("refresh-ips")
	for _, s := range append(append([]string{"stages.greynoise.with.rate=500"}, workerSets...), base.Sets()...) {
		args = append(args, "--set", s)
	}
	if o, err := crashtest.Run(context.Background(), bin, 0, args...); err != nil || o.ExitCode != 0 {
		t.Fatalf("single process: exit %d, %v\n%s", o.ExitCode, err, o.Stderr)
	}
	want := bc.tables()
	if len(want["ip_inventory"]) < 50 {
		t.Fatalf("the single process wrote %d addresses; too few to prove anything", len(want["ip_inventory"]))
	}

	for _, tc := range []struct {
		name  string
		kill  time.Duration
		quota int
	}{
		{name: "three workers"},
		{name: "one worker killed", kill: 1500 * time.Millisecond},
		{name: "shared quota", quota: 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := simulate.Start(t.TempDir(), simulate.Options{GreyNoiseRate: fakeRate, GreyNoiseBurst: 4, CymruLatency: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			var extra []string
			if tc.quota > 0 {
				extra = append(extra, fmt.Sprintf("stages.greynoise.with.daily_quota=%d", tc.quota))
			}
			c := newCluster(t, bin, svc, base, sessions, extra...)
			start := time.Now()
			outs := c.run(3, tc.kill)
			t.Logf("1 producer, 3 workers: %s", time.Since(start).Round(time.Millisecond))
			if tc.kill > 0 {
				if !outs[0].Killed {
					t.Fatalf("worker 0 ended before the kill at %s; nothing was left to reclaim", tc.kill)
				}
				if !strings.Contains(outs[1].Stderr+outs[2].Stderr, "redis_stream reclaimed entries") {
					t.Errorf("no surviving worker reclaimed the killed worker's entries")
				}
			}
			got := c.tables()
			checkASNCountries(t, want, got)
			if tc.quota > 0 {
				if used := svc.GreyNoise.Used(); used != tc.quota {
					t.Errorf("GreyNoise saw %d lookups; want exactly the quota of %d shared by the workers", used, tc.quota)
				}
				if n, w := len(got["ip_inventory"]), len(want["ip_inventory"]); n != w {
					t.Errorf("%d addresses written, want %d", n, w)
				}
			} else if diff := crashtest.Diff(countryFree(t, want), countryFree(t, got), 10); len(diff) > 0 {
				t.Errorf("tables differ from the single process:\n%s", strings.Join(diff, "\n"))
			}
			if v, most := svc.GreyNoise.Violations(), svc.GreyNoise.MaxInWindow(time.Second); v.Rate != 0 || most > workerRate {
				t.Errorf("GreyNoise refused %d requests for rate and saw %d in one second; want none and at most %d", v.Rate, most, workerRate)
			}
			// Only the connection count is checked: three workers share a
			// small dataset, so their whois windows may hold one address
			// each, which the fake's etiquette check counts.
			if s := svc.Whois.Stats(); s.PeakConcurrent > 2 {
				t.Errorf("whois saw %d connections at once; the shared limit is 2", s.PeakConcurrent)
			}
		})
	}
}

// BenchmarkWorkersIntegration measures the addresses per second one
// producer and 1, 2 or 3 worker processes enrich on PostgreSQL, from
// start to the last worker's exit (which includes idle_exit, reported
// separately), with a slow Cymru (200ms per whois query) so that the
// providers, not the CPU, dominate. GreyNoise is unlimited here; the
// shared limits would otherwise cap every worker count alike.
func BenchmarkWorkersIntegration(b *testing.B) {
	if os.Getenv(testdb.EnvRedis) == "" {
		b.Fatalf("%s is not set", testdb.EnvRedis)
	}
	b.Setenv("COWRIE_ENRICH_REDIS", os.Getenv(testdb.EnvRedis))
	bin := crashtest.Build(b)
	svc, err := simulate.Start(b.TempDir(), simulate.Options{CymruLatency: 200 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	sessions := demodata.Generate(37, 20000, time.Now())
	const idleExit = 1500 * time.Millisecond
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			var ips int
			var total time.Duration
			for b.Loop() {
				b.StopTimer()
				c := newCluster(b, bin, svc, svc, sessions, "stages.greynoise.with.rate=2000", "stages.greynoise.with.concurrency=8",
					"stages.cymru.with.shared_concurrency=4", "source.with.claim_idle=30s")
				b.StartTimer()
				start := time.Now()
				c.run(n, 0)
				total += time.Since(start) - idleExit
				b.StopTimer()
				ips = len(c.tables()["ip_inventory"])
				b.StartTimer()
			}
			b.ReportMetric(float64(ips)*float64(b.N)/total.Seconds(), "ips/s")
			b.ReportMetric(float64(ips), "ips")
		})
	}
}

// The ASN country the inventory keeps is the first one written (filled
// only where empty), and an AS announced in several countries gets the
// country of whichever of its addresses a worker committed first. That
// order is not fixed with several workers, so tables are compared without
// it, and checkASNCountries requires instead that it is the country of
// one of the AS's addresses.
const asnCountryColumn = 1

// countryFree returns tables with the country of every ASN blanked.
func countryFree(t *testing.T, tables crashtest.Tables) crashtest.Tables {
	t.Helper()
	out := crashtest.Tables{}
	for table, rows := range tables {
		out[table] = rows
	}
	asns := map[string]string{}
	for k, v := range tables["asn_inventory"] {
		cols := strings.Split(v, " | ")
		if len(cols) <= asnCountryColumn {
			t.Fatalf("asn_inventory %s: unexpected row %q", k, v)
		}
		cols[asnCountryColumn] = ""
		asns[k] = strings.Join(cols, " | ")
	}
	out["asn_inventory"] = asns
	return out
}

// checkASNCountries requires every ASN's country in got to be a country
// one of its addresses has in want (MaxMind's or Cymru's answer).
func checkASNCountries(t *testing.T, want, got crashtest.Tables) {
	t.Helper()
	countries := map[string]map[string]bool{}
	for ip, v := range want["ip_inventory"] {
		cols := strings.Split(v, " | ")
		var doc map[string]map[string]any
		if err := json.Unmarshal([]byte(cols[4]), &doc); err != nil {
			t.Fatalf("ip_inventory %s: enrichment: %v", ip, err)
		}
		if countries[cols[0]] == nil {
			countries[cols[0]] = map[string]bool{}
		}
		for _, source := range []string{"maxmind", "cymru"} {
			if cc, ok := doc[source]["country"].(string); ok {
				countries[cols[0]][cc] = true
			}
		}
	}
	for asn, v := range got["asn_inventory"] {
		if cc := strings.Split(v, " | ")[asnCountryColumn]; cc != "" && !countries[asn][cc] {
			t.Errorf("asn_inventory %s: country %q, none of its addresses is there (%v)", asn, cc, countries[asn])
		}
	}
}
