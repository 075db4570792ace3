package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Tier names, as used in counters ("l1_hits") and warnings.
const (
	tierRedis    = "l1"
	tierDatabase = "l2"
	tierFiles    = "l3"
)

// Stage answers sources from the cache tiers and writes fresh answers
// through to them once they are committed. Process and Committed may run
// at the same time (Committed runs on the sink's goroutine).
type Stage struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	progress *pipeline.Progress

	l1 *l1       // nil: no Redis configured
	l2 *database // nil: the run has no database
	l3 *files    // nil: no file_dir

	// asked marks the sources some stage after the cache asks; the others
	// are not looked up. told is set once Build said which (AskedAfter);
	// a stage never told keeps to every source, in every tier.
	asked [len(sources)]bool
	told  bool

	mu     sync.Mutex
	warned map[string]bool

	closeOnce sync.Once
	closeErr  error
}

var (
	_ pipeline.Stage       = (*Stage)(nil)
	_ pipeline.Committer   = (*Stage)(nil)
	_ pipeline.Parallel    = (*Stage)(nil)
	_ pipeline.Windowed    = (*Stage)(nil)
	_ pipeline.Closer      = (*Stage)(nil)
	_ pipeline.AskListener = (*Stage)(nil)
	_ pipeline.Asker       = (*Stage)(nil)
)

// New builds the stage. It makes no connection: the Redis client dials on
// first use, in Process.
func New(env pipeline.Env, cfg *Config) (pipeline.Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stage %q: %w", env.ID, err)
	}
	env = env.WithDefaults()
	s := &Stage{cfg: *cfg, log: env.Logger, now: env.Now, progress: env.Progress, warned: map[string]bool{}}
	for i := range s.asked {
		s.asked[i] = true
	}
	opts, err := cfg.redisOptions()
	if err != nil {
		return nil, fmt.Errorf("stage %q: %w", env.ID, err)
	}
	if opts != nil {
		s.l1 = &l1{client: redis.NewClient(opts), prefix: cfg.KeyPrefix, timeout: cfg.Timeout}
	}
	if env.Store != nil {
		s.l2 = &database{db: env.Store}
	}
	if cfg.FileDir != "" {
		s.l3 = &files{dir: cfg.FileDir}
	}
	return s, nil
}

// AskedAfter limits the lookups to the sources the stages after the
// cache ask: a disabled provider stage costs no lookups and no misses.
func (s *Stage) AskedAfter(asked []string) {
	for i, src := range sources {
		s.asked[i] = slices.Contains(asked, src)
	}
	s.told = true
}

// Asks returns nil: the cache asks no provider (a second cache after it
// serves the same sources).
func (s *Stage) Asks() []string { return nil }

// Window asks the runtime for batches of window.size records, or fewer
// after window.max_wait.
func (s *Stage) Window() pipeline.Window { return s.cfg.Window }

// Parallelism is the number of batches looked up at once; Process is
// safe for concurrent use.
func (s *Stage) Parallelism() int { return s.cfg.Concurrency }

// hit is a fresh answer and the tier it came from.
type hit struct {
	e    entry
	tier string
}

// lookup is what one batch needs to know about one address.
type lookup struct {
	ip    string
	recs  []*pipeline.Record
	need  [len(sources)]bool // some record of the address lacks the source
	found [len(sources)]*hit
}

// missing returns the indexes of the sources still needed and not found.
func (l *lookup) missing() []int {
	var out []int
	for i := range sources {
		if l.need[i] && l.found[i] == nil {
			out = append(out, i)
		}
	}
	return out
}

// dropCymruWhereASNKnown stops looking for Cymru answers to addresses
// whose MaxMind answer, found in a tier above, has an ASN: the cymru stage
// asks only about addresses MaxMind gave none, so the lower tiers would be
// read for nothing. On a cached run that is most addresses, and with
// GreyNoise not asked, the database tier then has nothing to read. Only a
// stage told what the stages after it ask does so: with a stage of your
// own among them, Cymru may be asked about anything.
func (s *Stage) dropCymruWhereASNKnown(todo []*lookup) {
	if !s.told {
		return
	}
	for _, l := range todo {
		if h := l.found[maxMindIndex]; h != nil && l.need[cymruIndex] && l.found[cymruIndex] == nil {
			if m, ok := h.e.value.(*pipeline.MaxMindResult); ok && m.ASNInfo() != nil {
				l.need[cymruIndex] = false
			}
		}
	}
}

// notInInventory reports whether the source found no ip_inventory row for
// any record of the address, so there is nothing to look for there.
func (l *lookup) notInInventory() bool {
	for _, r := range l.recs {
		if !r.NotInInventory {
			return false
		}
	}
	return true
}

// counts are a batch's counters, added to the run's progress at once.
type counts map[string]int64

// Process settles every source of an eligible record for which a tier
// holds a fresh answer, then rebuilds the record's ASN from the answers.
// Tiers are asked in order (Redis, database, files), each once per batch
// and only about what the tiers above did not answer; a tier that fails
// is counted, warned about once and passed over.
func (s *Stage) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	if len(b) == 0 || ctx.Err() != nil {
		return b, nil
	}
	now := s.now()
	var todo []*lookup
	byIP := map[string]*lookup{}
	for _, r := range b {
		if !r.Eligible() {
			continue
		}
		var l *lookup
		for i, src := range sources {
			if r.Settled(src) || !s.asked[i] {
				continue
			}
			if l == nil {
				if l = byIP[r.IP()]; l == nil {
					l = &lookup{ip: r.IP()}
					byIP[l.ip] = l
					todo = append(todo, l)
				}
				l.recs = append(l.recs, r)
			}
			l.need[i] = true
		}
	}
	if len(todo) == 0 {
		return b, nil
	}
	c := counts{}
	s.readRedis(ctx, todo, now, c)
	s.dropCymruWhereASNKnown(todo)
	s.readDatabase(ctx, todo, now, c)
	s.dropCymruWhereASNKnown(todo)
	s.readFiles(ctx, todo, now, c)
	s.apply(todo, c)
	s.backfill(ctx, todo, now)
	s.add(c)
	s.log.DebugContext(ctx, "cache lookups", "batch_size", len(b), "addresses", len(todo),
		"hits", c["cache_hits"], "misses", c["cache_misses"])
	return b, nil
}

func (s *Stage) readRedis(ctx context.Context, todo []*lookup, now time.Time, c counts) {
	if s.l1 == nil || !s.l1.available(now) {
		return
	}
	type ref struct {
		l *lookup
		i int
	}
	var keys []string
	var refs []ref
	for _, l := range todo {
		for _, i := range l.missing() {
			keys = append(keys, s.l1.key(sources[i], l.ip))
			refs = append(refs, ref{l, i})
		}
	}
	vals, err := s.l1.get(ctx, keys)
	if err != nil {
		s.tierFailed(ctx, tierRedis, "read", err)
		return
	}
	for k, raw := range vals {
		if raw == nil {
			continue
		}
		src := sources[refs[k].i]
		e, ok, err := decode(src, raw)
		if err != nil {
			s.corrupt(tierRedis, err, c)
			continue
		}
		if ok && s.cfg.remaining(src, e, now) > 0 {
			refs[k].l.found[refs[k].i] = &hit{e: e, tier: tierRedis}
		}
	}
}

func (s *Stage) readDatabase(ctx context.Context, todo []*lookup, now time.Time, c counts) {
	if s.l2 == nil {
		return
	}
	var ips, stored []string
	for _, l := range todo {
		if len(l.missing()) > 0 {
			ips = append(ips, l.ip)
			if !l.notInInventory() {
				stored = append(stored, l.ip)
			}
		}
	}
	if len(ips) == 0 {
		return
	}
	var inv answers
	if len(stored) > 0 {
		var err error
		if inv, err = s.l2.inventory(ctx, stored); err != nil {
			s.tierFailed(ctx, tierDatabase, "read", err)
		}
	}
	rows, err := s.l2.cacheRows(ctx, ips)
	if err != nil {
		s.tierFailed(ctx, tierDatabase, "read", err)
	}
	for _, l := range todo {
		for _, i := range l.missing() {
			src := sources[i]
			for _, raw := range append(inv[l.ip][src], rows[l.ip][src]...) {
				e, ok, err := decode(src, raw.value)
				if err != nil {
					s.corrupt(tierDatabase, err, c)
					continue
				}
				if e.cachedAt.IsZero() {
					e.cachedAt = raw.created
				}
				// The freshest of the inventory's answer and the row wins.
				if ok && s.cfg.remaining(src, e, now) > 0 && (l.found[i] == nil || e.cachedAt.After(l.found[i].e.cachedAt)) {
					l.found[i] = &hit{e: e, tier: tierDatabase}
				}
			}
		}
	}
}

func (s *Stage) readFiles(ctx context.Context, todo []*lookup, now time.Time, c counts) {
	if s.l3 == nil {
		return
	}
	for _, l := range todo {
		if ctx.Err() != nil {
			return
		}
		for _, i := range l.missing() {
			src := sources[i]
			e, ok, err := s.l3.read(src, l.ip)
			switch {
			case errors.Is(err, ErrCorrupt):
				s.corrupt(tierFiles, err, c)
			case err != nil:
				s.tierFailed(ctx, tierFiles, "read", err)
			case ok && s.cfg.remaining(src, e, now) > 0:
				l.found[i] = &hit{e: e, tier: tierFiles}
			}
		}
	}
}

// apply settles the sources found, counts hits and misses per record and
// rebuilds the ASN of every record that got an answer.
func (s *Stage) apply(todo []*lookup, c counts) {
	for _, l := range todo {
		for _, r := range l.recs {
			got := false
			for i, src := range sources {
				if r.Settled(src) || !s.asked[i] {
					continue
				}
				h := l.found[i]
				if h == nil {
					c["cache_misses"]++
					c["cache_misses_"+src]++
					continue
				}
				r.SetCached(src, h.e.value)
				got = true
				c["cache_hits"]++
				c["cache_hits_"+src]++
				c[h.tier+"_hits"]++
			}
			if got {
				rebuildASN(r)
			}
		}
	}
}

// rebuildASN attributes the record to MaxMind's ASN when its answer has
// one, else to Cymru's; with neither, the ASN is left as it was.
func rebuildASN(r *pipeline.Record) {
	mm, _ := r.Enrichment[pipeline.SourceMaxMind].(*pipeline.MaxMindResult)
	if a := mm.ASNInfo(); a != nil {
		r.ASN = a
		return
	}
	cy, _ := r.Enrichment[pipeline.SourceCymru].(*pipeline.CymruResult)
	if a := cy.ASNInfo(); a != nil {
		r.ASN = a
	}
}

// backfill copies answers found in a lower tier to the tiers above: L2 and
// L3 hits to Redis, L3 hits to enrichment_cache.
func (s *Stage) backfill(ctx context.Context, todo []*lookup, now time.Time) {
	var items []l1Item
	var rows []cacheRow
	for _, l := range todo {
		for i, h := range l.found {
			if h == nil || h.tier == tierRedis {
				continue
			}
			it, row, ok := s.encodeFor(ctx, sources[i], l.ip, h.e, now)
			if !ok {
				continue
			}
			items = append(items, it)
			if h.tier == tierFiles {
				rows = append(rows, row)
			}
		}
	}
	s.writeRedis(ctx, items, now)
	s.writeDatabase(ctx, rows)
}

// encodeFor returns e as a Redis item and an enrichment_cache row; ok is
// false when e is already stale or cannot be encoded.
func (s *Stage) encodeFor(ctx context.Context, src, ip string, e entry, now time.Time) (l1Item, cacheRow, bool) {
	left := s.cfg.remaining(src, e, now)
	if left <= 0 {
		return l1Item{}, cacheRow{}, false
	}
	raw, err := encode(e)
	if err != nil {
		s.tierFailed(ctx, "encode", "write", err)
		return l1Item{}, cacheRow{}, false
	}
	return l1Item{key: s.key(src, ip), value: raw, ttl: left},
		cacheRow{source: src, ip: ip, value: raw, created: e.cachedAt, expires: e.cachedAt.Add(s.cfg.limit(src, e))}, true
}

func (s *Stage) key(src, ip string) string {
	if s.l1 == nil {
		return ""
	}
	return s.l1.key(src, ip)
}

func (s *Stage) writeRedis(ctx context.Context, items []l1Item, now time.Time) {
	if s.l1 == nil || len(items) == 0 || !s.l1.available(now) {
		return
	}
	if err := s.l1.set(ctx, items); err != nil {
		s.tierFailed(ctx, tierRedis, "write", err)
	}
}

func (s *Stage) writeDatabase(ctx context.Context, rows []cacheRow) {
	if s.l2 == nil || len(rows) == 0 {
		return
	}
	if err := s.l2.upsert(ctx, rows); err != nil {
		s.tierFailed(ctx, tierDatabase, "write", err)
	}
}

// Committed writes the answers providers gave in this run (state
// succeeded, "not found" included) through to Redis and the files, once
// the inventory holds them. "Not found" answers, which the inventory does
// not store, also go to enrichment_cache. Every write is best effort:
// failures are counted and warned about once, and Committed returns nil.
func (s *Stage) Committed(ctx context.Context, b pipeline.Batch) error {
	if s.l1 == nil && s.l2 == nil && s.l3 == nil {
		return nil
	}
	now := s.now()
	var items []l1Item
	var rows []cacheRow
	written := int64(0)
	for _, r := range b {
		if !r.Eligible() {
			continue
		}
		for _, src := range sources {
			if r.Source(src).State != pipeline.StateSucceeded {
				continue
			}
			e, err := fetched(src, r.Enrichment[src], now)
			if err != nil {
				s.tierFailed(ctx, "encode", "write", err)
				continue
			}
			it, row, ok := s.encodeFor(ctx, src, r.IP(), e, now)
			if !ok {
				continue
			}
			written++
			items = append(items, it)
			if e.negative() {
				rows = append(rows, row)
			}
			if s.l3 != nil {
				if err := s.l3.write(src, r.IP(), e, s.cfg.limit(src, e)); err != nil {
					s.tierFailed(ctx, tierFiles, "write", err)
				}
			}
		}
	}
	s.writeRedis(ctx, items, now)
	s.writeDatabase(ctx, rows)
	s.progress.Add("cache_writes", written)
	return nil
}

// tierFailed counts a failed tier operation and warns about it once per
// run. A failure caused by the run stopping is not the tier's fault and is
// not counted. A failed Redis call takes Redis out of use for a while.
func (s *Stage) tierFailed(ctx context.Context, tier, op string, err error) {
	if ctx.Err() != nil {
		return
	}
	s.progress.Add("cache_errors", 1)
	if tier == tierRedis {
		s.l1.down(s.now())
	}
	if s.once(tier + " " + op) {
		s.log.Warn("cache tier failed; the run goes on without it (warned once per run)",
			"tier", tier, "op", op, "err", &TierError{Tier: tier, Op: op, Err: err})
	}
}

// corrupt counts an entry that does not decode; it is treated as missing.
func (s *Stage) corrupt(tier string, err error, c counts) {
	c["cache_errors"]++
	c["cache_corrupt"]++
	if s.once(tier + " corrupt") {
		s.log.Warn("corrupt cache entries are ignored (warned once per run)", "tier", tier, "err", err)
	}
}

func (s *Stage) once(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warned[key] {
		return false
	}
	s.warned[key] = true
	return true
}

func (s *Stage) add(c counts) {
	for k, v := range c {
		s.progress.Add(k, v)
	}
}

// Close closes the Redis client. It is safe to call more than once.
func (s *Stage) Close() error {
	s.closeOnce.Do(func() {
		if s.l1 != nil {
			s.closeErr = s.l1.client.Close()
		}
	})
	return s.closeErr
}
