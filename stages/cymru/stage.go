package cymru

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Spec registers the cymru stage. Its sample is the `with:` block of
// DESIGN.md §3.
var Spec = pipeline.StageSpec("cymru",
	"Team Cymru IP-to-ASN for addresses without a MaxMind ASN: one bulk whois query per window, or DNS.",
	`whois_addr: whois.cymru.com:43
dns_server: ""
window: {size: 500, max_wait: 2s}
concurrency: 1
redis_url: ""            # set: shared_concurrency whois connections across every process using this Redis
shared_concurrency: 1
timeout: 30s
`, DefaultConfig, New)

const source = pipeline.SourceCymru

// ReasonASNKnown is the skip reason of records MaxMind already gave an
// ASN: Cymru is asked only for the others.
const ReasonASNKnown = "asn from maxmind"

// maxBackoff caps the wait between retries.
const maxBackoff = 30 * time.Second

// Run counters the stage reports through pipeline.Progress.
const (
	CounterQueries     = "cymru_queries"      // bulk whois queries (connections) sent
	CounterDNSQueries  = "cymru_dns_queries"  // DNS queries sent (origins and AS names)
	CounterPrefixReuse = "cymru_prefix_reuse" // addresses answered from an earlier answer's prefix
	CounterNotFound    = "cymru_not_found"    // addresses Cymru has no route for
	CounterFailed      = "cymru_failed"       // addresses whose lookup failed after retries
	CounterGarbage     = "cymru_garbage_lines"
)

// Stage looks up the origin AS of addresses at Team Cymru. Process is safe
// for concurrent use; the runtime runs up to Parallelism batches at once.
type Stage struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	progress *pipeline.Progress

	bulk     *bulkClient
	dns      txtResolver
	prefixes *prefixSet
	names    *lru[int64, string]

	warnOnce sync.Once
	closed   atomic.Bool
}

var (
	_ pipeline.Stage     = (*Stage)(nil)
	_ pipeline.Asker     = (*Stage)(nil)
	_ pipeline.Windowed  = (*Stage)(nil)
	_ pipeline.Parallel  = (*Stage)(nil)
	_ pipeline.Selective = (*Stage)(nil)
	_ pipeline.Closer    = (*Stage)(nil)
)

// New builds the stage. It opens nothing: connections are made in Process.
func New(env pipeline.Env, cfg *Config) (pipeline.Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stage %q: %w", env.ID, err)
	}
	s := newStage(env, *cfg, newResolver(cfg.DNSServer))
	if cfg.RedisURL != "" {
		sem, err := newSemaphore(cfg.RedisURL, cfg.WhoisAddr, cfg.SharedConcurrency, cfg.Timeout)
		if err != nil {
			return nil, fmt.Errorf("stage %q: %w", env.ID, err)
		}
		s.bulk.shared = sem
	}
	return s, nil
}

func newStage(env pipeline.Env, cfg Config, dns txtResolver) *Stage {
	env = env.WithDefaults()
	s := &Stage{
		cfg: cfg, log: env.Logger, now: env.Now, progress: env.Progress,
		bulk:     newBulkClient(cfg.WhoisAddr, cfg.Timeout, cfg.Concurrency),
		dns:      dns,
		prefixes: newPrefixSet(cfg.PrefixCache),
		names:    newLRU[int64, string](cfg.NameCache, nil),
	}
	return s
}

// Window asks the runtime for batches that close at window.size records or
// window.max_wait after their first, so each whois query carries many
// addresses without holding records back for long.
func (s *Stage) Window() pipeline.Window {
	return pipeline.Window{Size: s.cfg.Window.Size, MaxWait: s.cfg.Window.MaxWait}
}

// Parallelism is the number of batches, hence whois connections, in
// flight at once.
func (s *Stage) Parallelism() int { return s.cfg.Concurrency }

// Close marks the stage closed and releases the Redis client of the
// shared limit, if any. It holds no whois connection between batches;
// calling it again is harmless.
func (s *Stage) Close() error {
	if s.closed.Swap(true) || s.bulk.shared == nil {
		return nil
	}
	return s.bulk.shared.close()
}

// Wants reports whether r still needs Cymru: an eligible address without
// an answer and without an ASN from MaxMind. It marks those MaxMind
// answered as skipped, so they can pass the stage without waiting for a
// window.
func (s *Stage) Wants(r *pipeline.Record) bool {
	switch {
	case !r.Eligible() || r.Settled(source):
		return false
	case r.ASN != nil:
		r.Skip(source, ReasonASNKnown)
		return false
	}
	return true
}

// batchStats counts what happened to one batch, for the debug line and the
// run counters.
type batchStats struct {
	reused, queried, found, notFound, failed int
}

// Asks returns the source the stage asks for, for the cache.
func (s *Stage) Asks() []string { return []string{source} }

// Process looks up every eligible record of b that has no ASN and no
// Cymru answer yet, and returns b. Failures are marked on the records; the
// only error is use after Close.
func (s *Stage) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var st batchStats
	var todo []*pipeline.Record
	for _, r := range b {
		if !s.Wants(r) {
			continue
		}
		if a, ok := s.prefixes.lookup(r.Addr); ok {
			s.set(r, a)
			st.reused++
			continue
		}
		todo = append(todo, r)
	}
	if len(todo) > 0 {
		if s.cfg.Mode == ModeDNS {
			s.processDNS(ctx, todo, &st)
		} else {
			s.processBulk(ctx, todo, &st)
		}
	}
	s.progress.Add(CounterPrefixReuse, int64(st.reused))
	s.progress.Add(CounterNotFound, int64(st.notFound))
	s.progress.Add(CounterFailed, int64(st.failed))
	s.log.DebugContext(ctx, "cymru batch", "batch_size", len(b), "prefix_reuse", st.reused,
		"queried", st.queried, "found", st.found, "not_found", st.notFound, "failed", st.failed)
	return b, nil
}

// outcome is the result of looking up one address: an answer, a clean
// "not found" (both nil), or an error.
type outcome struct {
	ans *Answer
	err error
}

// processBulk sends the distinct addresses of todo in one bulk query
// (retried for what a failed attempt left unanswered) and marks every
// record.
func (s *Stage) processBulk(ctx context.Context, todo []*pipeline.Record, st *batchStats) {
	addrs := make([]netip.Addr, 0, len(todo))
	seen := make(map[netip.Addr]bool, len(todo))
	for _, r := range todo {
		if !seen[r.Addr] {
			seen[r.Addr] = true
			addrs = append(addrs, r.Addr)
		}
	}
	st.queried = len(addrs)
	out := s.bulkLookup(ctx, addrs)
	names := nameLookup{stage: s}
	for _, r := range todo {
		o := out[r.Addr]
		if o.ans != nil {
			a := names.fill(ctx, *o.ans)
			s.prefixes.add(a)
			*o.ans = a
		}
		s.mark(r, o, st)
	}
}

// bulkLookup asks about addrs, retrying with backoff the addresses an
// attempt left unanswered (timeout, reset, truncated answer). Addresses
// still unanswered after the retries get the last error.
func (s *Stage) bulkLookup(ctx context.Context, addrs []netip.Addr) map[netip.Addr]outcome {
	out := make(map[netip.Addr]outcome, len(addrs))
	pending := addrs
	attempts := 0
	err := s.retry(ctx, func() error {
		attempts++
		s.progress.Add(CounterQueries, 1)
		ans, err := s.bulk.lookup(ctx, pending)
		s.progress.Add(CounterGarbage, int64(ans.garbage))
		for a, x := range ans.found {
			out[a] = outcome{ans: &x}
		}
		for a := range ans.notFound {
			if _, ok := out[a]; !ok {
				out[a] = outcome{}
			}
		}
		for a, le := range ans.lineErrs {
			if _, ok := out[a]; !ok {
				out[a] = outcome{err: le}
			}
		}
		rest := make([]netip.Addr, 0, len(pending))
		for _, a := range pending {
			if _, ok := out[a]; !ok {
				rest = append(rest, a)
			}
		}
		pending = rest
		if err != nil && len(pending) > 0 {
			return err
		}
		// A complete answer that leaves an address out says Cymru has
		// nothing for it.
		for _, a := range pending {
			out[a] = outcome{}
		}
		pending = nil
		return nil
	})
	if err != nil {
		err = fmt.Errorf("bulk whois, %d attempts: %w", attempts, err)
		s.warnOnce.Do(func() {
			s.log.WarnContext(ctx, "cymru lookups failing; records keep no cymru data and stay stale", "err", err, "addresses", len(pending))
		})
		for _, a := range pending {
			out[a] = outcome{err: err}
		}
	}
	return out
}

// processDNS asks the origin zones one address at a time; an address
// inside a prefix answered earlier in the batch is filled without a query.
func (s *Stage) processDNS(ctx context.Context, todo []*pipeline.Record, st *batchStats) {
	names := nameLookup{stage: s}
	for _, r := range todo {
		if a, ok := s.prefixes.lookup(r.Addr); ok {
			s.set(r, a)
			st.reused++
			continue
		}
		st.queried++
		var o outcome
		var txts []string
		err := s.retry(ctx, func() error {
			var err error
			txts, err = s.lookupTXT(ctx, originName(r.Addr))
			return err
		})
		if err == nil {
			var a Answer
			if a, err = parseOrigin(txts); err == nil {
				a = names.fill(ctx, a)
				s.prefixes.add(a)
				o.ans = &a
			}
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			o.err = err
			s.warnOnce.Do(func() {
				s.log.WarnContext(ctx, "cymru lookups failing; records keep no cymru data and stay stale", "err", err)
			})
		}
		s.mark(r, o, st)
	}
}

// lookupTXT asks one DNS question within the stage's timeout.
func (s *Stage) lookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	s.progress.Add(CounterDNSQueries, 1)
	return s.dns.LookupTXT(ctx, name)
}

// nameLookup fills AS names missing from answers, through the run's
// bounded name cache. After one failed lookup it stops asking for the rest
// of the batch, so a dead resolver costs one timeout per batch, not one
// per AS: names are nice to have, not worth stalling the run.
type nameLookup struct {
	stage  *Stage
	broken bool
}

func (n *nameLookup) fill(ctx context.Context, a Answer) Answer {
	if a.ASName != "" || len(a.ASNs) == 0 {
		return a
	}
	asn := a.ASNs[0]
	if name, ok := n.stage.names.get(asn); ok {
		a.ASName = name
		return a
	}
	if n.broken {
		return a
	}
	txts, err := n.stage.lookupTXT(ctx, asName(asn))
	var name string
	if err == nil {
		name, err = parseASName(txts)
	}
	switch {
	case err == nil || errors.Is(err, ErrNotFound):
		n.stage.names.put(asn, name)
		a.ASName = name
	default:
		n.broken = true
		n.stage.log.DebugContext(ctx, "look up as name", "asn", asn, "err", err)
	}
	return a
}

// mark writes an outcome to a record.
func (s *Stage) mark(r *pipeline.Record, o outcome, st *batchStats) {
	switch {
	case o.err != nil:
		r.Fail(source, o.err)
		st.failed++
	case o.ans == nil:
		r.Set(source, nil)
		st.notFound++
	default:
		s.set(r, *o.ans)
		st.found++
	}
}

// set stores an answer on a record. The first origin ASN is the record's;
// r.ASN is only filled when no earlier stage (MaxMind) set it.
func (s *Stage) set(r *pipeline.Record, a Answer) {
	asn := a.ASNs[0]
	res := &pipeline.CymruResult{
		ASN: &asn, ASNOrg: a.ASName, Country: a.Country, Registry: a.Registry,
		Prefix: a.Prefix.String(), AllocationDate: a.Allocated, CachedAt: pipeline.At(s.now()),
	}
	r.Set(source, res)
	if r.ASN == nil {
		r.ASN = res.ASNInfo()
	}
}

// retry calls f until it succeeds, reports a final answer (ErrNotFound,
// ErrMalformed), the retries are spent or ctx ends, waiting between
// attempts with exponential backoff. It returns f's last error.
func (s *Stage) retry(ctx context.Context, f func() error) error {
	wait := s.cfg.Backoff
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrMalformed) ||
			attempt >= s.cfg.Retries || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		wait = min(2*wait, maxBackoff)
	}
}
