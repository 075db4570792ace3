package greynoise

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Spec registers the greynoise stage.
var Spec = pipeline.StageSpec("greynoise",
	"Ask GreyNoise whether an address is a known scanner or business service, within its rate and daily quota.",
	`base_url: https://api.greynoise.io
api_key: ""            # in configs: ${GREYNOISE_API_KEY:-} or file:/run/secrets/greynoise
api: community         # or enterprise (paid v3; many addresses per request)
rate: 10               # requests per second, a hard ceiling
burst: 1
daily_quota: 10000     # lookups per UTC day, shared by every process using the key; 0 = unlimited
quota_warn: 0.9
redis_url: ""          # set: rate and quota shared in Redis by every process; empty: quota in the database, rate per process
timeout: 10s
retries: 2
backoff: 500ms
concurrency: 4
`, DefaultConfig, New)

const source = pipeline.SourceGreyNoise

// Skip reasons; short and stable because reports group by them.
const (
	ReasonIPv6  = "community api is ipv4-only"
	ReasonQuota = "quota exhausted"
)

// maxPerRequest is the most addresses one POST /v3/ip carries; GreyNoise
// accepts up to 10,000.
const maxPerRequest = 10000

// Progress counters the stage reports (status snapshots, metrics).
const (
	counterHits        = "greynoise_hits"
	counterNotFound    = "greynoise_not_found"
	counterRateLimited = "greynoise_rate_limited"
	gaugeQuota         = "greynoise_quota_remaining"
)

// Stage looks addresses up in GreyNoise. Process is safe for concurrent
// use: the limiter, pause and quota state are shared by all calls.
type Stage struct {
	api         string
	client      *client
	throttle    *throttle
	quota       quota
	limit       int64 // daily quota; 0 = unlimited
	warnAt      int64
	retries     int
	backoff     time.Duration
	concurrency int
	now         func() time.Time
	log         *slog.Logger
	progress    *pipeline.Progress

	mu             sync.Mutex
	exhaustedUntil time.Time
	warnedNear     bool
	warnedSpent    bool
	warnedCounter  bool

	closeOnce sync.Once
	closeErr  error
}

var (
	_ pipeline.Stage     = (*Stage)(nil)
	_ pipeline.Asker     = (*Stage)(nil)
	_ pipeline.Selective = (*Stage)(nil)
	_ pipeline.Closer    = (*Stage)(nil)
)

// New builds the stage: it reads a file: key and prepares the HTTP client
// and the quota counter, without touching the network.
func New(env pipeline.Env, cfg *Config) (pipeline.Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stage %q: %w", env.ID, err)
	}
	key, err := cfg.key()
	if err != nil {
		return nil, fmt.Errorf("stage %q: %w", env.ID, err)
	}
	if cfg.API == APIEnterprise && key == "" {
		return nil, fmt.Errorf("stage %q: api_key: the enterprise api needs a key (set GREYNOISE_API_KEY)", env.ID)
	}
	env = env.WithDefaults()
	hc, now, log, progress := env.HTTP, env.Now, env.Logger, env.Progress
	var q quota
	th := newThrottle(cfg.Rate, cfg.Burst)
	switch {
	case cfg.RedisURL != "":
		rq, err := newRedisQuota(cfg.RedisURL, key)
		if err != nil {
			return nil, fmt.Errorf("stage %q: %w", env.ID, err)
		}
		// The rate, like the quota, belongs to the key, not the process.
		q, th.shared = rq, newSharedRate(rq.rdb, rateKey(key), cfg.Rate, cfg.Burst)
	case env.Store != nil:
		q = &sqlQuota{db: env.Store, name: "greynoise:" + keyID(key)}
	default:
		q = &memQuota{}
	}
	return &Stage{
		api:         cfg.API,
		client:      &client{http: hc, base: strings.TrimRight(cfg.BaseURL, "/"), key: key, timeout: cfg.Timeout},
		throttle:    th,
		quota:       q,
		limit:       cfg.DailyQuota,
		warnAt:      int64(float64(cfg.DailyQuota) * cfg.QuotaWarn),
		retries:     cfg.Retries,
		backoff:     cfg.Backoff,
		concurrency: cfg.Concurrency,
		now:         now, log: log, progress: progress,
	}, nil
}

// Close releases the Redis client, if any. It is safe to call again.
func (s *Stage) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.quota.close() })
	return s.closeErr
}

// Asks returns the source the stage asks for, for the cache.
func (s *Stage) Asks() []string { return []string{source} }

// Process looks up every eligible, unsettled record of b and returns b.
// It returns an error only when the key is rejected or ctx ends.
func (s *Stage) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	cands := s.candidates(b)
	var st stats
	var err error
	if len(cands) > 0 {
		if s.api == APIEnterprise {
			err = s.lookupMany(ctx, cands, &st)
		} else {
			err = s.lookupEach(ctx, cands, &st)
		}
	}
	s.log.DebugContext(ctx, "greynoise batch", "batch_size", len(b), "candidates", len(cands),
		"hits", st.hits.Load(), "not_found", st.notFound.Load(), "failed", st.failed.Load(), "skipped", st.skipped.Load())
	if err != nil {
		return nil, err
	}
	return b, nil
}

// stats counts what one Process call did, for its debug line.
type stats struct{ hits, notFound, failed, skipped atomic.Int64 }

// candidates returns the records to look up, most sessions first, and
// marks those that will not be asked.
func (s *Stage) candidates(b pipeline.Batch) []*pipeline.Record {
	var out []*pipeline.Record
	for _, r := range b {
		if s.Wants(r) {
			out = append(out, r)
		}
	}
	// When the quota runs short, the most active attackers are the ones
	// worth knowing about.
	slices.SortStableFunc(out, func(a, b *pipeline.Record) int { return cmp.Compare(b.Sessions, a.Sessions) })
	return out
}

// Wants reports whether r is to be looked up: eligible, not answered yet
// (by the cache), an address the API covers, and quota left for today.
// It marks the addresses and days the API cannot serve as skipped, so
// they, like answered ones, pass the stage without waiting behind its
// rate limit.
func (s *Stage) Wants(r *pipeline.Record) bool {
	switch {
	case !r.Eligible() || r.Settled(source):
		return false
	case s.api == APICommunity && !r.Addr.Is4():
		r.Skip(source, ReasonIPv6)
		return false
	case s.exhausted():
		r.Skip(source, ReasonQuota)
		return false
	}
	return true
}

// lookupEach asks the Community API about each record, concurrency
// requests at a time, taking records in order.
func (s *Stage) lookupEach(ctx context.Context, cands []*pipeline.Record, st *stats) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Records are taken and their quota reserved in order, under one lock,
	// so that when the quota runs short it goes to the first (most active)
	// candidates whichever worker gets there first; the requests then run
	// concurrently.
	var (
		order sync.Mutex
		next  int
		wg    sync.WaitGroup
	)
	take := func() (*pipeline.Record, bool) {
		order.Lock()
		defer order.Unlock()
		for ctx.Err() == nil && next < len(cands) {
			r := cands[next]
			next++
			ok, err := s.reserve(ctx, r, st)
			if err != nil {
				cancel(err)
				return nil, false
			}
			if ok {
				return r, true
			}
		}
		return nil, false
	}
	for range min(s.concurrency, len(cands)) {
		wg.Go(func() {
			for {
				r, ok := take()
				if !ok {
					return
				}
				if err := s.lookupOne(ctx, r, st); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// lookupOne asks about one record whose lookup is reserved, and marks it.
// It returns an error only for what must stop the stage.
func (s *Stage) lookupOne(ctx context.Context, r *pipeline.Record, st *stats) error {
	res, err := s.call(ctx, http.MethodGet, "/v3/community/"+r.Addr.String(), nil)
	if err != nil {
		return s.failed(ctx, []*pipeline.Record{r}, err, st)
	}
	if res.status == http.StatusNotFound {
		s.answer(r, unknown(s.now()), st)
		return nil
	}
	a, err := decodeCommunity(res.body, s.now())
	if err != nil {
		s.fail(r, err, st)
		return nil
	}
	s.answer(r, a, st)
	return nil
}

// lookupMany asks the paid API about the records, as many per request as
// the quota allows.
func (s *Stage) lookupMany(ctx context.Context, cands []*pipeline.Record, st *stats) error {
	for chunk := range slices.Chunk(cands, maxPerRequest) {
		if s.exhausted() {
			s.skip(chunk, st)
			continue
		}
		n, err := s.reserveN(ctx, int64(len(chunk)))
		if err != nil {
			s.failAll(ctx, chunk, err, st)
			continue
		}
		s.skip(chunk[n:], st)
		if err := s.askMany(ctx, chunk[:n], st); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// askMany sends one request for recs (GET for one, POST for several).
func (s *Stage) askMany(ctx context.Context, recs []*pipeline.Record, st *stats) error {
	switch len(recs) {
	case 0:
		return nil
	case 1:
		res, err := s.call(ctx, http.MethodGet, "/v3/ip/"+recs[0].Addr.String(), nil)
		if err != nil {
			return s.failed(ctx, recs, err, st)
		}
		if res.status == http.StatusNotFound {
			s.answer(recs[0], unknown(s.now()), st)
			return nil
		}
		a, err := decodeV3(res.body, s.now())
		if err != nil {
			s.fail(recs[0], err, st)
			return nil
		}
		s.answer(recs[0], a, st)
		return nil
	}
	ips := make([]string, len(recs))
	for i, r := range recs {
		ips[i] = r.Addr.String()
	}
	body, err := json.Marshal(map[string][]string{"ips": ips})
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	res, err := s.call(ctx, http.MethodPost, "/v3/ip", body)
	if err != nil {
		return s.failed(ctx, recs, err, st)
	}
	found, err := decodeMulti(res.body, s.now())
	if err != nil {
		for _, r := range recs {
			s.fail(r, err, st)
		}
		return nil
	}
	for _, r := range recs {
		a, ok := found[r.Addr.String()]
		if !ok {
			a = unknown(s.now())
		}
		s.answer(r, a, st)
	}
	return nil
}

// call sends a request within the rate limit, retrying 5xx, timeouts and
// rate-limit 429s with backoff. It returns answers of status 200, 206 and
// 404; every other outcome is an error.
func (s *Stage) call(ctx context.Context, method, path string, body []byte) (response, error) {
	var last error
	for attempt := 0; ; attempt++ {
		if err := s.throttle.wait(ctx); err != nil {
			return response{}, err
		}
		res, err := s.client.do(ctx, method, path, body)
		wait := s.backoff << attempt
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return response{}, ctx.Err()
			}
			last = err
		case res.status == http.StatusOK, res.status == http.StatusPartialContent, res.status == http.StatusNotFound:
			return res, nil
		case res.status == http.StatusUnauthorized, res.status == http.StatusForbidden:
			return response{}, &KeyRejectedError{Status: res.status}
		case res.status == http.StatusTooManyRequests:
			s.progress.Add(counterRateLimited, 1)
			rl := &RateLimitError{RetryAfter: res.retryAfter, Quota: quotaSpent(res.body)}
			if rl.Quota {
				return response{}, rl
			}
			// Every worker waits out the pause, not just this one: the
			// server asked the client to stop, not this request.
			if rl.RetryAfter > 0 {
				wait = rl.RetryAfter
			}
			s.throttle.pause(wait)
			wait, last = 0, rl
		case res.status == http.StatusBadRequest:
			return response{}, ErrInvalidAddress
		case res.status >= 500:
			last = &StatusError{Status: res.status}
		default:
			return response{}, &StatusError{Status: res.status}
		}
		if attempt >= s.retries {
			return response{}, fmt.Errorf("%w (%d attempts)", last, attempt+1)
		}
		if err := sleep(ctx, wait); err != nil {
			return response{}, err
		}
	}
}

// failed marks recs after a request that did not give an answer, and
// returns the error that must stop the stage, if any.
func (s *Stage) failed(ctx context.Context, recs []*pipeline.Record, err error, st *stats) error {
	var rl *RateLimitError
	var kr *KeyRejectedError
	switch {
	case errors.As(err, &kr):
		return kr
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &rl) && rl.Quota:
		s.spent(ctx, rl.RetryAfter, rl.RetryAfter == 0)
		s.skip(recs, st)
	default:
		for _, r := range recs {
			s.fail(r, err, st)
		}
	}
	return nil
}

// reserve takes one lookup of the quota for r. When there is none, r is
// skipped (ok false, nil error); an error stops the stage.
func (s *Stage) reserve(ctx context.Context, r *pipeline.Record, st *stats) (ok bool, err error) {
	if s.exhausted() {
		s.skip([]*pipeline.Record{r}, st)
		return false, nil
	}
	n, err := s.reserveN(ctx, 1)
	switch {
	case err != nil:
		return false, s.failAll(ctx, []*pipeline.Record{r}, err, st)
	case n == 0:
		s.skip([]*pipeline.Record{r}, st)
		return false, nil
	}
	return true, nil
}

// reserveN takes up to n lookups of today's quota and returns how many it
// got. When none are left, the stage stops asking until the day ends.
func (s *Stage) reserveN(ctx context.Context, n int64) (int64, error) {
	if s.limit == 0 {
		return n, nil
	}
	g, rem, err := s.quota.reserve(ctx, day(s.now()), n, s.limit)
	if err != nil {
		return 0, err
	}
	s.progress.Set(gaugeQuota, rem)
	used := s.limit - rem
	s.mu.Lock()
	warn := used >= s.warnAt && !s.warnedNear
	s.warnedNear = s.warnedNear || warn
	s.mu.Unlock()
	if warn {
		s.log.WarnContext(ctx, "greynoise daily quota nearly spent", "used", used, "daily_quota", s.limit)
	}
	if g < n {
		s.spent(ctx, 0, false)
	}
	return g, nil
}

// failAll marks recs failed because the quota counter could not be
// reached: sending without it could exceed the shared quota. The first
// such failure is logged, since every lookup will fail until it is fixed.
func (s *Stage) failAll(ctx context.Context, recs []*pipeline.Record, err error, st *stats) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.mu.Lock()
	first := !s.warnedCounter
	s.warnedCounter = true
	s.mu.Unlock()
	if first {
		s.log.WarnContext(ctx, "greynoise quota counter unavailable; lookups fail until it answers", "err", err)
	}
	for _, r := range recs {
		s.fail(r, err, st)
	}
	return nil
}

// spent stops lookups until the quota period ends: the next UTC midnight,
// or after retryAfter when GreyNoise says when. When GreyNoise itself said
// the quota is spent (share), the shared counter is marked spent too, so
// other processes stop as well.
func (s *Stage) spent(ctx context.Context, retryAfter time.Duration, share bool) {
	now := s.now()
	until := nextDay(now)
	if retryAfter > 0 {
		until = now.Add(retryAfter)
	}
	if share && s.limit > 0 {
		if err := s.quota.exhaust(ctx, day(now), s.limit); err != nil {
			s.log.DebugContext(ctx, "mark greynoise quota spent", "err", err)
		}
		s.progress.Set(gaugeQuota, 0)
	}
	s.mu.Lock()
	if until.After(s.exhaustedUntil) {
		s.exhaustedUntil = until
	}
	warn := !s.warnedSpent
	s.warnedSpent = true
	s.mu.Unlock()
	if warn {
		s.log.WarnContext(ctx, "greynoise quota spent; addresses are skipped until it resets", "until", until.UTC().Format(time.RFC3339))
	}
}

func (s *Stage) exhausted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now().Before(s.exhaustedUntil)
}

func (s *Stage) answer(r *pipeline.Record, a *pipeline.GreyNoiseResult, st *stats) {
	r.Set(source, a)
	if a.Noise || a.RIOT {
		st.hits.Add(1)
		s.progress.Add(counterHits, 1)
		return
	}
	st.notFound.Add(1)
	s.progress.Add(counterNotFound, 1)
}

func (s *Stage) fail(r *pipeline.Record, err error, st *stats) {
	r.Fail(source, err)
	st.failed.Add(1)
}

func (s *Stage) skip(recs []*pipeline.Record, st *stats) {
	for _, r := range recs {
		r.Skip(source, ReasonQuota)
	}
	st.skipped.Add(int64(len(recs)))
}

// day is the quota period containing t: its UTC date.
func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// nextDay is the start of the UTC day after t.
func nextDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}
