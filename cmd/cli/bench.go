package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/cowrie-enrich/cowrie-enrich/internal/bench"
	"github.com/cowrie-enrich/cowrie-enrich/internal/memstat"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// benchKeyPrefix returns the key prefix of the bench's Redis cache
// entries: apart from a real cache sharing the server, and from another
// bench's on another database.
func benchKeyPrefix(dbURL string) string {
	sum := sha256.Sum256([]byte(dbURL))
	return "cowrie-enrich-bench:" + hex.EncodeToString(sum[:6])
}

// Upstream's published projection: about 10,000 IPs in 11 to 16 minutes.
const (
	upstreamSlowIPsPerSec = 10000.0 / (16 * 60)
	upstreamFastIPsPerSec = 10000.0 / (11 * 60)
)

// benchRequest is one bench invocation.
type benchRequest struct {
	run          runRequest
	data         bench.Dataset
	latency      time.Duration
	redisURL     string
	fillSnapshot bool
	cpuProfile   string
	memProfile   string
}

func (a *app) benchCmd() *cobra.Command {
	var req benchRequest
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure refresh-ips end to end on a synthetic honeypot database",
		Long: `Generate a synthetic honeypot database (or reuse the one generated last time),
start the simulated providers on loopback, and measure the refresh-ips pipeline
end to end: first with every provider asked (MaxMind for all addresses, Team
Cymru for the tenth without a MaxMind ASN, GreyNoise disabled), then the
database's own limit (one set-based INSERT … ON CONFLICT of the same rows and
JSON), then, with --redis, the same run with every answer in the cache.
It prints a table: wall time, IPs/s, records/s per stage, statements sent,
provider requests, peak RSS and heap.

The bench only runs on a database it generated: give it an empty one.`,
		Example: `  cowrie-enrich bench --db postgres://localhost/bench --sessions 10000000 --ips 1000000 --redis redis://localhost:6379/15
  cowrie-enrich bench --db sqlite://bench.db --sessions 100000 --ips 10000 --cpuprofile cpu.out`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.run.db == "" {
				return usagef("--db is required: the bench writes its own sessions, so give it an empty database (sqlite://bench.db or postgres://…/bench)")
			}
			if err := req.data.Validate(); err != nil {
				return usageError{err}
			}
			return a.bench(cmd.Context(), req)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.run.db, "db", "", "database URL of an empty database the bench may fill")
	f.IntVar(&req.data.Sessions, "sessions", 100000, "sessions to generate")
	f.IntVar(&req.data.IPs, "ips", 10000, "distinct attacker addresses among them")
	f.IntVar(&req.data.NullEvery, "null-every", 50, "one session in N keeps its address only in its JSON (0: none)")
	f.DurationVar(&req.latency, "cymru-latency", 150*time.Millisecond, "time the simulated Team Cymru whois takes per answer")
	f.StringVar(&req.redisURL, "redis", "", "Redis URL for the cache's first tier; also runs the all-cached measurement")
	f.BoolVar(&req.fillSnapshot, "fill-snapshots", false, "also fill the sessions' snapshot columns in the measured runs (the reference statement does not)")
	f.StringArrayVar(&req.run.sets, "set", nil, "override one key of refresh-ips, path=value, repeatable")
	f.StringVar(&req.run.progress, "progress", "auto", "progress display: auto, always or never")
	f.StringVar(&req.cpuProfile, "cpuprofile", "", "write a CPU profile of the first measured run to this file (of the cached run to it with .cached added)")
	f.StringVar(&req.memProfile, "memprofile", "", "write a heap profile at the end of the first measured run to this file (of the cached run to it with .cached added)")
	return cmd
}

// measured is one measured run.
type measured struct {
	name       string
	sum        pipeline.Summary
	statements int64
	whoisConns int
	whoisAddrs int
	peakRSS    uint64
	peakHeap   uint64
	stages     []bench.Stage
}

func (a *app) bench(ctx context.Context, req benchRequest) error {
	say := func(format string, args ...any) { fmt.Fprintf(a.stderr, "bench: "+format+"\n", args...) }
	db, err := store.Open(ctx, req.run.db)
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	if err := bench.Prepare(ctx, db, req.data, say); err != nil {
		return err
	}
	say("database ready in %s", time.Since(start).Round(time.Millisecond))

	dir, err := os.MkdirTemp("", "cowrie-enrich-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	svc, err := simulate.Start(dir, simulate.Options{CymruLatency: req.latency, Networks: bench.World(req.data.IPs)})
	if err != nil {
		return err
	}
	defer svc.Close()

	run := req.run
	run.target, run.statusDir = "refresh-ips", dir
	run.sets = append(append(svc.Sets(),
		"stages.greynoise.disabled=true",
		"stages.cache.with.redis_url="+req.redisURL,
		"stages.cache.with.key_prefix="+benchKeyPrefix(req.run.db),
		fmt.Sprintf("sink.with.fill_snapshots=%t", req.fillSnapshot)),
		req.run.sets...)
	if req.redisURL != "" {
		if err := clearBenchCache(ctx, req.redisURL, benchKeyPrefix(req.run.db)); err != nil {
			return err
		}
	}

	settle := func() {
		if err := bench.Settle(ctx, db); err != nil {
			say("warning: %v", err)
		}
	}
	var results []measured
	settle()
	cold, err := a.measure(ctx, "refresh, every provider asked", run, svc, req)
	if err != nil {
		return err
	}
	results = append(results, cold)

	settle()
	say("running the reference statement")
	refRows, refTime, err := bench.Reference(ctx, db)
	if err != nil {
		return err
	}
	say("reference: %d rows in %s (%.0f rows/s)", refRows, refTime.Round(time.Millisecond), float64(refRows)/refTime.Seconds())

	if req.redisURL != "" {
		if err := bench.Reset(ctx, db); err != nil {
			return err
		}
		req.cpuProfile, req.memProfile = cachedProfile(req.cpuProfile), cachedProfile(req.memProfile)
		settle()
		cached, err := a.measure(ctx, "refresh, every answer cached", run, svc, req)
		if err != nil {
			return err
		}
		results = append(results, cached)
	}
	writeBenchReport(a.stdout, req, db.Dialect, results, refRows, refTime)
	return nil
}

// measure runs refresh-ips once and collects its figures.
func (a *app) measure(ctx context.Context, name string, run runRequest, svc *simulate.Services, req benchRequest) (measured, error) {
	fmt.Fprintf(a.stderr, "bench: measuring %q\n", name)
	var stmts bench.Statements
	var stages bench.Stages
	run.observer, run.storeOpt = &stages, store.Options{Tracer: &stmts}
	before := svc.Whois.Stats()

	if req.cpuProfile != "" {
		f, err := os.Create(req.cpuProfile)
		if err != nil {
			return measured{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return measured{}, err
		}
		defer pprof.StopCPUProfile()
	}
	runtime.GC()
	memstat.ResetPeakRSS()
	stopHeap := memstat.SampleHeap(50 * time.Millisecond)
	sum, err := a.execute(ctx, run)
	m := measured{name: name, sum: sum, peakHeap: stopHeap(), peakRSS: memstat.PeakRSS(), statements: stmts.Count(), stages: stages.List()}
	if err != nil {
		return m, err
	}
	if req.memProfile != "" {
		if err := writeHeapProfile(req.memProfile); err != nil {
			return m, err
		}
	}
	after := svc.Whois.Stats()
	m.whoisConns = after.Connections - before.Connections
	for _, q := range after.Queries[len(before.Queries):] {
		m.whoisAddrs += len(q.IPs)
	}
	// Said at once, so a bench stopped before its report keeps the figure.
	fmt.Fprintf(a.stderr, "bench: %q: %d IPs in %s (%.0f IPs/s), %d statements, %d whois connections for %d addresses, peak RSS %s, peak heap %s\n",
		name, sum.Committed, sum.Elapsed.Round(time.Millisecond), float64(sum.Committed)/sum.Elapsed.Seconds(),
		m.statements, m.whoisConns, m.whoisAddrs, mib(m.peakRSS), mib(m.peakHeap))
	return m, nil
}

// cachedProfile names the cached run's profile after the first run's.
func cachedProfile(path string) string {
	if path == "" {
		return ""
	}
	return path + ".cached"
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// clearBenchCache deletes the bench's own cache entries, so the first run
// asks every provider.
func clearBenchCache(ctx context.Context, url, prefix string) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return usageError{fmt.Errorf("--redis: %w", err)}
	}
	c := redis.NewClient(opt)
	defer c.Close()
	it := c.Scan(ctx, 0, prefix+":*", 10000).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		err := c.Unlink(ctx, keys...).Err()
		keys = keys[:0]
		return err
	}
	for it.Next(ctx) {
		if keys = append(keys, it.Val()); len(keys) == 10000 {
			if err := flush(); err != nil {
				return fmt.Errorf("clear bench cache: %w", err)
			}
		}
	}
	if err := errors.Join(it.Err(), flush()); err != nil {
		return fmt.Errorf("clear bench cache: %w", err)
	}
	return nil
}

func writeBenchReport(w io.Writer, req benchRequest, d store.Dialect, results []measured, refRows int64, refTime time.Duration) {
	refRate := float64(refRows) / refTime.Seconds()
	fmt.Fprintf(w, "\n## cowrie-enrich bench: %s, %d sessions over %d addresses, Cymru latency %s, %d CPUs\n\n",
		d, req.data.Sessions, req.data.IPs, req.latency, runtime.NumCPU())
	fmt.Fprintln(w, "| run | IPs | wall | IPs/s | vs reference | statements | whois connections | whois addresses | peak RSS | peak heap |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, m := range results {
		rate := float64(m.sum.Committed) / m.sum.Elapsed.Seconds()
		fmt.Fprintf(w, "| %s | %d | %s | %.0f | %.0f%% | %s | %d | %d | %s | %s |\n", m.name, m.sum.Committed,
			m.sum.Elapsed.Round(time.Millisecond), rate, 100*rate/refRate, statementCount(d, m.statements),
			m.whoisConns, m.whoisAddrs, mib(m.peakRSS), mib(m.peakHeap))
	}
	fmt.Fprintf(w, "| reference: one INSERT … SELECT … ON CONFLICT of the same rows | %d | %s | %.0f | 100%% | 1 | | | | |\n",
		refRows, refTime.Round(time.Millisecond), refRate)

	for _, m := range results {
		fmt.Fprintf(w, "\n### %s: per component (records per second of its own busy time)\n\n", m.name)
		fmt.Fprintln(w, "| component | batches | records in | records out | busy | records/s |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
		for _, s := range m.stages {
			fmt.Fprintf(w, "| %s %s | %d | %d | %d | %s | %.0f |\n", s.Kind, s.ID, s.Batches, s.In, s.Out, s.Busy.Round(time.Millisecond), s.Rate())
		}
	}
	if len(results) > 0 {
		rate := float64(results[0].sum.Committed) / results[0].sum.Elapsed.Seconds()
		fmt.Fprintf(w, "\nUpstream's published projection is about 10,000 IPs in 11–16 minutes (%.1f–%.1f IPs/s): the first run is %.0f–%.0f× that.\n",
			upstreamSlowIPsPerSec, upstreamFastIPsPerSec, rate/upstreamFastIPsPerSec, rate/upstreamSlowIPsPerSec)
	}
	if req.redisURL == "" {
		fmt.Fprintln(w, "The all-cached run needs --redis.")
	}
}

func statementCount(d store.Dialect, n int64) string {
	if d != store.Postgres {
		return "n/a"
	}
	return fmt.Sprint(n)
}

func mib(b uint64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}
